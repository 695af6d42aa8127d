"""`/v1/installations/{id}/webhooks`: subscribe a URL to an installation's finished builds.

Operator tokens with the `control` scope only. A subscription's signing secret is
an installation secret (sealed like any other); it is shown once, when created.
"""

from __future__ import annotations

import secrets
from typing import Any

import structlog
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.api import MAX_BIG_ID, MAX_ID
from bot.auth import AuthError, Scope, token_grant
from bot.errors import BadRequest, NotAllowed, NotFound, ServiceUnavailable, Unauthenticated
from bot.models import Installation, WebhookSubscription
from bot.outbound import InvalidSubscriberUrl, check_url
from bot.secret_store import MASK, InvalidSecret, NoEncryptionKeys, SecretStore
from bot.state import AppState

log = structlog.get_logger(__name__)

MIN_SECRET_LENGTH = 16


async def _operator(request: Request) -> tuple[AppState, int, str]:
    """The state, the installation and who asks, once an operator token allows `control`."""
    state: AppState = request.app.state.clarity
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        raise Unauthenticated("send an operator token (Authorization: Bearer …)")
    try:
        grant = await token_grant(state.db, header[7:].strip())
    except AuthError as error:
        raise Unauthenticated(str(error)) from None
    if Scope.CONTROL not in grant.scopes or grant.build_id is not None:
        raise NotAllowed("this credential does not allow control on installation webhooks")
    installation_id = request.path_params["installation_id"]
    async with state.db.session() as session:
        if installation_id > MAX_BIG_ID or await session.get(Installation, installation_id) is None:
            raise NotFound(f"installation {installation_id} is not known to this service")
    return state, installation_id, grant.subject


def _json(subscription: WebhookSubscription, secret: str = MASK) -> dict[str, Any]:
    return {
        "id": subscription.id,
        "url": subscription.url,
        "active": subscription.active,
        "secret": secret,
        "created_at": subscription.created_at.isoformat(),
    }


async def _request_body(request: Request) -> tuple[str, str]:
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest('send a JSON body {"url": "https://…", "secret": "…"?}') from None
    url, secret = (body.get("url"), body.get("secret")) if isinstance(body, dict) else (None, None)
    if not isinstance(url, str):
        raise BadRequest('send a JSON body {"url": "https://…"} with the URL as a string')
    if secret is not None and (not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH):
        raise BadRequest(f"a secret, when given, is a string of {MIN_SECRET_LENGTH}+ characters")
    try:
        check_url(url)
    except InvalidSubscriberUrl as error:
        raise BadRequest(str(error)) from None
    return url, secret or secrets.token_urlsafe(32)


async def create_webhook(request: Request) -> JSONResponse:
    state, installation, subject = await _operator(request)
    url, secret = await _request_body(request)
    name = f"webhook-{secrets.token_hex(6)}"
    try:
        await SecretStore(state.db, state.settings.encryption_keys).put(installation, name, secret)
    except NoEncryptionKeys as error:
        raise ServiceUnavailable(str(error)) from None
    except InvalidSecret as error:
        raise BadRequest(str(error)) from None
    subscription = WebhookSubscription(installation_id=installation, url=url, secret_name=name)
    async with state.db.session() as session:
        session.add(subscription)
        await session.commit()
        await session.refresh(subscription)
    log.info(
        "webhook.subscribed", installation=installation, subscription=subscription.id, by=subject
    )
    # The only time the secret is shown: the subscriber needs it to verify signatures.
    return JSONResponse(_json(subscription, secret), status_code=201)


async def list_webhooks(request: Request) -> JSONResponse:
    state, installation, _ = await _operator(request)
    async with state.db.session() as session:
        rows = await session.exec(
            select(WebhookSubscription)
            .where(WebhookSubscription.installation_id == installation)
            .order_by(col(WebhookSubscription.id))
        )
        return JSONResponse({"webhooks": [_json(row) for row in rows]})


async def delete_webhook(request: Request) -> Response:
    state, installation, subject = await _operator(request)
    subscription_id = request.path_params["subscription_id"]
    async with state.db.session() as session:
        subscription = (
            await session.get(WebhookSubscription, subscription_id)
            if subscription_id <= MAX_ID
            else None
        )
        if subscription is None or subscription.installation_id != installation:
            raise NotFound(f"installation {installation} has no webhook {subscription_id}")
        name = subscription.secret_name
        await session.delete(subscription)
        await session.commit()
    await SecretStore(state.db, state.settings.encryption_keys).delete(installation, name)
    log.info("webhook.deleted", installation=installation, subscription=subscription_id, by=subject)
    return Response(status_code=204)


routes = [
    Route(
        "/v1/installations/{installation_id:int}/webhooks",
        create_webhook,
        methods=["POST"],
    ),
    Route("/v1/installations/{installation_id:int}/webhooks", list_webhooks, methods=["GET"]),
    Route(
        "/v1/installations/{installation_id:int}/webhooks/{subscription_id:int}",
        delete_webhook,
        methods=["DELETE"],
    ),
]
