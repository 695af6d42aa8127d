"""Load generation shared by the load test and the benchmarks: `clarity` processes, and an
open-loop sender of pre-built webhook deliveries at a fixed rate."""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.services import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def clarity_process(
    args: Sequence[str], env: Mapping[str, str], log: Path | None = None
) -> Iterator[subprocess.Popen]:
    """`python -m <args>` (e.g. `bot worker --lane fast`) in its own process, stopped on exit;
    its output goes to `log` when given."""
    output = log.open("ab") if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env=dict(env),
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        if log is not None:
            output.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def serving_process(
    args: Sequence[str], env: Mapping[str, str], log: Path | None = None
) -> Iterator[tuple[subprocess.Popen, str]]:
    """A web server (`args` take `--port`) in its own process: (process, base URL) once it answers."""
    port = free_port()
    with clarity_process([*args, "--port", str(port)], env, log) as process:
        wait_for_port(port, process)
        yield process, f"http://127.0.0.1:{port}"


def raw_request(host: str, body: bytes, headers: Mapping[str, str]) -> bytes:
    """One `POST /webhooks/github` as bytes on the wire."""
    lines = ["POST /webhooks/github HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Connection:
    """One keep-alive HTTP/1.1 connection sending pre-built requests (a lean load generator)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, raw: bytes) -> int:
        self.writer.write(raw)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionResetError("closed before answering")
        status = int(status_line.split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status


@dataclass
class Answers:
    """What the server answered: latencies (ms, from each scheduled send) and status codes."""

    latencies: list[float] = field(default_factory=list)
    # ms between each request's scheduled time and its first byte leaving the sender: the
    # sender's own delay, part of its latency (a busy machine delays the sender too).
    lateness: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    status_of: dict[int, int] = field(default_factory=dict)  # request index -> status code
    errors: int = 0  # connections that failed before an answer

    @property
    def refused(self) -> int:
        """Requests that got no 2xx answer."""
        return self.errors + sum(n for code, n in self.statuses.items() if not 200 <= code < 300)


async def open_loop(url: str, requests: Sequence[bytes], rate: float) -> Answers:
    """Send `requests` (see `raw_request`) at `rate` per second regardless of answers.

    Each send takes an idle keep-alive connection or opens a new one, so a slow
    answer never delays the next scheduled send (no coordinated omission).
    """
    host, port = url.removeprefix("http://").split(":")
    idle: list[_Connection] = []
    opened: list[_Connection] = []
    answers = Answers()

    async def fresh() -> _Connection:
        connection = _Connection(*await asyncio.open_connection(host, int(port)))
        opened.append(connection)
        return connection

    async def one(i: int, scheduled: float) -> None:
        connection = idle.pop() if idle else await fresh()
        answers.lateness.append((time.perf_counter() - scheduled) * 1000)
        try:
            try:
                status = await connection.send(requests[i])
            except ConnectionResetError:
                # The server closed this idle keep-alive connection (as uvicorn does after 5 s)
                # before the request reached it: send again on a new one, as HTTP clients do.
                connection = await fresh()
                status = await connection.send(requests[i])
        except (OSError, IndexError, ValueError, asyncio.IncompleteReadError):
            answers.errors += 1
            return
        # Measured from the scheduled send time, so a stalled server cannot hide its queueing.
        answers.latencies.append((time.perf_counter() - scheduled) * 1000)
        answers.statuses[status] += 1
        answers.status_of[i] = status
        idle.append(connection)

    # A full collection of this process's heap (the requests, a GitHub stand-in) pauses the
    # sender for ~300 ms, which would be charged to the server: collect only what is new.
    gc.freeze()
    try:
        # One pacing loop starts each send at its time (creating thousands of sleeping tasks
        # up front would itself delay the first sends).
        sends = []
        start = time.perf_counter()
        for i in range(len(requests)):
            scheduled = start + i / rate
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            sends.append(asyncio.create_task(one(i, scheduled)))
        await asyncio.gather(*sends)
    finally:
        gc.unfreeze()
    for connection in opened:
        connection.writer.close()
    return answers


def open_loop_apart(url: str, requests: Sequence[bytes], rate: float) -> Answers:
    """`open_loop` in a process of its own, so that nothing else of the caller's (a GitHub
    stand-in's threads, pollers) can stall the sender: its stalls would be charged to the
    server. Blocking: call it from a thread."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_open_loop_here, url, list(requests), rate).result()


def _open_loop_here(url: str, requests: list[bytes], rate: float) -> Answers:
    return asyncio.run(open_loop(url, requests, rate))


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, kernel) CPU seconds a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks  # utime, stime


def percentile(values: Sequence[float], q: float) -> float:
    """The `q` quantile (0 < q < 1) of `values`, interpolated."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1]
