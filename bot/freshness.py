"""The signed body's own timestamp, for replay freshness.

Only the body is signed, so freshness must come from inside it: when the
event happened according to GitHub, not when (or how often) it was delivered.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# Where each event carries the time it happened; the first present wins.
_TIMESTAMP_PATHS: Mapping[str, tuple[tuple[str, ...], ...]] = {
    "issue_comment": (("comment", "updated_at"), ("comment", "created_at")),
    "pull_request_review_comment": (("comment", "updated_at"), ("comment", "created_at")),
    "pull_request": (("pull_request", "updated_at"),),
    # Not the head commit's timestamp: an old commit can be pushed today.
    "push": (("repository", "pushed_at"),),
}
# check_run / check_suite bodies describe the run, whose times are old when a
# person re-requests it, so those events get no freshness check (the nonce still applies).


def _dig(payload: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = payload
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _parse(value: Any) -> datetime | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):  # push payloads give epoch seconds
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):  # out of range, or NaN
            return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        try:  # in UTC, as the inbox stores it; 9999-12-31T23:59:59-14:00 has no UTC time
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
        except OverflowError:
            return None
    return None


def event_timestamp(event: str, payload: Mapping[str, Any]) -> datetime | None:
    """When the event happened, per its signed body; None for events that carry no such time."""
    for path in _TIMESTAMP_PATHS.get(event, ()):
        if (stamp := _parse(_dig(payload, path))) is not None:
            return stamp
    return None
