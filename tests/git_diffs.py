"""Real `git` for tests: a throwaway repository and the diff the sandbox would hand over."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

GIT_ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
# the sandbox's own diff command (orchestrator/sandbox/local.py)
SANDBOX_DIFF = (
    "diff --cached --binary --no-ext-diff --no-textconv --no-color --no-renames"
    " --src-prefix=a/ --dst-prefix=b/"
).split()


def git(root: Path, *args: str) -> bytes:
    """Run git in `root`, away from any user or system configuration."""
    return subprocess.run(
        ["git", *args], cwd=root, env=GIT_ENV, check=True, capture_output=True
    ).stdout


def write(root: Path, files: Mapping[str, bytes | None], executable: tuple[str, ...] = ()) -> None:
    """Write `files` under `root` (None deletes), executable or not."""
    for path, content in files.items():
        target = root / path
        if content is None:
            target.unlink()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(0o755 if path in executable else 0o644)


def repository(root: Path, files: Mapping[str, bytes], executable: tuple[str, ...] = ()) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q")
    write(root, files, executable)
    git(root, "add", "-A")
    git(root, "-c", "user.name=T", "-c", "user.email=t@x", "commit", "-qm", "base", "--allow-empty")
    return root


def staged_diff(root: Path, *, renames: bool = False, binary: bool = True) -> str:
    """Everything changed since the base commit, as the sandbox hands it over (by default)."""
    git(root, "add", "-A")
    options = [o for o in SANDBOX_DIFF if o != "--binary" or binary]
    options = [o if o != "--no-renames" or not renames else "-M" for o in options]
    return git(root, *options).decode("utf-8", "surrogateescape")


def git_diff(
    root: Path,
    before: Mapping[str, bytes],
    after: Mapping[str, bytes | None],
    *,
    renames: bool = False,
    executable: tuple[str, ...] = (),
) -> str:
    repository(root, before, executable)
    write(root, after, executable)
    return staged_diff(root, renames=renames)
