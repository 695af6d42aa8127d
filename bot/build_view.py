"""The build page's picture of a build: its DAG laid out by depth, its score and its timings. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.models import Build, Task, TaskStatus
from orchestrator.tier1 import ScanOutcome
from scanner.report.common import SEVERITY_ORDER
from scanner.secrets import redact

# One colour per task status: the SVG node's fill, and the legend's.
STATUS_COLOURS: Mapping[TaskStatus, str] = {
    TaskStatus.PENDING: "#d0d7de",
    TaskStatus.RUNNING: "#54aeff",
    TaskStatus.SUCCEEDED: "#2da44e",
    TaskStatus.FAILED: "#cf222e",
    TaskStatus.SKIPPED: "#8c959f",
    TaskStatus.BLOCKED: "#bf8700",
}
NODE_WIDTH, NODE_HEIGHT = 168, 44
COLUMN_GAP, ROW_GAP, MARGIN = 64, 16, 8
KEY_LIMIT = 22  # characters of a node's key drawn in its box; the full key is its tooltip
SCAN_TASKS = ("scan", "baseline")  # the nodes whose result is the Tier 1 scan (PR scan, deep scan)


@dataclass(frozen=True, slots=True)
class PlacedNode:
    key: str
    label: str
    status: TaskStatus
    colour: str
    depth: int
    x: int
    y: int
    attempts: int
    seconds: float | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    path: str  # SVG path data, from the right of the dependency to the left of the node


@dataclass(frozen=True, slots=True)
class DagPicture:
    nodes: tuple[PlacedNode, ...]
    edges: tuple[Edge, ...]
    width: int
    height: int
    node_width: int = NODE_WIDTH
    node_height: int = NODE_HEIGHT


def depths(deps: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """Each node's depth: 0 without dependencies, else one more than its deepest dependency.

    Dependencies on keys that are not nodes are ignored, and so is an edge that would
    close a cycle (a stored DAG is validated; the page draws whatever it is given).
    """
    found: dict[str, int] = {}

    def depth(key: str, path: frozenset[str]) -> int:
        if key not in found:
            known = [d for d in deps[key] if d in deps and d not in path]
            found[key] = 1 + max((depth(d, path | {key}) for d in known), default=-1)
        return found[key]

    for key in deps:
        depth(key, frozenset())
    return found


def layout(tasks: Sequence[Task], now: datetime) -> DagPicture:
    """Columns by depth, rows in the build's task order, an edge per known dependency."""
    by_key = {task.key: task for task in tasks}
    level = depths({task.key: task.deps for task in tasks})
    rows: dict[int, int] = {}
    nodes = []
    for task in tasks:
        row = rows.get(level[task.key], 0)
        rows[level[task.key]] = row + 1
        label = task.key if len(task.key) <= KEY_LIMIT else task.key[: KEY_LIMIT - 1] + "…"
        nodes.append(
            PlacedNode(
                key=task.key,
                label=label,
                status=task.status,
                colour=STATUS_COLOURS[task.status],
                depth=level[task.key],
                x=MARGIN + level[task.key] * (NODE_WIDTH + COLUMN_GAP),
                y=MARGIN + row * (NODE_HEIGHT + ROW_GAP),
                attempts=task.attempts,
                seconds=elapsed(task.started_at, task.finished_at, now),
                error=redact(task.error) if task.error else None,
            )
        )
    placed = {node.key: node for node in nodes}
    tallest = max(rows.values(), default=0)
    # Edges that skip a column run in a lane below the rows, not through the nodes between.
    lane = MARGIN + tallest * (NODE_HEIGHT + ROW_GAP)
    edges = [
        Edge(dep, node.key, _curve(placed[dep], node, lane))
        for node in nodes
        for dep in by_key[node.key].deps
        if dep in placed
    ]
    long = any(placed[e.target].depth - placed[e.source].depth > 1 for e in edges)
    columns = max(level.values(), default=-1) + 1
    return DagPicture(
        nodes=tuple(nodes),
        edges=tuple(edges),
        width=2 * MARGIN + max(columns * (NODE_WIDTH + COLUMN_GAP) - COLUMN_GAP, 0),
        height=2 * MARGIN + max(tallest * (NODE_HEIGHT + ROW_GAP) - ROW_GAP, 0) + long * ROW_GAP,
    )


def _curve(source: PlacedNode, target: PlacedNode, lane: int) -> str:
    x1, y1 = source.x + NODE_WIDTH, source.y + NODE_HEIGHT // 2
    x2, y2 = target.x, target.y + NODE_HEIGHT // 2
    if target.depth - source.depth <= 1:
        bend = (x2 - x1) // 2
        return f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
    half = COLUMN_GAP // 2
    return (
        f"M{x1},{y1} C{x1 + half},{y1} {x1},{lane} {x1 + half},{lane} "
        f"L{x2 - half},{lane} C{x2},{lane} {x2 - half},{y2} {x2},{y2}"
    )


def elapsed(start: datetime | None, end: datetime | None, now: datetime) -> float | None:
    """Seconds from `start` to `end` (or to `now` while it runs); None before it starts."""
    if start is None:
        return None
    return max(((end or now) - start).total_seconds(), 0.0)


def duration(seconds: float | None) -> str:
    """`0.4 s`, `12 s`, `3 min 05 s`, `2 h 04 min`; a dash for no time."""
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def usd(value: float | None) -> str:
    """`$0`, `$0.0123`, `$4.20`: cents above a dollar, more digits below."""
    if not value:
        return "$0"
    return f"${value:,.2f}" if value >= 1 else f"${value:.4f}"


def band(score: float) -> str:
    """The colour of a score: green from 80, amber from 50, red below."""
    if score >= 80:
        return "#2da44e"
    return "#bf8700" if score >= 50 else "#cf222e"


@dataclass(frozen=True, slots=True)
class Score:
    """The Tier 1 health score (0-100) and each category's, worst category first."""

    overall: int
    colour: str
    categories: tuple[tuple[str, int, str], ...]  # (category, score, colour)
    counts: tuple[tuple[str, int], ...]  # (severity, findings) worst first, none at 0


def scan_of(tasks: Sequence[Task]) -> ScanOutcome | None:
    """The build's Tier 1 scan result, once its scan node has one."""
    for task in tasks:
        if task.key in SCAN_TASKS and task.result:
            return ScanOutcome.model_validate(task.result)
    return None


def score_of(report: Mapping[str, Any]) -> Score | None:
    score = report.get("score")
    if not score:
        return None
    counts = score.get("counts") or {}
    categories = sorted(
        ((str(name), int(value)) for name, value in (score.get("categories") or {}).items()),
        key=lambda item: (item[1], item[0]),
    )
    return Score(
        overall=int(score.get("overall", 0)),
        colour=band(score.get("overall", 0)),
        categories=tuple((name, value, band(value)) for name, value in categories),
        counts=tuple((str(s), int(counts[s])) for s in SEVERITY_ORDER if counts.get(s)),
    )


@dataclass(frozen=True, slots=True)
class Timings:
    """When the build was queued, started and finished, and the time in each stage."""

    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    waited: float | None  # queued → started
    ran: float | None  # started → finished (or now)
    scanner: Mapping[str, float]  # the scanner's own phases, from its report


def timings_of(build: Build, report: Mapping[str, Any], now: datetime) -> Timings:
    return Timings(
        queued_at=build.created_at,
        started_at=build.started_at,
        finished_at=build.finished_at,
        waited=elapsed(build.created_at, build.started_at, now) if build.started_at else None,
        ran=elapsed(build.started_at, build.finished_at, now),
        scanner={str(k): float(v) for k, v in (report.get("timings") or {}).items()},
    )
