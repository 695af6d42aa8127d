"""Crash and restart: `kill -9` on a worker at random points of Tier 1 and fix builds.

Two `clarity worker` processes serve one `clarity serve`; each trial opens a pull
request (or asks for a fix), kills the worker holding the build (or the delivery,
or any) at a random moment, starts a replacement, and checks what GitHub saw:
every build finishes, nothing is published twice, no finished node runs again.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from dataclasses import dataclass

import pytest
from sqlmodel import select

from bot import claims
from bot.demo import _sample_files
from bot.models import BuildStatus, BuildTier, Task, TaskStatus
from orchestrator import lease as leases
from orchestrator.events import EventType
from orchestrator.publish_comment import short_id
from tests.chaos_cluster import REPO, Cluster, checked_for_secrets, running_cluster
from tests.chaos_report import sized
from tests.llm_standin import ScriptedModel
from tests.test_fix import BASE, VULNERABLE, answer, edit
from tests.test_test_runs import pytest_toolchain  # noqa: F401  (the fixture)

pytestmark = pytest.mark.chaos
SECTION = "Crash and restart (kill -9)"
SEED = int(os.environ.get("CLARITY_CHAOS_SEED", "9"))
# The window a kill is drawn from, after the trigger: a little more than each build takes here.
WINDOW = {"tier1": 2.0, "fix": 5.0}


@pytest.fixture
def database_url(postgresql_database: str) -> str:
    return postgresql_database


@dataclass
class Trial:
    kind: str
    number: int  # the pull request
    delay: float
    victim: str = ""  # what the killed worker held


def builder(body: dict) -> object:
    """The fix agent, stateless: edit once, then answer (a restarted node starts over)."""
    done = any(m.get("role") == "tool" for m in body.get("messages", []))
    return answer() if done else edit()


@pytest.fixture
async def cluster(
    db,
    make_settings,
    app_private_key,
    model: ScriptedModel,
    pytest_toolchain,  # noqa: F811  (the imported fixture)
    tmp_path,
):
    files = {**BASE, **_sample_files()}
    async with running_cluster(
        db,
        make_settings,
        app_private_key,
        files,
        tmp_path,
        sandbox_toolchains=[str(pytest_toolchain)],
        llm_model="openai/scripted",
        llm_base_url=model.url,
    ) as cluster:
        cluster.start_worker()
        cluster.start_worker()
        yield cluster


@pytest.mark.timeout(sized(ci=300, full=1800))
async def test_kill_9_at_random_points_of_tier1_and_fix_builds(
    cluster: Cluster, model, chaos, queue
):
    model.script("builder", *[builder] * 400)
    hub = cluster.hub
    chooser = random.Random(SEED)
    trials = int(sized(ci=2, full=20))
    outcomes: list[Trial] = []
    for n in range(trials):
        kind = "tier1" if n % 2 == 0 else "fix"
        number = len(hub.pull_requests(REPO)) + 1
        branch = f"chaos-{n}"
        change = {"api/tasks.py": VULNERABLE} if kind == "fix" else {"NOTES.md": f"{n}\n".encode()}
        hub.commit_files(REPO, branch, change, message=f"Trial {n}", base="main")
        hub.open_pull_request(REPO, branch, title=f"Trial {n}")
        first = await cluster.next_build_id()
        trigger = hub.pull_request_event(REPO, number)
        if kind == "fix":  # the scan the fix needs runs undisturbed
            await hub.deliver(trigger)
            await cluster.until(lambda: _scanned(cluster, first), "the pull request's scan")
            ident = await _finding(cluster, first)
            first = await cluster.next_build_id()
            trigger = hub.issue_comment_event(
                hub.add_comment(REPO, number, f"/clarity fix {ident}", user="maintainer")
            )
        trial = Trial(kind, number, chooser.uniform(0.0, WINDOW[kind]))
        answer_ = await hub.deliver(trigger)
        assert answer_.status_code == 202
        await asyncio.sleep(trial.delay)  # the random point of the kill, by design a time
        trial.victim = await _kill_one(cluster, queue, first, chooser)
        cluster.start_worker()
        await cluster.until(lambda: _done(cluster, first, kind), f"trial {n} ({kind}) to finish")
        outcomes.append(trial)

    builds = await cluster.builds_since(1)
    failed = [b.id for b in builds if b.status is not BuildStatus.SUCCEEDED]
    reruns = sum([await _reruns(cluster, b.id) for b in builds], 0)
    duplicates = _duplicates(hub)
    leaks = checked_for_secrets(
        chaos, "kill -9 trials", cluster.planted, await cluster.everything()
    )
    victims = Counter(t.victim for t in outcomes)
    chaos.record(
        SECTION, "trials (Tier 1 + fix)", f"{trials} ({(trials + 1) // 2} + {trials // 2})"
    )
    chaos.record(
        SECTION, "where the kills fell", ", ".join(f"{k}: {v}" for k, v in sorted(victims.items()))
    )
    chaos.record(
        SECTION,
        "builds finished by another worker",
        f"{len(builds) - len(failed)}/{len(builds)}",
        target="all",
        ok=not failed,
    )
    for what, count in duplicates.items():
        chaos.record(SECTION, f"duplicate {what}", count, target="0", ok=count == 0)
    chaos.record(SECTION, "finished nodes run again", reruns, target="0", ok=reruns == 0)
    chaos.record(
        SECTION, "deliveries left unprocessed", await cluster.unfinished_deliveries(), target="0"
    )
    assert not failed, f"builds that did not succeed: {failed}"
    assert all(count == 0 for count in duplicates.values()), duplicates
    assert reruns == 0
    assert not leaks, leaks
    assert await cluster.unfinished_deliveries() == 0


async def _kill_one(cluster: Cluster, queue, first: int, chooser: random.Random) -> str:
    """Kill the worker holding one of the trial's builds, else a delivery, else any; say what
    it was doing (the build's running nodes)."""
    prefix = cluster.settings.queue_prefix
    owners = []
    for build in await cluster.builds_since(first):
        owner = await queue.get(leases.lease_key(prefix, build.id))
        if owner:
            owners.append((f"{build.tier.value} build, {await _running(cluster, build.id)}", owner))
    async for key in queue.scan_iter(match=claims.claim_key(prefix, "*")):
        owners.append(("a delivery", await queue.get(key) or b""))
    for what, owner in owners:
        parts = owner.decode().split(":")
        victim = cluster.worker_with_pid(int(parts[1])) if len(parts) == 3 else None
        if victim is not None:
            cluster.kill(victim)
            return what
    cluster.kill(chooser.choice(cluster.workers))
    return "an idle worker"


async def _running(cluster: Cluster, build_id: int) -> str:
    async with cluster.db.session() as session:
        tasks = await session.exec(
            select(Task.key).where(Task.build_id == build_id, Task.status == TaskStatus.RUNNING)
        )
        keys = sorted(tasks)
    return f"node {' + '.join(keys)}" if keys else "between nodes"


async def _scanned(cluster: Cluster, first: int) -> bool:
    builds = await cluster.builds_since(first)
    return any(b.tier is BuildTier.SCAN and b.status is BuildStatus.SUCCEEDED for b in builds)


async def _finding(cluster: Cluster, first: int) -> str:
    async with cluster.db.session() as session:
        scans = list(
            await session.exec(select(Task).where(Task.key == "scan", Task.build_id >= first))
        )
    findings = scans[-1].result["report"]["findings"]
    [injection] = [
        f for f in findings if f["rule_id"] == "py-sql-injection" and f["path"] == "api/tasks.py"
    ]
    return short_id(injection["fingerprint"])


async def _done(cluster: Cluster, first: int, kind: str) -> bool:
    builds = await cluster.builds_since(first)
    if not builds or any(b.status in (BuildStatus.QUEUED, BuildStatus.RUNNING) for b in builds):
        return False
    if await cluster.unfinished_deliveries():
        return False
    wanted = BuildTier.FIX if kind == "fix" else BuildTier.SCAN
    return any(b.tier is wanted for b in builds)


async def _reruns(cluster: Cluster, build_id: int) -> int:
    """Nodes started again after they had succeeded."""
    succeeded: set[str] = set()
    again = 0
    for event in await cluster.events(build_id):
        if event.type == EventType.NODE_STARTED and event.task_key in succeeded:
            again += 1
        elif event.type == EventType.NODE_SUCCEEDED:
            succeeded.add(event.task_key)
    return again


def _duplicates(hub) -> dict[str, int]:
    ours = hub.app.bot_login
    runs = Counter((r.head_sha, r.name) for r in hub.check_runs(REPO))
    comments = Counter()
    for pr in hub.pull_requests(REPO):
        for c in hub.comments(REPO, pr.number):
            if c.user == ours and "clarity-check:" in c.body:
                comments[(pr.number, c.body.split("clarity-check:")[1].split(" ")[0])] += 1
    fix_prs = Counter(
        pr.head_ref for pr in hub.pull_requests(REPO) if pr.head_ref.startswith("clarity/fix/")
    )
    return {
        "check runs": sum(n - 1 for n in runs.values()),
        "comments": sum(n - 1 for n in comments.values()),
        "fix pull requests": sum(n - 1 for n in fix_prs.values()),
    }
