"""The job queues: work someone waits on goes ahead of a backlog of cheap deliveries."""

from __future__ import annotations

import uuid

import pytest

from bot.queue import enqueue_many, fast_queue, is_urgent
from orchestrator import control


def ids(*names: str) -> list[str]:
    """Job ids of this test alone: arq's job keys are shared by every queue."""
    return [f"{uuid.uuid4().hex[:8]}:{name}" for name in names]


@pytest.mark.parametrize(
    ("event", "action", "urgent"),
    [
        ("pull_request", "opened", True),
        ("pull_request", "synchronize", True),
        ("check_suite", "requested", True),
        ("check_run", "rerequested", True),
        ("pull_request", "labeled", False),
        ("check_suite", "completed", False),
        ("issue_comment", "created", False),
        ("push", None, False),
    ],
)
def test_deliveries_that_start_a_check_run_are_urgent(event, action, urgent):
    assert is_urgent(event, action) is urgent


async def test_urgent_deliveries_go_ahead_of_the_backlog(queue, make_settings):
    name = fast_queue(make_settings().queue_prefix)
    backlog = ids(*(f"cheap-{n}" for n in range(50)))
    [first, second, late] = ids("urgent-1", "urgent-2", "cheap-late")
    await enqueue_many(queue, "process_delivery", backlog, name)
    await enqueue_many(queue, "process_delivery", [first], name, urgent={first})
    await enqueue_many(queue, "process_delivery", [late, second], name, urgent={second})

    one, two, *rest = await queue.zrange(name, 0, -1)
    assert {one.decode(), two.decode()} == {first, second}
    assert {job.decode() for job in rest} == {*backlog, late}


async def test_a_build_goes_ahead_of_waiting_deliveries(queue, make_settings):
    name = fast_queue(make_settings().queue_prefix)
    await enqueue_many(queue, "process_delivery", ids(*(f"cheap-{n}" for n in range(20))), name)
    await control.enqueue(queue, 7, name)

    first, *_ = await queue.zrange(name, 0, -1)
    assert first.decode().startswith("build:7:")
