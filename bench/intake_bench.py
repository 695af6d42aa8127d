"""Webhook intake benchmark: `clarity serve` (PostgreSQL inbox, Redis queue) next to a bare Starlette endpoint.

Both servers run as single uvicorn processes on this machine, measured in the same run:
  1. open loop: signed deliveries at a fixed rate (default 200/s), acknowledgement latency p50/p99;
  2. closed loop: as many deliveries as N concurrent connections can push (wrk, from Debian's
     `wrk` package, with distinct pre-signed deliveries), throughput.
Targets: p99 <= 25 ms at 200 deliveries/s; throughput >= 40% of the bare endpoint's.

    .venv/bin/python bench/intake_bench.py [--rate 200] [--seconds 10] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.migrate import upgrade  # noqa: E402
from bot.signature import sign  # noqa: E402
from tests.open_loop import open_loop as send_open_loop  # noqa: E402
from tests.open_loop import percentile, raw_request, serving_process  # noqa: E402
from tests.services import postgres_url, redis_url  # noqa: E402

SECRET = "bench-webhook-secret-0123456789"


def payload(n: int) -> bytes:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return json.dumps(
        {
            "action": "created",
            "comment": {
                "id": n,
                "body": f"/clarity status {uuid.uuid4()}",
                "created_at": now,
                "updated_at": now,
            },
            "issue": {"number": 1, "pull_request": {"url": "https://example.invalid"}},
            "repository": {"id": 1, "full_name": "bench/app"},
            "installation": {"id": 1},
            "sender": {"login": "bench", "type": "User"},
        }
    ).encode()


def signed(n: int) -> tuple[bytes, dict[str, str]]:
    body = payload(n)
    return body, {
        "X-GitHub-Event": "issue_comment",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(body, SECRET),
        "Content-Type": "application/json",
    }


@contextmanager
def server(args: list[str], env: dict[str, str]):
    with serving_process(args, env) as (_, url):
        yield url


@contextmanager
def bench_database():
    server_url = make_url(postgres_url())
    name = f"clarity_bench_{uuid.uuid4().hex[:8]}"
    admin = server_url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = server_url.set(drivername="postgresql", database=name).render_as_string(
        hide_password=False
    )
    upgrade(url)
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_environment(database: str) -> dict[str, str]:
    """What `clarity serve` and `clarity worker` need: an App key made for the run, the
    benchmark's database, the local Redis and a queue prefix of the run's own."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        **os.environ,
        "CLARITY_APP_ID": "1",
        "CLARITY_PRIVATE_KEY": key.decode(),
        "CLARITY_WEBHOOK_SECRETS": SECRET,
        "CLARITY_DATABASE_URL": database,
        "CLARITY_REDIS_URL": redis_url(),
        "CLARITY_QUEUE_PREFIX": f"clarity-bench-{uuid.uuid4().hex[:6]}",
    }


async def open_loop(url: str, rate: float, seconds: float) -> tuple[list[float], int]:
    """Distinct signed deliveries at a fixed rate (see `tests.open_loop`); latencies in ms, errors."""
    host = url.removeprefix("http://")
    requests = [raw_request(host, *signed(i)) for i in range(int(rate * seconds))]
    answers = await send_open_loop(url, requests, rate)
    return answers.latencies, answers.refused + answers.statuses[200]


def closed_loop(url: str, concurrency: int, seconds: float, work: Path) -> tuple[float, int]:
    """Deliveries per second that `concurrency` connections achieve, driven by wrk (Debian's package).

    Every request is a distinct, correctly signed delivery, so each one is stored and enqueued.
    """
    if shutil.which("wrk") is None:
        return asyncio.run(python_closed_loop(url, concurrency, seconds))
    pool = work / f"requests-{uuid.uuid4().hex[:6]}.tsv"
    with pool.open("w") as out:
        for n in range(int(seconds * 8000)):  # more than a 2-core machine can accept
            body, headers = signed(n)
            out.write(
                f"{headers['X-GitHub-Delivery']}\t{headers['X-Hub-Signature-256']}\t{body.decode()}\n"
            )
    threads = 2
    result = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(concurrency),
            "-d",
            f"{seconds:.0f}s",
            "-s",
            str(ROOT / "bench" / "intake_wrk.lua"),
            url,
            "--",
            str(pool),
            str(threads),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("WRK "))
    requests, duration_us, status_errors, socket_errors = map(int, line.split()[1:])
    return requests / (duration_us / 1e6), status_errors + socket_errors


async def python_closed_loop(url: str, concurrency: int, seconds: float) -> tuple[float, int]:
    """Fallback without wrk: Python senders (which saturate before a fast server does)."""
    done = errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:

        async def sender(offset: int) -> None:
            nonlocal done, errors
            n = offset
            while time.perf_counter() < deadline:
                body, headers = signed(n)
                response = await client.post("/webhooks/github", content=body, headers=headers)
                done += 1
                errors += response.status_code != 202
                n += concurrency

        started = time.perf_counter()
        await asyncio.gather(*(sender(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    return done / elapsed, errors


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    with bench_database() as database:
        env = bench_environment(database)
        results = {}
        for name, command in (
            (
                "bare starlette",
                ["uvicorn", "bench.bare_app:app", "--no-access-log", "--log-level", "warning"],
            ),
            ("clarity serve", ["bot", "serve"]),
            ("clarity serve x2", ["bot", "serve", "--workers", "2"]),
        ):
            with server(command, env) as url:
                asyncio.run(open_loop(url, args.rate, 1.0))  # warm-up
                latencies, open_errors = asyncio.run(open_loop(url, args.rate, args.seconds))
                with tempfile.TemporaryDirectory() as work:
                    throughput, closed_errors = closed_loop(
                        url, args.concurrency, args.seconds, Path(work)
                    )
            results[name] = (latencies, open_errors, throughput, closed_errors)

    print(
        f"intake benchmark: {args.rate:.0f} deliveries/s for {args.seconds:.0f} s, then {args.concurrency} senders"
    )
    print(
        f"{'server':16} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7} {'deliveries/s':>13}"
    )
    for name, (latencies, open_errors, throughput, closed_errors) in results.items():
        print(
            f"{name:16} {percentile(latencies, 0.50):8.2f} {percentile(latencies, 0.99):8.2f} "
            f"{max(latencies):8.2f} {open_errors + closed_errors:7d} {throughput:13.0f}"
        )
    bare, clarity = results["bare starlette"], results["clarity serve"]
    print(f"two web processes: {results['clarity serve x2'][2] / bare[2]:.0%} of one bare process")
    ratio = clarity[2] / bare[2]
    p99 = percentile(clarity[0], 0.99)
    print(f"throughput ratio clarity/bare: {ratio:.0%} (target >= 40%)")
    print(f"clarity p99 at {args.rate:.0f}/s: {p99:.2f} ms (target <= 25 ms)")
    return 0 if clarity[1] + clarity[3] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
