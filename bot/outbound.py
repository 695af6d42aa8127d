"""Outbound webhooks: a signed `build.completed` event for each subscriber of an installation.

Signing: `X-Clarity-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<nonce>.<body>")>`
with `X-Clarity-Timestamp` (Unix seconds) and `X-Clarity-Nonce` (a fresh uuid4 per attempt).
A subscriber checks it with `verify_signature`, which it may copy: it needs only the
standard library.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlsplit

import structlog
from sqlmodel import select

from bot.db import Database
from bot.models import (
    Build,
    Installation,
    OutboundDelivery,
    OutboundStatus,
    Repository,
    WebhookSubscription,
)

log = structlog.get_logger(__name__)

BUILD_COMPLETED = "build.completed"
TOLERANCE_SECONDS = 300.0
# Plain http only to this machine, for development.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
TERMINAL = ("succeeded", "failed", "aborted")
MAX_ERROR_CHARS = 500


class InvalidSubscriberUrl(ValueError):
    """A subscriber URL we will not send to."""


class InvalidSignature(ValueError):
    """A delivery whose signature or timestamp does not check out."""


def check_url(url: str) -> str:
    """`url` if it is https (http only to localhost) and carries no credentials."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise InvalidSubscriberUrl("not a URL") from None
    if not host:
        raise InvalidSubscriberUrl("the URL needs a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidSubscriberUrl("the URL must not carry credentials; use the signing secret")
    if parts.scheme == "https" or (parts.scheme == "http" and host in LOCAL_HOSTS):
        return url
    raise InvalidSubscriberUrl("the URL must be https (http only for localhost)")


def sign(secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The `X-Clarity-Signature` value for one attempt."""
    message = timestamp.encode() + b"." + nonce.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    nonce: str,
    body: bytes,
    signature: str,
    now: float,
    tolerance: float = TOLERANCE_SECONDS,
) -> None:
    """Raise `InvalidSignature` unless `signature` signs this body and the timestamp is recent.

    Fails closed: no secret, no signature or an unreadable timestamp is a refusal.
    A subscriber should also refuse a nonce it has seen within `tolerance`.
    """
    if not secret or not signature:
        raise InvalidSignature("a secret and a signature are both required")
    try:
        sent = float(timestamp)
    except ValueError:
        raise InvalidSignature("the timestamp is not a number") from None
    if abs(now - sent) > tolerance:
        raise InvalidSignature("the timestamp is outside the tolerance")
    if not hmac.compare_digest(sign(secret, timestamp, nonce, body), signature):
        raise InvalidSignature("the signature does not match")


def encode(body: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed) for a stored body."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def completion_body(
    build: Build, installation: Installation | None, repository: Repository | None, url: str
) -> dict[str, Any]:
    """What a subscriber learns of a finished build: no secret, no token, no link credential."""
    from scanner.secrets import redact  # the error text came from a node; mask what it may hold

    error = redact(build.error[:MAX_ERROR_CHARS]) if build.error else None
    return {
        "event": BUILD_COMPLETED,
        "build": {
            "id": build.id,
            "tier": build.tier.value,
            "mode": build.mode.value,
            "status": build.status.value,
            "trigger": build.trigger,
            "head_sha": build.head_sha,
            "summary": error or f"build {build.status.value}",
            "error": error,
            "cost_usd": round(build.cost_usd, 6),
            "started_at": build.started_at.isoformat() if build.started_at else None,
            "finished_at": build.finished_at.isoformat() if build.finished_at else None,
            "url": f"{url.rstrip('/')}/builds/{build.id}",
        },
        "installation": {
            "id": build.installation_id,
            "account": installation.account_login if installation else None,
        },
        "repository": {
            "id": build.repository_id,
            "full_name": repository.full_name if repository else None,
        },
        "pull_request": {"number": build.pr_number} if build.pr_number else None,
    }


async def record_completion(db: Database, build_id: int, public_url: str) -> list[int]:
    """One pending delivery per active subscriber of a finished build's installation.

    Idempotent: a build already recorded for a subscriber is not recorded again, so
    every path that ends a build may call it. Returns the new deliveries' ids.
    """
    async with db.session() as session:
        build = await session.get(Build, build_id)
        if build is None or build.status.value not in TERMINAL:
            return []
        subscriptions = list(
            await session.exec(
                select(WebhookSubscription).where(
                    WebhookSubscription.installation_id == build.installation_id,
                    WebhookSubscription.active == True,  # noqa: E712 (SQL, not Python)
                )
            )
        )
        if not subscriptions:
            return []
        done = set(
            await session.exec(
                select(OutboundDelivery.subscription_id).where(
                    OutboundDelivery.build_id == build_id,
                    OutboundDelivery.event == BUILD_COMPLETED,
                )
            )
        )
        body = completion_body(
            build,
            await session.get(Installation, build.installation_id),
            await session.get(Repository, build.repository_id),
            public_url,
        )
        rows = [
            OutboundDelivery(
                subscription_id=sub.id, build_id=build_id, event=BUILD_COMPLETED, body=body
            )
            for sub in subscriptions
            if sub.id not in done
        ]
        session.add_all(rows)
        await session.commit()
        return [row.id for row in rows]


async def pending(db: Database, due_before: Any) -> list[int]:
    """Pending deliveries whose next attempt is overdue (their job was lost)."""
    async with db.session() as session:
        return list(
            await session.exec(
                select(OutboundDelivery.id).where(
                    OutboundDelivery.status == OutboundStatus.PENDING,
                    OutboundDelivery.next_attempt_at <= due_before,
                )
            )
        )
