"""Faults the stand-in can be told to answer with: 5xx, rate limits, expired tokens, suspension."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from .models import Fault


class HubFaults:
    """Mixed into `Hub`, whose lock, clock (`now`) and state it uses."""

    lock: Any
    installations: Any
    tokens: Any
    faults: Any

    def suspend(self, installation_id: int, suspended: bool = True) -> None:
        """Suspend (or unsuspend) an installation: its tokens then get 403."""
        with self.lock:
            self.installations[installation_id].suspended_at = self.now() if suspended else None

    def expire_tokens(self) -> None:
        """Make every issued installation token expired, as an hour passing would."""
        with self.lock:
            for token in self.tokens.values():
                token.expires_at = self.now() - timedelta(seconds=1)

    def inject(
        self,
        operation_id: str | None = None,
        status: int = 502,
        times: int = 1,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        *,
        applied: bool = False,
    ) -> Fault:
        """Answer the next `times` calls of `operation_id` (None: of any operation) with a fault;
        `applied`: carry each call out first, as a gateway failing after GitHub acted."""
        fault = Fault(operation_id, status, times, dict(headers or {}), body, applied)
        with self.lock:
            self.faults.append(fault)
        return fault

    def inject_secondary_rate_limit(
        self, operation_id: str | None = None, *, retry_after: int = 1, times: int = 1
    ) -> Fault:
        """GitHub's secondary rate limit: 403, a `retry-after`, and quota still left."""
        return self.inject(
            operation_id,
            403,
            times,
            {"retry-after": str(retry_after)},
            {
                "message": "You have exceeded a secondary rate limit."
                " Please wait a few minutes before you try again.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            },
        )

    def inject_primary_rate_limit(
        self, operation_id: str | None = None, *, reset_in: int = 1, times: int = 1
    ) -> Fault:
        """GitHub's primary rate limit: 403 with `x-ratelimit-remaining: 0` and a reset time."""
        return self.inject(
            operation_id,
            403,
            times,
            {
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": str(int(self.now().timestamp()) + reset_in),
            },
            {
                "message": "API rate limit exceeded for installation.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            },
        )
