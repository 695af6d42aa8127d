"""The web process's judgement of which deliveries give work matches the handlers'."""

from __future__ import annotations

import pytest
from gidgethub import sansio
from hypothesis import given
from hypothesis import strategies as st

import handlers
from bot.handled import ACTED_ON, acted_on, acts_on, may_command, pushed_to_default_branch
from handlers.commands import PREFIX, parse_commands
from tests.test_commands import MARKDOWN_PIECES
from tests.webhook_fixtures import all_fixtures, fixture

# Every (event, action) GitHub's examples hold, plus each table entry and a few it leaves out.
PAIRS = sorted(
    {(event, fixture(name).get("action")) for name, event in all_fixtures()}
    | {(event, action) for event, actions in ACTED_ON.items() for action in (actions or {None})}
    | {("pull_request", "labeled"), ("check_suite", "completed"), ("star", "created")},
    key=str,
)


@pytest.mark.parametrize(("event", "action"), PAIRS)
def test_an_event_and_action_are_acted_on_exactly_when_a_handler_is_registered(event, action):
    data = {"action": action} if action is not None else {}
    routed = bool(handlers.router.fetch(sansio.Event(data, event=event, delivery_id="x")))
    assert acts_on(event, action) is routed


def test_an_unknown_event_is_not_acted_on():
    assert not acted_on("sponsorship", {"action": "created"})


def _push(**changes) -> dict:
    return fixture("push/branch-created") | changes  # to `master`, the default branch


def _comment(body: str = "/clarity status", **changes) -> dict:
    payload = fixture("issue_comment/created")
    payload["issue"]["pull_request"] = {"url": "https://api.github.com/repos/o/r/pulls/1"}
    payload["comment"]["body"] = body
    return payload | changes


def test_a_push_gives_work_only_when_it_moves_the_default_branch_of_an_installation():
    assert acted_on("push", _push())
    assert not acted_on("push", _push(ref="refs/heads/feature"))
    assert not acted_on("push", _push(ref="refs/tags/v1.0"))
    assert not acted_on("push", _push(after="0" * 40, deleted=True))
    without_installation = _push()
    del without_installation["installation"]
    assert not acted_on("push", without_installation)


def test_a_comment_gives_work_only_on_a_pull_request_by_a_person_naming_the_command():
    assert acted_on("issue_comment", _comment())
    assert acted_on("issue_comment", _comment("Ready now.\r\n\r\n/CLARITY deep-scan confirm"))
    assert not acted_on("issue_comment", _comment("LGTM"))
    assert not acted_on("issue_comment", _comment(sender={"login": "ci[bot]", "type": "Bot"}))
    assert not acted_on("issue_comment", _comment(action="edited"))
    on_issue = _comment()
    del on_issue["issue"]["pull_request"]
    assert not acted_on("issue_comment", on_issue)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"repository": "octo/app", "installation": 1, "ref": "refs/heads/main"},
        {"repository": {"default_branch": ["main"]}, "installation": {}, "ref": None},
        {"issue": [], "sender": None, "comment": {"body": 7}},
        {"issue": {"pull_request": {}}, "sender": {}, "comment": {"body": None}},
    ],
)
def test_a_payload_of_unexpected_shape_gives_no_work_and_raises_nothing(payload):
    assert not pushed_to_default_branch(payload)
    assert not may_command(payload)


@given(st.lists(MARKDOWN_PIECES | st.text(max_size=12), max_size=12).map("".join))
def test_every_comment_the_parser_finds_a_command_in_is_acted_on(body):
    if parse_commands(body):
        assert may_command(_comment(body))


def test_the_web_process_looks_for_the_parser_s_prefix():
    from bot.handled import COMMAND_PREFIX

    assert COMMAND_PREFIX == PREFIX
