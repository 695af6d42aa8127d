"""Worker benchmark: what one delivery costs `clarity worker` next to arq running a no-op job.

Both workers run as single processes on this machine, in the same run, on the same Redis.
N deliveries are stored in a PostgreSQL inbox and queued at once, as the web process
queues them; the figures are the worker's CPU time per delivery (utime + stime from
/proc, idle polling included) and deliveries per second until the last one's result is
in Redis. The deliveries are the kind a busy organisation sends most of those that reach
a worker: half comments on pull requests quoting a command in code (parsed, nothing to
run), half other pull requests closed (recorded, no build in flight). Neither calls GitHub.

Reference: `bench/bare_worker.py`, arq configured as the fast lane is, running the same
number of jobs of a function that returns at once: arq's own cost per job.

    .venv/bin/python bench/worker_bench.py [--deliveries 2000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from arq.constants import result_key_prefix  # noqa: E402

from bench.intake_bench import bench_database, bench_environment  # noqa: E402
from bot import inbox, queue  # noqa: E402
from bot.db import Database  # noqa: E402
from bot.models import Delivery  # noqa: E402
from tests.open_loop import clarity_process, cpu_seconds  # noqa: E402
from tests.webhook_fixtures import fixture  # noqa: E402


def deliveries(count: int) -> list[Delivery]:
    """`count` distinct deliveries that give a worker a job ending without a GitHub call."""
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    comment, closed = fixture("issue_comment/created"), fixture("pull_request/closed")
    comment["issue"]["pull_request"] = {"url": "https://api.github.com/repos/o/r/pulls/1"}
    made = []
    for n in range(count):
        if n % 2:
            event = "pull_request"
            closed["number"] = closed["pull_request"]["number"] = 1000 + n
            closed["pull_request"]["updated_at"] = stamp
            payload = closed
        else:
            event = "issue_comment"
            comment["comment"]["id"] = n
            comment["comment"]["body"] = f"Try `/clarity fix CC-{n}` once this lands."
            comment["comment"]["created_at"] = comment["comment"]["updated_at"] = stamp
            payload = comment
        body = json.dumps(payload).encode()
        made.append(
            Delivery(
                id=str(uuid.uuid4()),
                event=event,
                action=payload["action"],
                installation_id=payload["installation"]["id"],
                nonce=hashlib.sha256(body).hexdigest(),
                body=body,
                event_at=now,
            )
        )
    return made


async def run_jobs(
    command: list[str], env: Mapping[str, str], queue_name: str, function: str, ids: list[str]
) -> tuple[float, float, float]:
    """Start a worker, queue `function(id)` for each id, wait for every result:
    (user CPU s, kernel CPU s, wall s)."""
    redis = queue.connect(env["CLARITY_REDIS_URL"], timeout=5)
    try:
        with clarity_process(command, env) as worker:
            while not await redis.exists(queue_name + ":health-check"):
                assert worker.poll() is None, f"{command} exited with {worker.returncode}"
                await asyncio.sleep(0.05)
            await asyncio.sleep(1)  # start-up jobs (the crons run at start-up) are over
            cpu, started = cpu_seconds(worker.pid), time.perf_counter()
            for at in range(0, len(ids), 500):
                await queue.enqueue_many(redis, function, ids[at : at + 500], queue_name)
            keys = [result_key_prefix + job_id for job_id in ids]
            while await redis.exists(*keys) < len(ids):
                assert worker.poll() is None, f"{command} exited with {worker.returncode}"
                await asyncio.sleep(0.02)
            user, kernel = cpu_seconds(worker.pid)
            return user - cpu[0], kernel - cpu[1], time.perf_counter() - started
    finally:
        await redis.aclose()


async def one_round(database: str, env: dict[str, str], count: int) -> dict[str, tuple]:
    results = {}
    prefix = f"clarity-bench-{uuid.uuid4().hex[:6]}"
    bare_queue = f"{prefix}:bare"
    bare_env = {**env, "BENCH_QUEUE": bare_queue, "BENCH_REDIS_URL": env["CLARITY_REDIS_URL"]}
    ids = [str(uuid.uuid4()) for _ in range(count)]
    results["arq no-op job"] = await run_jobs(
        ["bench.bare_worker"], bare_env, bare_queue, "noop", ids
    )

    stored = deliveries(count)
    db = Database(database)
    try:
        await inbox.accept_many(db, stored)
    finally:
        await db.dispose()
    worker_env = {**env, "CLARITY_QUEUE_PREFIX": prefix}
    results["clarity worker"] = await run_jobs(
        ["bot", "worker", "--lane", "fast"],
        worker_env,
        queue.fast_queue(prefix),
        "process_delivery",
        [d.id for d in stored],
    )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    with bench_database() as database:
        env = bench_environment(database)
        rounds = [
            asyncio.run(one_round(database, env, args.deliveries)) for _ in range(args.rounds)
        ]

    print(f"{args.deliveries} deliveries per worker and round, {args.rounds} rounds (best shown)")
    print(f"{'':24} {'CPU ms/delivery':>16} {'of it kernel':>13} {'deliveries/s':>13}")
    best = {}
    for name in rounds[0]:
        user, kernel, wall = min((r[name] for r in rounds), key=lambda r: r[0] + r[1])
        best[name] = (1000 * (user + kernel) / args.deliveries, args.deliveries / wall)
        kernel_ms = 1000 * kernel / args.deliveries
        print(f"{name:24} {best[name][0]:16.2f} {kernel_ms:13.2f} {best[name][1]:13.0f}")
    ours, bare = best["clarity worker"], best["arq no-op job"]
    ratio = f"{ours[0] / bare[0]:.1f}x"
    print(f"{'ratio (clarity / arq)':24} {ratio:>16} {'':13} {ours[1] / bare[1]:12.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
