"""`DaytonaShell`: a persistent shell on a Daytona process session.

Commands run one at a time in the session, so the working directory and exported
variables carry over. Daytona cannot interrupt one command of a session, so on a
timeout the whole session is deleted (which kills what it runs) and a fresh one is
opened in the workspace; the result says so, because the directory and variables
are back to their start. A session that ended by itself (a command ran `exit`)
raises `ShellClosedError`, as the local backend's shell does.
"""

from __future__ import annotations

import asyncio
import math
import shlex
import time
import uuid

from daytona import AsyncSandbox, DaytonaError, SessionExecuteRequest
from daytona.common.errors import DaytonaGoneError, DaytonaNotFoundError

from orchestrator.sandbox.base import ExecResult
from orchestrator.sandbox.daytona_errors import translate
from orchestrator.sandbox.local_shell import ShellClosedError

KILLED = 137


class DaytonaShell:
    """Implements `Shell` for `DaytonaSandbox`."""

    def __init__(
        self, remote: AsyncSandbox, workspace: str, default_timeout: float, limits: str = ""
    ) -> None:
        self._remote = remote
        self._workspace = workspace
        self._default_timeout = default_timeout
        self._limits = limits  # shell commands setting the sandbox's limits on the session
        self._session: str | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @classmethod
    async def open(
        cls, remote: AsyncSandbox, workspace: str, *, default_timeout: float, limits: str = ""
    ) -> DaytonaShell:
        shell = cls(remote, workspace, default_timeout, limits)
        await shell._start()
        return shell

    @property
    def closed(self) -> bool:
        return self._closed

    async def _start(self) -> None:
        session = f"clarity-{uuid.uuid4().hex}"
        try:
            await self._remote.process.create_session(session)
            self._session = session
            start = f"cd {shlex.quote(self._workspace)}"
            await self._execute(f"{start}; {self._limits}" if self._limits else start, None)
        except DaytonaError as error:
            raise translate(error) from None

    async def _execute(self, command: str, timeout: float | None):
        assert self._session is not None
        request = SessionExecuteRequest(command=command)
        seconds = math.ceil(timeout) if timeout else None
        return await self._remote.process.execute_session_command(
            self._session, request, timeout=seconds
        )

    async def run(self, command: str, *, timeout: float | None = None) -> ExecResult:
        """Run one command in the session; cwd and exported variables carry over."""
        async with self._lock:
            if self._closed:
                raise ShellClosedError("the shell session has ended")
            limit = self._default_timeout if timeout is None else timeout
            started = time.monotonic()
            try:
                async with asyncio.timeout(limit):
                    response = await self._execute(command, limit)
            except TimeoutError:
                await self._restart()
                note = (
                    f"[timed out after {limit:g}s; the shell was restarted in {self._workspace}]\n"
                )
                return ExecResult(
                    KILLED, "", note, timed_out=True, duration=time.monotonic() - started
                )
            except (DaytonaGoneError, DaytonaNotFoundError):
                # the session's shell exited (a command ran `exit`), or the sandbox is gone
                self._closed = True
                raise ShellClosedError("the shell session has ended") from None
            except DaytonaError as error:
                raise translate(error) from None
            if response.exit_code is None:
                self._closed = True
                raise ShellClosedError("the shell session ended during the command")
            return ExecResult(
                exit_code=response.exit_code,
                stdout=response.stdout or "",
                stderr=response.stderr or "",
                duration=time.monotonic() - started,
            )

    async def _restart(self) -> None:
        await self._delete()
        await self._start()

    async def _delete(self) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        try:
            await self._remote.process.delete_session(session)
        except (DaytonaGoneError, DaytonaNotFoundError):
            pass
        except DaytonaError as error:
            raise translate(error) from None

    async def close(self) -> None:
        """End the session; idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._delete()

    def forget(self) -> None:
        """The sandbox is being deleted, and its sessions with it."""
        self._closed = True
        self._session = None
