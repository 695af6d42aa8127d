"""Starting sandboxed processes from asyncio: bounded output, timeouts, killing whole trees.

Output is read as it comes (so a chatty command never blocks on a full pipe) and
kept up to a bound; the rest is counted and dropped. Killing the outer `bwrap`
ends everything inside: its pid 1 dies with it (`--die-with-parent`), and a pid
namespace ends with its pid 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.sandbox.base import ExecResult

OUTPUT_LIMIT = 1024 * 1024  # bytes of stdout, and of stderr, kept per command
# How long the pipes may stay open after the process was killed (nothing inside can
# outlive bwrap, so this is only a bound on our own wait).
DRAIN_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Credentials:
    """The unprivileged host identity bwrap runs as (when the worker itself is root)."""

    uid: int
    gid: int

    def popen_args(self) -> dict[str, Any]:
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


@dataclass(slots=True)
class BoundedOutput:
    """Bytes kept up to `limit`; beyond it only counted."""

    limit: int = OUTPUT_LIMIT
    kept: bytearray = field(default_factory=bytearray)
    omitted: int = 0

    def add(self, data: bytes) -> None:
        room = self.limit - len(self.kept)
        if room > 0:
            self.kept += data[:room]
        self.omitted += max(0, len(data) - max(room, 0))

    def text(self) -> str:
        text = self.kept.decode("utf-8", "replace")
        if self.omitted:
            text += f"\n[output truncated: {self.omitted} more bytes]\n"
        return text


def exit_code(returncode: int | None) -> int:
    """The shell's convention: a process killed by signal N exits with 128 + N."""
    if returncode is None:
        return -1
    return 128 - returncode if returncode < 0 else returncode


async def _pump(stream: asyncio.StreamReader, sink: BoundedOutput) -> None:
    while chunk := await stream.read(65536):
        sink.add(chunk)


def kill(process: asyncio.subprocess.Process, label: str) -> None:
    """SIGKILL the outer bwrap and the sandbox's pid 1; the pid namespace ends with it.

    bwrap's pid 1 normally dies with the outer bwrap, but not when the outer one is
    killed before pid 1 has set its parent-death signal; pid 1 carries the same
    command line, so `label` finds it. Once SIGKILL is pending the outer bwrap can
    start no new child, so nothing appears after the search.
    """
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL)
        kill_pids(processes_mentioning(f"\0{label}\0"))


async def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    credentials: Credentials | None,
    label: str,
    stdin: int = asyncio.subprocess.DEVNULL,
) -> asyncio.subprocess.Process:
    """Start bwrap in its own session, as the unprivileged identity when there is one.

    Cancelling this does not leave a half-started bwrap behind: the start is
    finished, and the process killed, before the cancellation goes on.
    """
    extra = credentials.popen_args() if credentials else {}
    starting = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            *argv,
            stdin=stdin,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env),
            start_new_session=True,
            close_fds=True,
            **extra,
        )
    )
    try:
        return await asyncio.shield(starting)
    except asyncio.CancelledError:
        await stop(await starting, label)
        raise


async def stop(process: asyncio.subprocess.Process, label: str) -> None:
    """Kill the process and wait, for a bounded time, until it and its pipes are gone."""
    kill(process, label)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), DRAIN_SECONDS)
    # A pipe still open after the wait (a dying descendant held it) would keep the transport
    # alive past this event loop, to be closed by the garbage collector on a closed loop.
    transport = getattr(process, "_transport", None)
    if transport is not None:
        transport.close()


async def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout: float,
    credentials: Credentials | None,
    label: str,
    live: dict[asyncio.subprocess.Process, str],
    output_limit: int = OUTPUT_LIMIT,
) -> ExecResult:
    """Run to completion or until `timeout`; `live` maps the process to `label` meanwhile."""
    started = time.monotonic()
    process = await spawn(argv, env=env, credentials=credentials, label=label)
    live[process] = label
    out, err = BoundedOutput(output_limit), BoundedOutput(output_limit)
    assert process.stdout is not None and process.stderr is not None
    pumps = asyncio.gather(_pump(process.stdout, out), _pump(process.stderr, err))
    timed_out = False
    try:
        await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        timed_out = True
    finally:
        # Also when this coroutine is cancelled: nothing may keep running.
        live.pop(process, None)
        kill(process, label)
        # Output written just before the end may still be in the pipes; reading it to the
        # end is also what lets the pipes, and so `wait`, finish.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(pumps), DRAIN_SECONDS)
        pumps.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumps
        await stop(process, label)
    return ExecResult(
        exit_code=exit_code(process.returncode),
        stdout=out.text(),
        stderr=err.text(),
        timed_out=timed_out,
        duration=time.monotonic() - started,
    )


def _process_table() -> dict[int, tuple[int, str]]:
    """pid → (parent pid, command name), from the host's /proc."""
    table: dict[int, tuple[int, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                raw = stat.read()
        except OSError:
            continue
        # The command name is in parentheses and may itself contain spaces or ')'.
        name_end = raw.rfind(b")")
        fields = raw[name_end + 2 :].split()
        table[int(entry)] = (int(fields[1]), raw[raw.find(b"(") + 1 : name_end].decode())
    return table


def descendants(pid: int) -> list[tuple[int, str]]:
    """Every process below `pid`, parents before children, with their command names."""
    children: dict[int, list[tuple[int, str]]] = {}
    for child, (parent, name) in _process_table().items():
        children.setdefault(parent, []).append((child, name))
    found: list[tuple[int, str]] = []
    queue = [pid]
    while queue:
        for child in children.get(queue.pop(0), []):
            found.append(child)
            queue.append(child[0])
    return found


def processes_mentioning(text: str) -> list[int]:
    """Host pids whose command line contains `text` (a sandbox's own directory)."""
    needle = text.encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                if needle in cmdline.read():
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def kill_pids(pids: Sequence[int]) -> None:
    """SIGKILL each pid; one that is already gone is fine."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
