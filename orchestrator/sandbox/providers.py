"""Making the configured sandbox provider (the worker calls this once, at start-up)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.sandbox.base import SandboxProvider


def make_provider(
    backend: str,
    *,
    root: Path | None = None,
    toolchains: tuple[str, ...] = (),
    daytona_api_url: str | None = None,
    daytona_api_key: str | None = None,
    daytona_target: str | None = None,
    daytona_snapshot: str | None = None,
    daytona_image: str | None = None,
) -> SandboxProvider:
    """A `LocalSandboxProvider` or a `DaytonaSandboxProvider`, as configured."""
    if backend == "local":
        from orchestrator.sandbox.local import LocalSandboxProvider

        return LocalSandboxProvider(root, toolchains=toolchains)
    if backend == "daytona":
        from orchestrator.sandbox.daytona import DaytonaSandboxProvider
        from orchestrator.sandbox.daytona_policy import DaytonaOptions

        if not (daytona_api_url and daytona_api_key):
            raise ValueError("the daytona backend needs an API URL and key")
        return DaytonaSandboxProvider.connect(
            api_key=daytona_api_key,
            api_url=daytona_api_url,
            target=daytona_target,
            options=DaytonaOptions(snapshot=daytona_snapshot, image=daytona_image),
        )
    raise ValueError(f"unknown sandbox backend {backend!r}")
