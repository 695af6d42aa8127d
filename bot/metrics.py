"""Prometheus metrics: the service's one registry and its metric objects.

Metric objects are module-level, as prometheus-client intends; what exposes
them is passed the registry (the web process's `GET /metrics` reads it from
`app.state`).

Every process serves its own metrics and Prometheus scrapes each one as a
target: the web process at `GET /metrics`, each `clarity worker` on the port
`CLARITY_METRICS_PORT` names (off when unset; give every worker process on a
host its own port). This is the pull model Prometheus is built around (one
target per process, aggregated in PromQL with `sum by`). prometheus-client's
multiprocess mode is the answer for a pre-fork server whose processes share one
port (gunicorn); it needs a shared directory wiped at every start, counts only
on one host, and gauges and custom collectors lose their meaning. Our workers are
separate processes, often on separate hosts, so it does not fit.

Queue depth and age are not counted by anyone: the web process reads them from
Redis when it is scraped (`bot.queue_stats`), so only its `/metrics` has them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

T = TypeVar("T")

REGISTRY = CollectorRegistry()

# Seconds; an acknowledgement should take milliseconds, builds minutes, agent work an hour.
_ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_WORK_BUCKETS = (0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)

DELIVERIES = Counter(
    "clarity_webhook_deliveries",
    "Webhook deliveries answered, by event (unverified before the signature is) and outcome",
    ["event", "outcome"],
    registry=REGISTRY,
)
ACK_SECONDS = Histogram(
    "clarity_webhook_ack_seconds",
    "Time from a delivery's arrival to its answer, by outcome",
    ["outcome"],
    buckets=_ACK_BUCKETS,
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "clarity_queue_depth",
    "Jobs in an arq queue (waiting, deferred and running), read from Redis at scrape time",
    ["queue"],
    registry=REGISTRY,
)
QUEUE_OLDEST_AGE = Gauge(
    "clarity_queue_oldest_job_age_seconds",
    "How long the oldest due job no worker has taken yet has waited (0: none waiting)",
    ["queue"],
    registry=REGISTRY,
)
BUILDS = Counter(
    "clarity_builds",
    "Builds ended by a worker, by tier, DAG and outcome",
    ["tier", "dag", "outcome"],
    registry=REGISTRY,
)
BUILD_SECONDS = Histogram(
    "clarity_build_duration_seconds",
    "From a build's creation (queue wait included) to its end",
    ["tier", "dag", "outcome"],
    buckets=_WORK_BUCKETS,
    registry=REGISTRY,
)
NODE_SECONDS = Histogram(
    "clarity_node_duration_seconds",
    "One run of a node in a worker (retries included), by how it ended",
    ["tier", "dag", "node", "outcome"],
    buckets=_WORK_BUCKETS,
    registry=REGISTRY,
)
FALLBACKS = Counter(
    "clarity_fallbacks",
    "Autonomous builds switched to their deterministic DAG",
    ["tier", "dag"],
    registry=REGISTRY,
)
GATE_FAILURES = Counter(
    "clarity_gate_failures",
    "Refusals by a gate: a blocked gate node, or a fix attempt's policy, tests or security gate",
    ["gate"],
    registry=REGISTRY,
)
GITHUB_REQUESTS = Counter(
    "clarity_github_requests",
    "GitHub API responses, by method and status",
    ["method", "status"],
    registry=REGISTRY,
)
GITHUB_RATE_LIMIT_WAITS = Counter(
    "clarity_github_rate_limit_waits",
    "Rate limits hit: waited in the job (inline) or the job deferred",
    ["how"],
    registry=REGISTRY,
)
GITHUB_RATE_LIMIT_WAIT_SECONDS = Counter(
    "clarity_github_rate_limit_wait_seconds",
    "Seconds GitHub asked us to wait, inline or deferred",
    registry=REGISTRY,
)
SANDBOX_LIFETIME = Histogram(
    "clarity_sandbox_lifetime_seconds",
    "From asking for a sandbox to its destruction, by backend",
    ["backend"],
    buckets=_WORK_BUCKETS,
    registry=REGISTRY,
)
LLM_COST = Counter(
    "clarity_llm_cost_usd",
    "What agent runs cost, in USD, by role and model",
    ["role", "model"],
    registry=REGISTRY,
)


class _Build(Protocol):
    tier: Any
    dag_name: str


def _labels(build: _Build) -> tuple[str, str]:
    return str(getattr(build.tier, "value", build.tier)), build.dag_name or "-"


@dataclass(slots=True)
class DeliveryTimer:
    """One webhook delivery being answered: its event once verified, and how it ended."""

    event: str = "unverified"
    outcome: str = "error"
    started: float = field(default_factory=time.perf_counter)

    def done(self) -> None:
        DELIVERIES.labels(self.event, self.outcome).inc()
        ACK_SECONDS.labels(self.outcome).observe(time.perf_counter() - self.started)


def build_ended(build: Any, outcome: str, seconds: float) -> None:
    tier, dag = _labels(build)
    BUILDS.labels(tier, dag, outcome).inc()
    BUILD_SECONDS.labels(tier, dag, outcome).observe(max(0.0, seconds))


async def timed_node(build: Any, node: str, running: Awaitable[T]) -> T:
    """Await a node's run, observing its duration under the outcome's `kind`."""
    started, outcome = time.monotonic(), "interrupted"  # cancelled, lease lost, crashed
    try:
        result = await running
        outcome = str(getattr(result, "kind", "finished"))
        return result
    finally:
        NODE_SECONDS.labels(*_labels(build), node, outcome).observe(time.monotonic() - started)


def fell_back(build: Any) -> None:
    FALLBACKS.labels(*_labels(build)).inc()


def gates_refused(gates: Iterable[Mapping[str, Any]]) -> None:
    """Count the gates of a fix attempt's record (`{"gate", "passed", ...}`) that refused it."""
    for gate in gates:
        if not gate.get("passed"):
            GATE_FAILURES.labels(str(gate.get("gate", "unknown"))).inc()


def github_waited(seconds: float, *, deferred: bool) -> None:
    GITHUB_RATE_LIMIT_WAITS.labels("deferred" if deferred else "inline").inc()
    GITHUB_RATE_LIMIT_WAIT_SECONDS.inc(max(0.0, seconds))


def backend_of(provider: object) -> str:
    """`local` for a LocalSandboxProvider, `daytona` for a DaytonaSandboxProvider."""
    name = type(provider).__name__.removesuffix("SandboxProvider").removesuffix("Provider")
    return name.lower() or "unknown"


def sandbox_closed(provider: object, started: float) -> None:
    """`started` is a `time.monotonic()` taken before the sandbox was asked for."""
    SANDBOX_LIFETIME.labels(backend_of(provider)).observe(time.monotonic() - started)


def llm_cost(role: str, model: str, usd: float) -> None:
    if usd > 0:
        LLM_COST.labels(role, model or "-").inc(usd)


def observe_queue(queue: str, depth: int, oldest_age: float | None) -> None:
    QUEUE_DEPTH.labels(queue).set(depth)
    QUEUE_OLDEST_AGE.labels(queue).set(oldest_age or 0.0)


def forget_queues() -> None:
    """Redis did not answer: report nothing rather than the last values read."""
    QUEUE_DEPTH.clear()
    QUEUE_OLDEST_AGE.clear()


def serve(port: int, registry: CollectorRegistry = REGISTRY, addr: str = "0.0.0.0") -> WSGIServer:
    """Serve `registry` on `http://addr:port/metrics` from a daemon thread (a worker's own).

    The server is returned so a caller may `shutdown()` it; a process normally never does.
    """
    server, _thread = start_http_server(port, addr=addr, registry=registry)
    return server
