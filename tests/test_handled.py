"""The web process's table of events acted on matches what the handlers' routers register."""

from __future__ import annotations

import pytest
from gidgethub import sansio

import handlers
from bot.handled import ACTED_ON, acted_on
from tests.webhook_fixtures import all_fixtures, fixture

# Every (event, action) GitHub's examples hold, plus each table entry and a few it leaves out.
PAIRS = sorted(
    {(event, fixture(name).get("action")) for name, event in all_fixtures()}
    | {(event, action) for event, actions in ACTED_ON.items() for action in (actions or {None})}
    | {("pull_request", "labeled"), ("check_suite", "completed"), ("star", "created")},
    key=str,
)


@pytest.mark.parametrize(("event", "action"), PAIRS)
def test_a_delivery_is_queued_exactly_when_a_handler_acts_on_it(event, action):
    data = {"action": action} if action is not None else {}
    routed = bool(handlers.router.fetch(sansio.Event(data, event=event, delivery_id="x")))
    assert acted_on(event, action) is routed


def test_an_unknown_event_is_not_acted_on():
    assert not acted_on("sponsorship", "created")
