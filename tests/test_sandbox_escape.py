"""Escape attempts against both backends: each is stopped, by the mechanism meant to stop it.

The filesystem, the processes and the network, tried from inside a sandbox of the
local backend (bubblewrap) and of the Daytona backend (the real SDK against the
stand-in, whose sandboxes run under our local backend: these pin that the Daytona
path, its wrapper and its file calls, opens no hole of its own). Resource limits
are in `test_sandbox_limits.py`. Every command has a timeout, so the module is quick.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from tests import sandbox_backends as backends
from tests import services
from tests.sandbox_backends import TIGHT, python
from tests.sandbox_contract import archive, planted_secret

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(60)]
REPO_ROOT = Path(__file__).resolve().parent.parent
# the shared fixtures, used here by name
backend, box, attempt, daytona_standin = backends.fixtures()
tally = backends.attempts("escape attempts stopped")

CONNECT = """
import socket, sys, time
for host, port in [tuple(a.rsplit(":", 1)) for a in sys.argv[1:]]:
    started = time.monotonic()
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        outcome = "CONNECTED"
    except OSError as error:
        outcome = type(error).__name__
    print(host, port, outcome, round(time.monotonic() - started, 2))
"""


async def test_host_services_on_loopback_are_unreachable(box, attempt):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        targets = [f"127.0.0.1:{port}"]
        targets += [f"127.0.0.1:{p}" for p in (6379, 5432) if services.port_answers("127.0.0.1", p)]
        assert services.port_answers("127.0.0.1", port)  # reachable from the host itself
        result = await box.exec([*python(CONNECT), *targets], timeout=10)
    lines = result.stdout.splitlines()
    assert len(lines) == len(targets), result.stderr
    for line in lines:
        _, _, outcome, seconds = line.split()
        # The sandbox has its own loopback: nothing listens there.
        assert outcome == "ConnectionRefusedError", line
        assert float(seconds) < 1
    attempt.stopped()


async def test_no_route_to_anywhere_else(box, attempt):
    # TEST-NET-1 and a public resolver: with no interface but loopback, no packet leaves.
    result = await box.exec([*python(CONNECT), "192.0.2.1:443", "1.1.1.1:53"], timeout=10)
    for line in result.stdout.splitlines():
        _, _, outcome, seconds = line.split()
        assert outcome == "OSError", line  # ENETUNREACH
        assert float(seconds) < 1
    assert len(result.stdout.splitlines()) == 2, result.stderr
    names = await box.exec(
        python(
            "import socket\n"
            "print([name for _, name in socket.if_nameindex()])\n"
            "try:\n"
            "    socket.getaddrinfo('example.com', 443)\n"
            "    print('RESOLVED')\n"
            "except OSError as error:\n"
            "    print(type(error).__name__)\n"
        ),
        timeout=10,
    )
    assert names.stdout.splitlines() == ["['lo']", "gaierror"], names.stderr
    assert names.duration < 5
    attempt.stopped()


async def test_host_files_are_not_even_visible(backend, box, attempt):
    outside = Path(tempfile.mkdtemp(prefix="clarity-escape-secret-"))
    in_root = Path("/root") / f"clarity-escape-{uuid.uuid4().hex}"
    other = await backend.provider.create(TIGHT, archive({"secret.txt": b"the other tenant\n"}))
    try:
        (outside / "app-key.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
        (outside / "app-key.pem").chmod(0o644)  # readable by anyone: only the mounts stop it
        with sqlite3.connect(outside / "clarity.db") as database:
            database.execute("CREATE TABLE secret (value TEXT)")
        in_root.write_text("root's secret\n")
        tenant = backend.host_workspace(other) / "secret.txt"
        assert tenant.read_text() == "the other tenant\n"  # where it lies on the host
        paths = [
            outside / "app-key.pem",
            outside / "clarity.db",
            in_root,
            Path("/etc/shadow"),
            REPO_ROOT / "pyproject.toml",
            tenant,
            backend.root,
            Path("/var/lib/postgresql"),
            Path("/var/lib/redis"),
        ]
        probe = await box.exec(
            ["sh", "-c", 'for p; do [ -e "$p" ] && echo "$p"; done; true', "-", *map(str, paths)]
        )
        assert probe.ok and probe.stdout == "", probe.stdout
        top = set((await box.exec(["ls", "-A", "/"])).stdout.split())
        assert top <= {
            *("bin", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "proc"),
            *("root", "sbin", "tmp", "usr", "workspace"),
        }
    finally:
        await other.destroy()
        for made in outside.iterdir():
            made.unlink()
        outside.rmdir()
        in_root.unlink()
    attempt.stopped()


async def test_environment_holds_none_of_the_workers_secrets(box, attempt):
    with planted_secret() as secret:
        result = await box.exec("env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'")
    assert secret not in result.stdout
    names = {line.split("=", 1)[0] for line in result.stdout.splitlines() if "=" in line}
    assert names <= {"PATH", "HOME", "LANG", "PWD", "SHLVL", "_"}
    attempt.stopped()


async def test_writes_outside_the_workspace_fail(box, attempt):
    prefix = sys.base_prefix
    result = await box.exec(
        "for p in /usr/x /etc/x /x /bin/x /etc/passwd /dev/x "
        f"{prefix}/x /proc/sys/kernel/hostname; do "
        '  if echo x 2>/dev/null > "$p"; then echo "WROTE $p"; fi; done; '
        f"echo ok > {box.workspace}/inside && cat {box.workspace}/inside"
    )
    assert result.stdout == "ok\n"
    assert not Path(prefix, "x").exists() and not Path("/usr/x").exists()
    attempt.stopped()


async def test_proc_shows_only_the_sandbox(box, attempt):
    result = await box.exec(
        "for d in /proc/[0-9]*; do tr '\\0' ' ' < $d/cmdline; echo; done", timeout=10
    )
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    # bwrap's pid 1, the shell (and Daytona's wrapper shell), the loop's own children
    assert len(lines) <= 6, lines
    assert not any("pytest" in line or "uvicorn" in line for line in lines)
    attempt.stopped()


async def test_host_processes_cannot_be_signalled(box, attempt):
    host = await asyncio.create_subprocess_exec("sleep", "30")
    try:
        result = await box.exec(f"kill -9 {host.pid}")
        assert "No such process" in result.stderr
        assert host.returncode is None  # still running
    finally:
        host.kill()
        await asyncio.wait_for(host.wait(), 5)
    attempt.stopped()


async def test_no_capabilities_no_mounts_no_nested_namespaces(box, attempt):
    result = await box.exec(
        "unshare -U true 2>/dev/null && echo NEWUSERNS; "
        "unshare -rm true 2>/dev/null && echo NEWROOT; "
        "mount -t tmpfs none /tmp 2>/dev/null && echo MOUNTED; "
        "grep CapEff /proc/self/status"
    )
    assert result.stdout == "CapEff:\t0000000000000000\n"
    attempt.stopped()


async def test_file_calls_cannot_reach_the_host(backend, box, attempt):
    """The file API, not only commands: links out and paths out are refused, not followed."""
    setup = await box.exec("ln -s / root-link && ln -s /etc/passwd passwd-link")
    assert setup.ok, setup.stderr
    refused = 0
    for path in ["root-link/etc/passwd", "passwd-link", "../../etc/passwd", "/etc/hostname"]:
        try:
            await box.read_file(path)
        except Exception:  # SandboxError of either backend
            refused += 1
    for path in ["root-link/tmp/escaped", "../escaped", "/tmp/escaped"]:
        try:
            await box.write_file(path, b"out")
        except Exception:
            refused += 1
    assert refused == 7
    assert not Path("/tmp/escaped").exists()
    attempt.stopped()
