"""Both sandbox backends for the escape and limit suites: a `backend` fixture per provider.

`local` is LocalSandboxProvider; `daytona` is DaytonaSandboxProvider through the real
SDK against the Daytona stand-in, whose sandboxes are local sandboxes too, so what
runs on the host behind a Daytona sandbox can be found and checked the same way.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator.sandbox import local_process
from orchestrator.sandbox.base import Limits, Sandbox, SandboxProvider, SandboxSpec
from orchestrator.sandbox.daytona import DaytonaSandboxProvider
from orchestrator.sandbox.local import LocalSandbox, LocalSandboxProvider
from tests.chaos_report import Report
from tests.daytona_standin import DaytonaState, running_daytona
from tests.sandbox_contract import archive

MiB = 1024**2
TIGHT = SandboxSpec(
    build_id=1,
    installation_id=1,
    limits=Limits(
        cpu_seconds=2,
        memory_bytes=256 * MiB,
        processes=32,
        file_size_bytes=8 * MiB,
        wall_seconds=10.0,
    ),
)
SIGXCPU, SIGXFSZ, SIGKILL = 24, 25, 9
BACKENDS = ["local", "daytona"]


@dataclass
class Backend:
    """One provider, and where its sandboxes live on this host."""

    name: str
    provider: SandboxProvider
    root: Path  # the host directory holding every sandbox of this provider
    state: DaytonaState | None = None

    def local(self, box: Sandbox) -> LocalSandbox:
        """The local sandbox doing the work: the box itself, or the stand-in's machine behind it."""
        if self.state is None:
            assert isinstance(box, LocalSandbox)
            return box
        return self.state.sandboxes[box.id].machine.sandbox

    def host_workspace(self, box: Sandbox) -> Path:
        """The host directory behind `box.workspace`."""
        top = self.local(box).directory / "workspace"  # the local sandbox's /workspace
        return top / Path(box.workspace).relative_to("/workspace")


@pytest.fixture(scope="module")
def daytona_standin() -> Iterator[tuple[str, str, DaytonaState]]:
    """One stand-in per module: starting it costs more than the attempts themselves."""
    with running_daytona() as served:
        yield served


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "local":
        root = Path(tempfile.mkdtemp(prefix="clarity-escape-test-"))
        try:
            yield Backend("local", LocalSandboxProvider(root, tmp_bytes=4 * MiB), root)
        finally:
            await LocalSandboxProvider(root).reap(older_than=timedelta(0))
            shutil.rmtree(root)
        return
    api_url, api_key, state = request.getfixturevalue("daytona_standin")
    provider = DaytonaSandboxProvider.connect(api_key=api_key, api_url=api_url, target="local")
    try:
        yield Backend("daytona", provider, state.root, state)
    finally:
        await provider.close()


@pytest.fixture
async def box(backend: Backend) -> AsyncIterator[Sandbox]:
    """A sandbox with tight limits; afterwards nothing of it may still run."""
    sandbox = await backend.provider.create(TIGHT, archive())
    behind = backend.local(sandbox)
    try:
        yield sandbox
    finally:
        await sandbox.destroy()
    assert local_process.processes_mentioning(f"--hostname\0{behind.id}\0") == []


def python(code: str) -> list[str]:
    return ["python3", "-c", code]


@dataclass
class Tally:
    """Attempts per backend, and how many of them were stopped; recorded once per module."""

    figure: str
    attempted: dict[str, int] = field(default_factory=dict)
    stopped_: dict[str, int] = field(default_factory=dict)
    report: Report | None = None

    def record(self) -> None:
        for name, total in self.attempted.items():
            stopped = self.stopped_.get(name, 0)
            assert self.report is not None
            self.report.record(
                "Sandbox",
                f"{self.figure} ({name})",
                f"{stopped}/{total}",
                target="all",
                ok=stopped == total,
            )


@dataclass
class Attempt:
    """One escape attempt of a test; the test calls `stopped()` once every check has passed."""

    tally: Tally
    backend: str

    def stopped(self) -> None:
        self.tally.stopped_[self.backend] = self.tally.stopped_.get(self.backend, 0) + 1

    def skip(self, reason: str) -> None:
        """Not an attempt on this backend: uncounted, and the test skipped with `reason`."""
        self.tally.attempted[self.backend] -= 1
        pytest.skip(reason)


def attempts(figure: str) -> Callable[..., Iterator[Tally]]:
    """A module fixture counting the module's attempts under `figure` in the chaos report."""

    @pytest.fixture(scope="module")
    def tally() -> Iterator[Tally]:
        counted = Tally(figure)
        yield counted
        if counted.report is not None:
            counted.record()

    return tally


@pytest.fixture
def attempt(tally: Tally, backend: Backend, chaos: Report) -> Attempt:
    tally.report = chaos
    tally.attempted[backend.name] = tally.attempted.get(backend.name, 0) + 1
    return Attempt(tally, backend.name)


def fixtures() -> tuple[Any, ...]:
    """`backend, box, attempt, daytona_standin`, for a test module to bind under those names."""
    return backend, box, attempt, daytona_standin
