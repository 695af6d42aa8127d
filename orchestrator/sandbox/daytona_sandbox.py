"""`DaytonaSandbox`: the `Sandbox` protocol on one Daytona sandbox, through the SDK's async client.

Daytona's `process.exec` returns stdout and stderr combined, so each command runs
inside a small wrapper that sends its stderr to a temporary file and prints it
after a random marker; the two are split again here. Paths are confined to the
workspace the way the local backend confines them: resolved inside the sandbox
(`realpath`, symlinks included) and refused when they lead out of it.
"""

from __future__ import annotations

import math
import posixpath
import shlex
import time
import uuid
from collections.abc import Mapping, Sequence

import structlog
from daytona import AsyncDaytona, AsyncSandbox, DaytonaError, DaytonaNotFoundError, FileUpload
from daytona import DaytonaTimeoutError as SdkTimeout

from orchestrator.sandbox.base import (
    CloneSource,
    ExecResult,
    FileInfo,
    RepoSnapshot,
    SandboxError,
    SandboxSpec,
    Shell,
)
from orchestrator.sandbox.daytona_errors import translate
from orchestrator.sandbox.daytona_policy import limit_commands
from orchestrator.sandbox.daytona_shell import DaytonaShell
from orchestrator.sandbox.local import SandboxGoneError
from orchestrator.sandbox.local_files import MissingFileError, NotAFileError, PathEscapeError

log = structlog.get_logger(__name__)

KILLED = 137  # what a shell reports for a command killed by SIGKILL, as the local backend does
OUTPUT_LIMIT = 1024 * 1024  # characters of stdout, and of stderr, kept per command
PATH_TIMEOUT = 30
SETUP_TIMEOUT = 600
BASELINE_IDENTITY = "-c user.name=Snapshot -c user.email=snapshot@clarity.invalid"


class DaytonaSandbox:
    """Implements `Sandbox` on a Daytona sandbox; `destroy()` deletes it."""

    def __init__(
        self, client: AsyncDaytona, remote: AsyncSandbox, spec: SandboxSpec, workspace: str
    ) -> None:
        self.id = remote.id
        self.workspace = workspace
        self._client = client
        self._remote = remote
        self._spec = spec
        self._baseline: str | None = None
        self._shells: list[DaytonaShell] = []
        self._destroyed = False

    @property
    def remote(self) -> AsyncSandbox:
        """The SDK's sandbox object, for the provider's set-up steps."""
        return self._remote

    def __repr__(self) -> str:
        return f"DaytonaSandbox(id={self.id!r}, workspace={self.workspace!r})"

    # -- commands ----------------------------------------------------------------------

    async def exec(
        self,
        command: str | Sequence[str],
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> ExecResult:
        """Run `command` in the workspace (or `cwd` inside it); a timeout kills its process tree."""
        self._check()
        text = command if isinstance(command, str) else shlex.join(command)
        if not text.strip():
            raise SandboxError("empty command")
        limit = self._spec.limits.wall_seconds if timeout is None else timeout
        return await self.run(text, cwd=self._cwd(cwd), env=_checked_env(env), timeout=limit)

    async def run(
        self, command: str, *, cwd: str, timeout: float, env: Mapping[str, str] | None = None
    ) -> ExecResult:
        """Run a shell command in any directory of the sandbox (set-up steps use it outside the workspace)."""
        marker = f"__clarity_stderr_{uuid.uuid4().hex}__"
        started = time.monotonic()
        try:
            response = await self._remote.process.exec(
                self._wrapped(command, marker),
                cwd=cwd,
                env=dict(env or {}),
                timeout=max(1, math.ceil(timeout)),
            )
        except SdkTimeout:
            # The daemon killed the command's process tree when its time was up.
            return ExecResult(KILLED, "", "", timed_out=True, duration=time.monotonic() - started)
        except DaytonaError as error:
            raise translate(error) from None
        stdout, found, stderr = (response.result or "").rpartition(marker)
        if not found:
            stdout, stderr = stderr, ""
        return ExecResult(
            exit_code=response.exit_code if response.exit_code is not None else -1,
            stdout=_bounded(stdout),
            stderr=_bounded(stderr),
            duration=time.monotonic() - started,
        )

    def _wrapped(self, command: str, marker: str) -> str:
        """`command` under bash (or sh) and the spec's limits, its stderr printed after `marker`.

        The limits are set in the inner shell, so the wrapper can still report a command
        that used up its processes.
        """
        limited = f"{limit_commands(self._spec.limits)}\n{command}"
        return (
            "e=$(mktemp) || exit 125; s=$(command -v bash || echo sh); "
            f'"$s" -c {shlex.quote(limited)} 2>"$e" </dev/null; c=$?; '
            f'printf \'%s\' {marker}; cat "$e"; rm -f "$e"; exit $c'
        )

    async def shell(self) -> Shell:
        """A persistent session (a Daytona process session) starting in the workspace."""
        self._check()
        shell = await DaytonaShell.open(
            self._remote,
            self.workspace,
            default_timeout=self._spec.limits.wall_seconds,
            limits=limit_commands(self._spec.limits),
        )
        self._shells.append(shell)
        return shell

    # -- files -------------------------------------------------------------------------

    async def read_file(self, path: str) -> bytes:
        self._check()
        real, kind = await self._locate(path)
        if kind == "missing":
            raise MissingFileError(f"{path!r} does not exist")
        if kind != "file":
            raise NotAFileError(f"{path!r} is not a regular file")
        try:
            return await self._remote.fs.download_file(real)
        except DaytonaError as error:
            raise translate(error) from None

    async def write_file(self, path: str, data: bytes) -> None:
        self._check()
        real, kind = await self._locate(path)
        if real == self.workspace or kind not in ("file", "missing"):
            raise NotAFileError(f"{path!r} is not a regular file")
        try:
            await self._remote.fs.upload_files([FileUpload(data, real)])
        except DaytonaError as error:
            raise translate(error) from None

    async def list_files(self, path: str = ".") -> list[FileInfo]:
        """The entries of one directory, with paths relative to the workspace."""
        self._check()
        real, kind = await self._locate(path)
        if kind == "missing":
            raise MissingFileError(f"{path!r} does not exist")
        if kind != "dir":
            raise NotAFileError(f"{path!r} is not a directory")
        try:
            entries = await self._remote.fs.list_files(real)
        except DaytonaError as error:
            raise translate(error) from None
        base = posixpath.relpath(real, self.workspace)
        infos = [
            FileInfo(
                path=posixpath.normpath(posixpath.join(base, entry.name)),
                is_dir=entry.is_dir,
                size=entry.size,
            )
            for entry in entries
        ]
        return sorted(infos, key=lambda info: info.path)

    def _check(self) -> None:
        if self._destroyed:
            raise SandboxGoneError(f"sandbox {self.id} no longer exists")

    def _cwd(self, cwd: str | None) -> str:
        """The working directory: the workspace, or `cwd` relative to it (as the local backend does)."""
        if cwd is None:
            return self.workspace
        return posixpath.normpath(posixpath.join(self.workspace, cwd))

    def _inside(self, path: str) -> str:
        """`path` as an absolute path in the workspace, refusing one that leads out of it lexically."""
        if "\0" in path:
            raise PathEscapeError("path contains NUL")
        joined = posixpath.normpath(posixpath.join(self.workspace, path))
        if joined != self.workspace and not joined.startswith(self.workspace + "/"):
            raise PathEscapeError(f"{path!r} leads outside the workspace")
        return joined

    async def _locate(self, path: str) -> tuple[str, str]:
        """Resolve `path` in the sandbox, symlinks included: its real path and its kind."""
        lexical = self._inside(path)
        script = (
            f"p=$(realpath -m -- {shlex.quote(lexical)}) || exit 2; printf '%s\\n' \"$p\"; "
            'if [ -d "$p" ]; then echo dir; elif [ -f "$p" ]; then echo file; '
            'elif [ -e "$p" ] || [ -L "$p" ]; then echo other; else echo missing; fi'
        )
        try:
            response = await self._remote.process.exec(script, timeout=PATH_TIMEOUT)
        except DaytonaError as error:
            raise translate(error) from None
        lines = (response.result or "").splitlines()
        if response.exit_code != 0 or len(lines) < 2:
            raise SandboxError(f"cannot resolve {path!r} in the sandbox")
        real, kind = lines[-2], lines[-1]
        if real != self.workspace and not real.startswith(self.workspace + "/"):
            raise PathEscapeError(f"{path!r} leads outside the workspace")
        return real, kind

    # -- changes -----------------------------------------------------------------------

    async def record_baseline(self, snapshot: RepoSnapshot) -> None:
        """Take the clone's HEAD, or commit the unpacked archive, as what `diff()` compares to."""
        if isinstance(snapshot, CloneSource):
            script = "git rev-parse HEAD"
        else:
            script = (
                "git -c init.defaultBranch=main init -q && git add -A -f && "
                f"git {BASELINE_IDENTITY} -c commit.gpgsign=false -c core.hooksPath=/dev/null "
                "commit -q --no-verify --allow-empty -m snapshot && git rev-parse HEAD"
            )
        result = await self.run(script, cwd=self.workspace, timeout=SETUP_TIMEOUT)
        if not result.ok:
            raise SandboxError(f"could not record the snapshot: {result.stderr.strip()[-500:]}")
        self._baseline = result.stdout.strip()

    async def diff(self) -> str:
        """Changes against the snapshot as a binary git patch (`git apply` takes it).

        Bytes that are not UTF-8 come back as surrogate escapes, as from the local backend.
        """
        self._check()
        name = f".git/clarity-{uuid.uuid4().hex}.patch"
        # Through a file, not the command's output, so a large patch is never truncated;
        # committed work is included because the comparison is with the snapshot commit.
        result = await self.run(
            "git add -A && git diff --cached --binary --no-ext-diff --no-textconv --no-color "
            f"--no-renames --src-prefix=a/ --dst-prefix=b/ --output={name} {self._baseline}",
            cwd=self.workspace,
            timeout=SETUP_TIMEOUT,
        )
        if not result.ok:
            raise SandboxError(f"git diff failed: {result.stderr.strip()[-500:]}")
        patch = f"{self.workspace}/{name}"
        try:
            data = await self._remote.fs.download_file(patch)
        except DaytonaError as error:
            raise translate(error) from None
        finally:
            await self.run(f"rm -f {shlex.quote(patch)}", cwd=self.workspace, timeout=PATH_TIMEOUT)
        return data.decode("utf-8", "surrogateescape")

    # -- lifetime ----------------------------------------------------------------------

    async def destroy(self) -> None:
        """Delete the sandbox; idempotent, and a sandbox already gone counts as deleted."""
        if self._destroyed:
            return
        for shell in self._shells:
            shell.forget()
        try:
            await self._client.delete(self._remote)
        except DaytonaNotFoundError:
            pass
        except DaytonaError as error:
            raise translate(error) from None
        self._destroyed = True
        log.info("sandbox.destroyed", sandbox_id=self.id)


def _checked_env(env: Mapping[str, str] | None) -> dict[str, str]:
    checked = dict(env or {})
    for name, value in checked.items():
        if not name or "=" in name or "\0" in name or "\0" in value:
            raise SandboxError(f"invalid environment variable {name!r}")
    return checked


def _bounded(text: str) -> str:
    if len(text) <= OUTPUT_LIMIT:
        return text
    return (
        text[:OUTPUT_LIMIT] + f"\n[output truncated: {len(text) - OUTPUT_LIMIT} more characters]\n"
    )
