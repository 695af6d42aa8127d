"""The sandbox protocol: where repository code runs, isolated from the control plane.

Two backends implement it: `LocalSandbox` (bubblewrap; the embedded default and
the CI backend) and `DaytonaSandbox` (the `daytona` SDK; production). Code that
runs untrusted commands depends only on this module.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Protocol, runtime_checkable

from bot import metrics


class SandboxError(Exception):
    """A sandbox could not be created or used."""


class NetworkMode(StrEnum):
    NONE = "none"  # no network at all
    ALLOWLIST = (
        "allowlist"  # only `SandboxSpec.allow_hosts` (backends that cannot filter refuse it)
    )


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits for everything run in one sandbox."""

    cpu_seconds: int = 300
    memory_bytes: int = 2 * 1024**3
    processes: int = 256
    file_size_bytes: int = 512 * 1024**2
    wall_seconds: float = 600.0  # default timeout of one exec


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    """What to create: who it is for, its network and limits, and the environment it may see."""

    build_id: int
    installation_id: int
    network: NetworkMode = NetworkMode.NONE
    allow_hosts: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    env: Mapping[str, str] = field(default_factory=dict)  # the only variables visible inside
    lifetime: timedelta = timedelta(hours=1)  # auto-stop / reap after this


@dataclass(frozen=True, slots=True)
class CloneSource:
    """Clone `url` at `ref` with a short-lived read-only token (never left in the workspace)."""

    url: str
    ref: str
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class ArchiveSource:
    """A gzipped tarball the control plane downloaded (GitHub's tarball: one top-level folder)."""

    data: bytes = field(repr=False)
    strip_top_level: bool = True


RepoSnapshot = CloneSource | ArchiveSource


@dataclass(frozen=True, slots=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


@dataclass(frozen=True, slots=True)
class FileInfo:
    path: str  # relative to the workspace
    is_dir: bool
    size: int


@runtime_checkable
class Shell(Protocol):
    """A persistent shell session: working directory and exported variables carry over."""

    async def run(self, command: str, *, timeout: float | None = None) -> ExecResult: ...

    async def close(self) -> None: ...


@runtime_checkable
class Sandbox(Protocol):
    id: str
    workspace: str  # absolute path of the repository inside the sandbox

    async def exec(
        self,
        command: str | Sequence[str],
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> ExecResult:
        """Run `command` (a shell string, or an argv list) in the workspace."""
        ...

    async def shell(self) -> Shell: ...

    async def read_file(self, path: str) -> bytes:
        """`path` is relative to the workspace (or absolute inside it)."""
        ...

    async def write_file(self, path: str, data: bytes) -> None: ...

    async def list_files(self, path: str = ".") -> list[FileInfo]: ...

    async def diff(self) -> str:
        """The workspace's changes against the snapshot, as a binary git patch."""
        ...

    async def destroy(self) -> None:
        """Idempotent; afterwards nothing of the sandbox remains."""
        ...


@runtime_checkable
class SandboxProvider(Protocol):
    async def create(self, spec: SandboxSpec, snapshot: RepoSnapshot) -> Sandbox: ...

    async def reap(self, older_than: timedelta) -> int:
        """Destroy sandboxes of ours older than `older_than` (leaked by a crash); how many."""
        ...


@asynccontextmanager
async def open_sandbox(
    provider: SandboxProvider, spec: SandboxSpec, snapshot: RepoSnapshot
) -> AsyncIterator[Sandbox]:
    """A sandbox that is always destroyed, however the block ends."""
    started = time.monotonic()
    sandbox = await provider.create(spec, snapshot)
    try:
        yield sandbox
    finally:
        # A cancellation (abort, lost lease) must not cut the clean-up short: finish it first.
        destroying = asyncio.ensure_future(sandbox.destroy())
        try:
            await asyncio.shield(destroying)
        except asyncio.CancelledError:
            await destroying
            raise
        finally:
            metrics.sandbox_closed(provider, started)
