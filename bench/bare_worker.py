"""The reference of `worker_bench.py`: an arq worker whose only function returns at once.

Configured as `clarity worker --lane fast` is (jobs at once, poll delay, read limit, results
kept), so the difference between the two is what Clarity does for a delivery.

    BENCH_REDIS_URL=redis://... BENCH_QUEUE=name .venv/bin/python -m bench.bare_worker
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from arq.connections import RedisSettings
from arq.worker import Worker, func

from bot.worker import FAST_POLL_DELAY


async def noop(ctx: dict[str, Any], job_id: str) -> str:
    return "processed"


def main() -> None:
    Worker(
        functions=[func(noop, name="noop")],
        queue_name=os.environ["BENCH_QUEUE"],
        redis_settings=RedisSettings.from_dsn(os.environ["BENCH_REDIS_URL"]),
        max_jobs=20,
        poll_delay=FAST_POLL_DELAY,
        queue_read_limit=20,
        keep_result=timedelta(hours=1),
    ).run()


if __name__ == "__main__":
    main()
