"""The deliveries the App acts on, decided from the payload without importing the handlers.

The web process stores every signed delivery (its nonce guards against replays)
but queues only these: a label added, a check suite completed, a push to a feature
branch or a comment without a command would cost a worker a job to find nothing to
do. The handlers' routers register exactly the events and actions of `ACTED_ON`
(tests/test_handled.py checks both ways), and the handlers of `push` and
`issue_comment` decide with the same predicates as the web process.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

PULL_REQUEST_SCANS = ("opened", "reopened", "synchronize", "ready_for_review")
COMMAND_PREFIX = "/clarity"  # handlers/commands.py parses it; the parser imports only stdlib
DELETED_SHA = "0" * 40

# event -> the actions acted on; None: every action.
ACTED_ON: dict[str, frozenset[str] | None] = {
    "check_run": frozenset({"requested_action", "rerequested"}),
    "check_suite": frozenset({"requested", "rerequested"}),
    "installation": frozenset(
        {"created", "new_permissions_accepted", "deleted", "suspend", "unsuspend"}
    ),
    "installation_repositories": frozenset({"added", "removed"}),
    "issue_comment": frozenset({"created"}),
    "pull_request": frozenset({*PULL_REQUEST_SCANS, "closed"}),
    "push": None,
}


def pushed_to_default_branch(payload: Mapping[str, Any]) -> bool:
    """A push that moved an installed repository's default branch (not one that deleted it)."""
    repository = payload.get("repository")
    if not isinstance(repository, Mapping) or not isinstance(payload.get("installation"), Mapping):
        return False
    if payload.get("after") in (None, DELETED_SHA) or payload.get("deleted"):
        return False
    return payload.get("ref") == f"refs/heads/{repository.get('default_branch')}"


def may_command(payload: Mapping[str, Any]) -> bool:
    """A comment on a pull request, by someone other than a bot, that names `/clarity`.

    A necessary condition for holding a command, not a parse: a command is a line
    starting with the prefix in any case, so a body without it holds none.
    """
    issue, sender, comment = (payload.get(key) for key in ("issue", "sender", "comment"))
    if not all(isinstance(part, Mapping) for part in (issue, sender, comment)):
        return False
    if "pull_request" not in issue or sender.get("type") == "Bot":
        return False  # commands live on pull requests; bots (this App too) never command us
    body = comment.get("body")
    return isinstance(body, str) and COMMAND_PREFIX in body.lower()


# Events whose actions alone do not tell: the payload must show there is work.
_WORK_IN: dict[str, Callable[[Mapping[str, Any]], bool]] = {
    "push": pushed_to_default_branch,
    "issue_comment": may_command,
}


def acted_on(event: str, payload: Mapping[str, Any]) -> bool:
    """Whether a delivery of `event` with `payload` gives a handler anything to do."""
    if not acts_on(event, payload.get("action")):
        return False
    gives_work = _WORK_IN.get(event)
    return gives_work is None or gives_work(payload)


def acts_on(event: str, action: Any) -> bool:
    """Whether a handler is registered for `event` with `action`."""
    if event not in ACTED_ON:
        return False
    actions = ACTED_ON[event]
    return actions is None or action in actions
