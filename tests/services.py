"""PostgreSQL and Redis for the test-suite: the configured ones, the local ones, or private ones.

Order: `DATABASE_URL` / `REDIS_URL` when set; else the servers on their standard
local ports when they answer; else private servers started from the installed
binaries in a temporary directory (PostgreSQL as an unprivileged user, since it
refuses to run as root).
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class ServiceUnavailable(RuntimeError):
    """A service the tests need could not be found or started."""


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(
    port: int, process: subprocess.Popen | None = None, deadline: float = 30.0
) -> None:
    """Poll until a just-started server accepts connections."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if port_answers("127.0.0.1", port, timeout=0.2):
            return
        if process is not None and process.poll() is not None:
            raise ServiceUnavailable(f"server on port {port} exited with {process.returncode}")
        time.sleep(0.05)
    raise ServiceUnavailable(f"nothing answered on port {port} within {deadline:.0f} s")


def postgres_url() -> str:
    """A PostgreSQL server URL whose database may be used to create test databases."""
    configured = os.environ.get("DATABASE_URL", "")
    if configured.startswith(("postgres://", "postgresql")):
        return configured
    if port_answers("127.0.0.1", 5432):
        return "postgresql://postgres@127.0.0.1:5432/test"
    return _start_postgres()


def redis_url() -> str:
    configured = os.environ.get("REDIS_URL")
    if configured:
        return configured
    if port_answers("127.0.0.1", 6379):
        return "redis://127.0.0.1:6379/0"
    return PrivateRedis().start().url


def _postgres_bindir() -> Path:
    candidates = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for directory in candidates:
        if directory and (Path(directory) / "initdb").exists():
            return Path(directory)
    raise ServiceUnavailable(
        "no PostgreSQL server answers on 127.0.0.1:5432 and initdb is not installed: "
        "install the Debian package 'postgresql' or set DATABASE_URL"
    )


def _start_postgres() -> str:
    server = PrivatePostgres().start()
    atexit.register(server.remove)
    return server.url


class PrivatePostgres:
    """A PostgreSQL server of our own (run as an unprivileged user, since it refuses root),
    which a test may stop and start again on the same port with the same data."""

    def __init__(self) -> None:
        self.bindir = _postgres_bindir()
        user = "postgres" if _user_exists("postgres") else "nobody"
        self.root = Path(tempfile.mkdtemp(prefix="clarity-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        account = pwd.getpwnam(user)
        os.chown(self.root, account.pw_uid, account.pw_gid)
        self.as_user = ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [
                *self.as_user,
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "postgres",
            ],
            check=True,
            capture_output=True,
        )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str, check: bool = True) -> None:
        subprocess.run(
            [*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(self.data), *args],
            check=check,
            capture_output=True,
        )

    def start(self) -> PrivatePostgres:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-o", options, "-w", "-l", str(self.root / "log"), "start")
        return self

    def stop(self) -> None:
        """Stop at once, as a crash or an operator would: clients' connections break."""
        self._ctl("-m", "immediate", "-w", "stop", check=False)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


class PrivateRedis:
    """A redis-server of our own, which a test may stop and start again on the same port."""

    def __init__(self, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceUnavailable(
                "redis-server is not installed: install the Debian package 'redis-server' or set REDIS_URL"
            )
        self.binary = binary
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        atexit.register(self.stop)
        wait_for_port(self.port, self.process)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
