"""A build for the page tests: a pull-request scan part done, its findings, fixes and agent runs."""

from __future__ import annotations

from typing import Any

from bot.models import (
    Build,
    BuildStatus,
    BuildTier,
    FixAttempt,
    FixOutcome,
    Installation,
    Repository,
    TaskStatus,
    Trajectory,
)
from orchestrator import control
from orchestrator.events import EventType
from orchestrator.pr_scan import PR_SCAN_DAG
from orchestrator.tier1 import ScanOutcome
from orchestrator.transitions import Change, TaskChange, transition_many

# Built up here so that no secret scanner (GitHub's push protection, ours) takes the file for a leak.
SECRET = "sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc"
HEAD = "c" * 40

REPORT = {
    "schema": "clarity-scan/1",
    "score": {
        "overall": 58,
        "categories": {"security": 35, "reliability": 80, "scalability": 100},
        "counts": {"critical": 1, "high": 1, "medium": 0, "low": 1, "info": 0},
    },
    "findings": [
        {
            "rule_id": "hardcoded-secret",
            "title": "Live Stripe key in the source",
            "severity": "critical",
            "category": "security",
            "path": "api/payments.py",
            "line": 4,
            "message": "A live secret key is committed",
            "evidence": f'STRIPE_KEY = "{SECRET}"',
            "fix": "Read it from the environment.",
            "fingerprint": "f1" * 16,
        },
        {
            "rule_id": "py-sql-injection",
            "title": "SQL query built from <img src=x onerror=alert(1)> data",
            "severity": "high",
            "category": "security",
            "path": "api/main.py",
            "line": 40,
            "message": "SQL query built from HTTP request data",
            "evidence": "cursor.execute(f\"SELECT * FROM tasks WHERE title = '{q}'\")",
            "fix": "Bind the parameter.",
            "fingerprint": "f2" * 16,
        },
        {
            "rule_id": "repo-no-health-endpoint",
            "title": "API has no health endpoint",
            "severity": "low",
            "category": "reliability",
            "path": "api/main.py",
            "line": 8,
            "message": "No /health route",
            "evidence": 'app = FastAPI(title="TaskFlow API")',
            "fix": "Add GET /health.",
            "fingerprint": "f3" * 16,
        },
    ],
    "timings": {"scan": 0.8, "total": 1.1},
}


async def add_installation(db) -> None:
    """Installation 1 (octo-org) with its repository 10 (octo-org/app)."""
    async with db.session() as session:
        session.add(Installation(id=1, account_login="octo-org"))
        await session.flush()
        session.add(Repository(id=10, installation_id=1, full_name="octo-org/app"))
        await session.commit()


async def move(site: dict[str, Any], build_id: int, *changes: Change) -> None:
    """Transition the build (as its worker would) and wake its event streams."""
    await transition_many(site["db"], build_id, None, list(changes))
    await control.announce(site["redis"], site["settings"].queue_prefix, build_id)


def node(key: str, status: TaskStatus, event: EventType, result: dict | None = None) -> Change:
    return Change(event, task=TaskChange(key, status, result=result))


async def scanned_build(site: dict[str, Any]) -> Build:
    """A pull-request scan whose check run and scan are done; compare and the rest are pending."""
    build = await control.create_build(
        site["db"],
        PR_SCAN_DAG,
        installation_id=1,
        repository_id=10,
        tier=BuildTier.SCAN,
        head_sha=HEAD,
        trigger="pull_request.opened",
        pr_number=7,
    )
    outcome = ScanOutcome(head_sha=HEAD, report=REPORT).model_dump(mode="json")
    await move(
        site,
        build.id,
        Change(EventType.BUILD_STARTED, build=BuildStatus.RUNNING),
        node("check_run", TaskStatus.RUNNING, EventType.NODE_STARTED),
        node("check_run", TaskStatus.SUCCEEDED, EventType.NODE_SUCCEEDED),
        node("scan", TaskStatus.RUNNING, EventType.NODE_STARTED),
        node("scan", TaskStatus.SUCCEEDED, EventType.NODE_SUCCEEDED, outcome),
    )
    return build


async def add_fix_attempt_and_agent_run(db, build: Build) -> None:
    """A refused fix of the SQL injection (a failed test gate, then no answer) and an agent run."""
    async with db.session() as session:
        session.add(
            FixAttempt(
                installation_id=1,
                repository_id=10,
                pr_number=7,
                fingerprint="f2" * 16,
                rule_id="py-sql-injection",
                build_id=build.id,
                attempts=2,
                outcome=FixOutcome.REFUSED,
                reason="no attempt passed the gates",
                gate_results=[
                    {
                        "attempt": 1,
                        "gates": [
                            {"gate": "policy", "passed": True, "reason": "ok", "files": ["a.py"]},
                            {
                                "gate": "tests",
                                "passed": False,
                                "reason": "1 test fails",
                                "evidence": {"failed": ["test_search"], "log": f"key={SECRET}"},
                            },
                        ],
                    },
                    {"attempt": 2, "refused_by": "agent", "reason": "no valid answer"},
                ],
            )
        )
        session.add(
            Trajectory(
                build_id=build.id,
                task_key="security",
                role="security",
                model="scripted",
                status="finished",
                iterations=2,
                cost_usd=0.0123,
                duration_seconds=4.2,
                events=[
                    {
                        "kind": "ActionEvent",
                        "tool": "terminal",
                        "arguments": {"command": "cat .env"},
                    },
                    {"kind": "ObservationEvent", "tool": "terminal", "output": f"STRIPE={SECRET}"},
                    {"kind": "MessageEvent", "message": "The key is live: confirmed."},
                ],
            )
        )
        await session.commit()
