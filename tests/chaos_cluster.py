"""The App as production runs it, for the fault suite: `clarity serve` and `clarity worker`
processes (which a test may kill), the GitHub stand-in, a scripted model, known secrets.

Every process logs to its own file, so a test can grep all it wrote; `Planted` holds the
secrets the cluster was given, and `exposure` finds any of them, whole or in part.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlmodel import SQLModel, select

import bot.models  # noqa: F401  (every table on the metadata, for the dump)
from bot.db import Database
from bot.models import Build, BuildEvent, Delivery, DeliveryStatus
from bot.secret_store import SecretStore
from bot.settings import Settings
from localhub import Hub, running
from orchestrator.sandbox.local import LocalSandboxProvider
from tests.services import free_port, wait_for_port

REPO_ROOT = Path(__file__).resolve().parent.parent
REPO = "octo-org/app"
DEADLINE = 90.0
SLICE = 8  # no run of this many characters of a secret may appear anywhere


@dataclass
class Planted:
    """Secrets the cluster is given; `exposure` looks for every one of them."""

    webhook_secret: str = field(default_factory=lambda: "whsec-" + secrets.token_hex(16))
    llm_api_key: str = field(default_factory=lambda: "sk-chaos-" + secrets.token_urlsafe(24))
    stored_secret: str = field(default_factory=lambda: "deploy-" + secrets.token_urlsafe(24))
    encryption_key: str = field(
        default_factory=lambda: (
            __import__("cryptography.fernet").fernet.Fernet.generate_key().decode()
        )
    )
    private_key: str = ""
    tokens: Callable[[], Iterable[str]] = lambda: ()

    def values(self) -> dict[str, str]:
        found = {
            "webhook secret": self.webhook_secret,
            "LLM API key": self.llm_api_key,
            "stored installation secret": self.stored_secret,
            "encryption key": self.encryption_key,
        }
        body = "".join(
            line for line in self.private_key.splitlines() if line and not line.startswith("-----")
        )
        found["App private key"] = body
        for n, token in enumerate(self.tokens()):
            found[f"installation token {n + 1}"] = token
        return found


def exposure(planted: Planted, texts: Iterable[tuple[str, str]]) -> list[str]:
    """Where any planted secret, or any `SLICE` characters of one, appears in `texts`."""
    windows: dict[str, str] = {}
    for name, value in planted.values().items():
        for start in range(0, max(1, len(value) - SLICE + 1)):
            windows.setdefault(value[start : start + SLICE], name)
    leaks = []
    for where, content in texts:
        for window, name in windows.items():
            if window in content:
                leaks.append(f"{name} in {where}")
                break
    return leaks


def checked_for_secrets(
    chaos: Any, where: str, planted: Planted, texts: list[tuple[str, str]]
) -> list[str]:
    """`exposure`, recorded in the report's "Secrets" section: what was searched, what was found."""
    leaks = exposure(planted, texts)
    chaos.record(
        "Secrets",
        f"{where}: {len(planted.values())} planted secrets searched for in {len(texts)} logs, "
        "rows, GitHub calls, comments and check runs",
        len(leaks),
        target="0",
        ok=not leaks,
    )
    return leaks


class Cluster:
    """`clarity serve` plus N `clarity worker` processes on one database, Redis and stand-in."""

    def __init__(self, settings: Settings, hub: Hub, logs: Path, planted: Planted) -> None:
        self.settings, self.hub, self.logs, self.planted = settings, hub, logs, planted
        self.db = Database(settings.database_url)
        self.workers: list[subprocess.Popen] = []
        self.server: subprocess.Popen | None = None
        self.url = ""
        self.started = 0
        self.respawned = 0

    def environment(self) -> dict[str, str]:
        s = self.settings
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "CLARITY_APP_ID": str(s.app_id),
            "CLARITY_CLIENT_ID": s.client_id or "",
            "CLARITY_PRIVATE_KEY": s.app_private_key(),
            "CLARITY_WEBHOOK_SECRETS": self.planted.webhook_secret,
            "DATABASE_URL": s.database_url,
            "REDIS_URL": s.redis_url,
            "CLARITY_GITHUB_API_URL": s.github_api_url,
            "CLARITY_QUEUE_PREFIX": s.queue_prefix,
            "CLARITY_BUILD_LEASE_TTL": "3",
            "CLARITY_RECONCILE_GRACE": "0",
            "CLARITY_SANDBOX_ROOT": str(s.sandbox_root),
            "CLARITY_SANDBOX_TOOLCHAINS": ",".join(s.sandbox_toolchains),
            "CLARITY_ENCRYPTION_KEYS": self.planted.encryption_key,
            "CLARITY_LLM_NUM_RETRIES": "0",
        }
        if s.llm_model:
            env |= {
                "CLARITY_LLM_MODEL": s.llm_model,
                "CLARITY_LLM_BASE_URL": s.llm_base_url or "",
                "CLARITY_LLM_API_KEY": self.planted.llm_api_key,
            }
        return env

    def _spawn(self, *args: str) -> subprocess.Popen:
        self.started += 1
        log = (self.logs / f"{args[0]}-{self.started}.log").open("wb")
        return subprocess.Popen(
            [sys.executable, "-m", "bot", *args],
            cwd=REPO_ROOT,
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def serve(self) -> str:
        port = free_port()
        self.server = self._spawn("serve", "--host", "127.0.0.1", "--port", str(port))
        wait_for_port(port, self.server, deadline=60)
        self.url = f"http://127.0.0.1:{port}"
        self.hub.webhook_url = f"{self.url}/webhooks/github"
        return self.url

    def start_worker(self) -> subprocess.Popen:
        worker = self._spawn("worker", "--lane", "all")
        self.workers.append(worker)
        return worker

    def kill(self, worker: subprocess.Popen) -> None:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        self.workers.remove(worker)

    def respawn(self) -> int:
        """What a supervisor does: start a new worker for each one that exited. Returns how many."""
        dead = [w for w in self.workers if w.poll() is not None]
        for worker in dead:
            self.workers.remove(worker)
            self.start_worker()
        self.respawned += len(dead)
        return len(dead)

    def open_pull_request(self, n: int, files: dict[str, bytes]) -> Any:
        """Pull request number `n+1`-ish on its own branch; returns its `opened` event."""
        branch = f"chaos-{n}-{secrets.token_hex(3)}"
        self.hub.commit_files(REPO, branch, files, message=f"Change {n}", base="main")
        pr = self.hub.open_pull_request(REPO, branch, title=f"Change {n}")
        return self.hub.pull_request_event(REPO, pr.number)

    def worker_with_pid(self, pid: int) -> subprocess.Popen | None:
        return next((w for w in self.workers if w.pid == pid), None)

    def stop(self) -> None:
        for process in [*self.workers, *([self.server] if self.server else [])]:
            if process.poll() is None:
                process.terminate()
        for process in [*self.workers, *([self.server] if self.server else [])]:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.workers.clear()

    # What the cluster produced, for the secrets grep.

    def log_texts(self) -> list[tuple[str, str]]:
        return [
            (f"log {path.name}", path.read_text(errors="replace"))
            for path in sorted(self.logs.glob("*.log"))
        ]

    async def row_texts(self) -> list[tuple[str, str]]:
        found = []
        async with self.db.session() as session:
            for table in SQLModel.metadata.sorted_tables:
                rows = (await session.exec(text(f'SELECT * FROM "{table.name}"'))).all()
                found += [(f"row of {table.name}", repr(tuple(row))) for row in rows]
        return found

    def github_texts(self) -> list[tuple[str, str]]:
        found = [
            (f"{call.method} {call.path}", repr(call.request_json))
            for call in self.hub.calls
            if call.request_json is not None
        ]
        for pr in self.hub.pull_requests(REPO):
            found += [
                (f"comment on #{pr.number}", c.body) for c in self.hub.comments(REPO, pr.number)
            ]
        found += [(f"check run {run.id}", repr(run)) for run in self.hub.check_runs(REPO)]
        return found

    async def everything(self) -> list[tuple[str, str]]:
        return [*self.log_texts(), *(await self.row_texts()), *self.github_texts()]

    # Waiting on the processes' work, never on time.

    async def until(self, condition: Callable[[], Awaitable[bool]], what: str) -> None:
        end = time.monotonic() + DEADLINE
        while not await condition():
            if time.monotonic() > end:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.05)

    async def builds_since(self, first_id: int) -> list[Build]:
        async with self.db.session() as session:
            return list(await session.exec(select(Build).where(Build.id >= first_id)))

    async def next_build_id(self) -> int:
        async with self.db.session() as session:
            ids = list(await session.exec(select(Build.id)))
        return max(ids, default=0) + 1

    async def unfinished_deliveries(self) -> int:
        async with self.db.session() as session:
            rows = await session.exec(
                select(Delivery.id).where(Delivery.status == DeliveryStatus.RECEIVED)
            )
            return len(list(rows))

    async def events(self, build_id: int) -> list[BuildEvent]:
        async with self.db.session() as session:
            return list(
                await session.exec(
                    select(BuildEvent)
                    .where(BuildEvent.build_id == build_id)
                    .order_by(BuildEvent.seq)
                )
            )

    async def store_secret(self, installation_id: int) -> None:
        """An installation's secret, sealed as `clarity secret set` would store it."""
        store = SecretStore(self.db, [self.planted.encryption_key])
        await store.put(installation_id, "deploy_token", self.planted.stored_secret)


@contextmanager
def standin(app_private_key: str, planted: Planted, files: dict[str, bytes]) -> Iterator[Hub]:
    hub = Hub(
        app_id=4242,
        client_id="Iv1.testclient",
        private_key_pem=app_private_key,
        webhook_secret=planted.webhook_secret,
    )
    installation = hub.add_installation("octo-org", installation_id=77)
    hub.add_repository("octo-org", "app", files, installation_id=installation.id)
    hub.set_permission(REPO, "maintainer", "write")
    planted.private_key = app_private_key
    planted.tokens = lambda: list(hub.tokens)
    with running(hub) as url:
        hub.api_url = url
        yield hub


@asynccontextmanager
async def running_cluster(
    db: Database,
    make_settings: Any,
    app_private_key: str,
    files: dict[str, bytes],
    tmp: Path,
    **settings: Any,
) -> AsyncIterator[Cluster]:
    """The stand-in holding `octo-org/app` with `files`, and `clarity serve` for it (no worker yet)."""
    planted = Planted()
    sandboxes = Path(tempfile.mkdtemp(prefix="clarity-chaos-"))  # the sandbox user must reach it
    (tmp / "logs").mkdir()
    with standin(app_private_key, planted, files) as hub:
        cluster = Cluster(
            make_settings(
                database_url=db.url, github_api_url=hub.api_url, sandbox_root=sandboxes, **settings
            ),
            hub,
            tmp / "logs",
            planted,
        )
        try:
            cluster.serve()
            yield cluster
        finally:
            cluster.stop()
            await cluster.db.dispose()
            await LocalSandboxProvider(sandboxes).reap(older_than=timedelta(0))
            shutil.rmtree(sandboxes, ignore_errors=True)
