"""`POST /webhooks/github`: verify, store durably, enqueue, answer in milliseconds."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import parse_qs

import structlog
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse

from bot import metrics
from bot.errors import (
    BadDelivery,
    HTTPError,
    InboxUnavailable,
    InvalidSignature,
    PayloadTooLarge,
    StaleDelivery,
)
from bot.freshness import event_timestamp
from bot.handled import acted_on
from bot.models import Delivery, DeliveryStatus, utcnow
from bot.signature import verify_signature
from bot.state import AppState

log = structlog.get_logger(__name__)

# How each refusal is counted in `clarity_webhook_deliveries_total`.
REFUSALS: dict[type[HTTPError], str] = {
    InvalidSignature: "bad_signature",
    PayloadTooLarge: "too_large",
    StaleDelivery: "stale",
    InboxUnavailable: "db_down",
    BadDelivery: "bad_request",
}


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (without reading it all) anything over `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise PayloadTooLarge(f"body of {declared} bytes exceeds the {limit}-byte limit")
        except ValueError:
            raise BadDelivery("invalid Content-Length header") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_payload(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The JSON object GitHub sent, as JSON or form-encoded (`payload=`)."""
    try:
        if (
            content_type
            and content_type.split(";")[0].strip() == "application/x-www-form-urlencoded"
        ):
            fields = parse_qs(body.decode("utf-8"), strict_parsing=True)
            text = fields["payload"][0]
        else:
            text = body.decode("utf-8")
        payload = json.loads(text)
    except (UnicodeDecodeError, ValueError, KeyError, RecursionError):
        raise BadDelivery("body is not a JSON webhook payload") from None
    if not isinstance(payload, dict):
        raise BadDelivery("payload is not a JSON object")
    return payload


def _installation_id(payload: dict[str, Any]) -> int | None:
    installation = payload.get("installation")
    installation_id = installation.get("id") if isinstance(installation, dict) else None
    # The column is a BIGINT: a larger number is no installation GitHub could have sent.
    if isinstance(installation_id, int) and 0 < installation_id < 2**63:
        return installation_id
    return None


async def receive_github(request: Request) -> JSONResponse:
    timer = metrics.DeliveryTimer()
    try:
        return await _receive(request, timer)
    except HTTPError as error:
        timer.outcome = REFUSALS.get(type(error), error.code)
        raise
    finally:
        timer.done()


async def _receive(request: Request, timer: metrics.DeliveryTimer) -> JSONResponse:
    state: AppState = request.app.state.clarity
    settings = state.settings
    body = await read_body(request, settings.max_body_bytes)
    verify_signature(
        body,
        request.headers.get("x-hub-signature-256"),
        [s.get_secret_value() for s in settings.webhook_secrets],
    )
    event = request.headers.get("x-github-event")
    guid = request.headers.get("x-github-delivery")
    if not event or len(event) > 64:
        raise BadDelivery("missing or invalid X-GitHub-Event header")
    if not guid or len(guid) > 64:
        raise BadDelivery("missing or invalid X-GitHub-Delivery header")
    timer.event = event  # signed by GitHub from here on: a bounded set of names
    payload = parse_payload(body, request.headers.get("content-type"))
    action = payload.get("action") if isinstance(payload.get("action"), str) else None
    if action is not None and (len(action) > 64 or not action.isprintable()):
        # GitHub's actions are short words; anything else would not fit the inbox's column.
        raise BadDelivery("payload has an invalid action")
    structlog.contextvars.bind_contextvars(delivery_id=guid)
    try:
        return await _accept(state, guid, event, action, payload, body, timer)
    finally:
        structlog.contextvars.unbind_contextvars("delivery_id")


async def _accept(
    state: AppState,
    guid: str,
    event: str,
    action: str | None,
    payload: dict[str, Any],
    body: bytes,
    timer: metrics.DeliveryTimer,
) -> JSONResponse:
    if event == "ping":
        timer.outcome = "ping"
        log.info("webhook.ping", hook_id=payload.get("hook_id"), zen=payload.get("zen"))
        return JSONResponse({"status": "pong"}, status_code=200)
    happened_at = event_timestamp(event, payload)
    if happened_at is not None and utcnow() - happened_at > state.settings.freshness_window:
        log.warning("webhook.stale", github_event=event, happened_at=happened_at.isoformat())
        raise StaleDelivery(
            f"event happened at {happened_at.isoformat()}, outside the freshness window"
        )
    delivery = Delivery(
        id=guid,
        event=event,
        action=action,
        installation_id=_installation_id(payload),
        nonce=hashlib.sha256(body).hexdigest(),
        body=body,
        event_at=happened_at,
    )
    if not acted_on(event, payload):  # stored for its nonce, finished: no worker needs it
        delivery.status, delivery.processed_at = DeliveryStatus.PROCESSED, utcnow()
    try:
        stored = await state.inbox.store(delivery)
    except (SQLAlchemyError, OSError) as error:
        log.error("webhook.inbox_unavailable", error=type(error).__name__)
        raise InboxUnavailable(
            "the inbox cannot store deliveries right now; redeliver later"
        ) from None
    timer.outcome = "accepted" if stored else "duplicate"
    if not stored:
        log.info("webhook.duplicate", github_event=event, action=action)
        return JSONResponse({"status": "duplicate"}, status_code=200)
    log.info("webhook.accepted", github_event=event, action=action)
    return JSONResponse({"status": "accepted", "delivery": guid}, status_code=202)
