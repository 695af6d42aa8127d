"""The events and actions the App acts on, readable without importing the handlers.

The web process stores every signed delivery (its nonce guards against replays)
but queues only these: a label added, a check suite completed or a star given
would cost a worker a job to find nothing to do. The handlers' routers register
exactly these (tests/test_handled.py checks both ways).
"""

from __future__ import annotations

PULL_REQUEST_SCANS = ("opened", "reopened", "synchronize", "ready_for_review")

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


def acted_on(event: str, action: str | None) -> bool:
    """Whether a delivery of `event` with `action` gives a handler anything to do."""
    if event not in ACTED_ON:
        return False
    actions = ACTED_ON[event]
    return actions is None or action in actions
