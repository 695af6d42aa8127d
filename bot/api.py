"""`/v1`: a build's state, live events (SSE), agent trajectories and control actions; secrets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bot.auth import AuthError, Forbidden, Grant, Scope, capability_grant, token_grant
from bot.errors import (
    BadRequest,
    Conflict,
    NotAllowed,
    NotFound,
    ServiceUnavailable,
    Unauthenticated,
)
from bot.models import Build, BuildEvent, Task, Trajectory
from bot.queue import fast_queue
from bot.secret_store import (
    InvalidSecret,
    MaskedSecret,
    NoEncryptionKeys,
    SecretStore,
    UnknownInstallation,
)
from bot.state import AppState
from orchestrator import control
from orchestrator.transitions import TERMINAL_BUILD, TransitionError

KEEPALIVE_SECONDS = 15.0
# The largest numbers the id columns hold (PostgreSQL `integer`, and `bigint` for GitHub's
# installation ids). A larger number in a URL names no row; the database would refuse it.
MAX_ID = 2**31 - 1
MAX_BIG_ID = 2**63 - 1

log = structlog.get_logger(__name__)


async def _grant(request: Request) -> Grant:
    state: AppState = request.app.state.clarity
    header = request.headers.get("authorization", "")
    try:
        if header.lower().startswith("bearer "):
            return await token_grant(state.db, header[7:].strip())
        if link := request.query_params.get("cap"):
            return capability_grant(link, state.settings.link_key())
    except AuthError as error:
        raise Unauthenticated(str(error)) from None
    raise Unauthenticated(
        "send an operator token (Authorization: Bearer …) or a build link (?cap=…)"
    )


async def _authorised_build(request: Request, scope: Scope) -> tuple[AppState, Build]:
    grant = await _grant(request)
    try:
        build_id = int(request.path_params["build_id"])
    except ValueError:
        raise NotFound("no such build") from None
    if not 0 < build_id <= MAX_ID:
        raise NotFound(f"build {build_id} does not exist")
    try:
        grant.require(scope, build_id)
    except Forbidden as error:
        raise NotAllowed(str(error)) from None
    state: AppState = request.app.state.clarity
    async with state.db.session() as session:
        build = await session.get(Build, build_id)
    if build is None:
        raise NotFound(f"build {build_id} does not exist")
    return state, build


def _build_json(build: Build, tasks: list[Task]) -> dict[str, Any]:
    data = build.model_dump(mode="json", exclude={"dag_spec", "fencing_token"})
    data["tasks"] = [task.model_dump(mode="json", exclude={"id", "build_id"}) for task in tasks]
    return data


async def get_build(request: Request) -> JSONResponse:
    state, build = await _authorised_build(request, Scope.READ)
    async with state.db.session() as session:
        tasks = list(
            await session.exec(select(Task).where(Task.build_id == build.id).order_by(col(Task.id)))
        )
    return JSONResponse(_build_json(build, tasks))


async def get_trajectories(request: Request) -> JSONResponse:
    """The build's agent runs: role, model, end state, cost, and their tool calls and outputs."""
    state, build = await _authorised_build(request, Scope.READ)
    async with state.db.session() as session:
        runs = list(
            await session.exec(
                select(Trajectory)
                .where(Trajectory.build_id == build.id)
                .order_by(col(Trajectory.id))
            )
        )
    return JSONResponse(
        {"trajectories": [run.model_dump(mode="json", exclude={"build_id"}) for run in runs]}
    )


def _sse(event: BuildEvent) -> str:
    payload = {
        "seq": event.seq,
        "type": event.type,
        "task": event.task_key,
        "data": event.data,
        "at": event.created_at.isoformat(),
    }
    return f"id: {event.seq}\nevent: {event.type}\ndata: {json.dumps(payload)}\n\n"


async def stream_events(request: Request) -> StreamingResponse:
    state, build = await _authorised_build(request, Scope.READ)
    header = request.headers.get("last-event-id")  # present but empty is no event number
    after = header if header is not None else request.query_params.get("after", "0")
    try:
        last = int(after)
    except ValueError:
        raise BadRequest("Last-Event-ID must be an event number") from None
    if not 0 <= last <= MAX_ID:
        raise BadRequest(f"Last-Event-ID must be an event number from 0 to {MAX_ID}")
    return StreamingResponse(
        _events(state, build.id, last),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


async def _events(state: AppState, build_id: int, last: int) -> AsyncIterator[str]:
    pubsub = state.queue.pubsub()
    await pubsub.subscribe(control.events_channel(state.settings.queue_prefix, build_id))
    try:
        while True:
            async with state.db.session() as session:
                events = list(
                    await session.exec(
                        select(BuildEvent)
                        .where(BuildEvent.build_id == build_id, BuildEvent.seq > last)
                        .order_by(col(BuildEvent.seq))
                    )
                )
                status = (await session.get(Build, build_id)).status
            for event in events:
                last = event.seq
                yield _sse(event)
            if status in TERMINAL_BUILD:
                if not events:
                    return
                continue  # read once more: the final event may have committed between the two reads
            # Sleep until the build announces a new event, or send a keep-alive comment.
            message = await pubsub.get_message(
                ignore_subscribe_messages=True, timeout=KEEPALIVE_SECONDS
            )
            if message is None:
                yield ": keep-alive\n\n"
    finally:
        await pubsub.aclose()


async def control_build(request: Request) -> JSONResponse:
    state, build = await _authorised_build(request, Scope.CONTROL)
    action = request.path_params["action"]
    prefix = state.settings.queue_prefix
    try:
        if action == "abort":
            await control.abort(state.db, state.queue, prefix, build.id, "aborted by an operator")
        elif action in ("resume", "retry", "replan"):
            await getattr(control, action)(state.db, build.id)
            await control.enqueue(state.queue, build.id, fast_queue(prefix))
            await control.announce(state.queue, prefix, build.id)
        else:
            raise NotFound(f"unknown action {action!r}")
    except TransitionError as error:
        raise Conflict(str(error)) from None
    return JSONResponse({"build": build.id, "action": action}, status_code=202)


async def _secret_store(request: Request, scope: Scope) -> tuple[SecretStore, int, str]:
    """The store, the installation id and who is asking, once the credential allows `scope`.

    Secrets are installation-wide: only operator tokens reach them, never a build link.
    """
    grant = await _grant(request)
    if scope not in grant.scopes or grant.build_id is not None:
        raise NotAllowed(f"this credential does not allow {scope.value} on installation secrets")
    installation_id = request.path_params["installation_id"]
    if installation_id > MAX_BIG_ID:
        raise NotFound(f"installation {installation_id} is not known to this service")
    state: AppState = request.app.state.clarity
    store = SecretStore(state.db, state.settings.encryption_keys)
    return store, installation_id, grant.subject


@contextmanager
def _secret_errors() -> Iterator[None]:
    try:
        yield
    except UnknownInstallation as error:
        raise NotFound(str(error)) from None
    except InvalidSecret as error:
        raise BadRequest(str(error)) from None
    except NoEncryptionKeys as error:
        raise ServiceUnavailable(str(error)) from None


def _masked_json(secret: MaskedSecret) -> dict[str, str]:
    return {
        "name": secret.name,
        "mask": secret.mask,
        "key_id": secret.key_id,
        "updated_at": secret.updated_at.isoformat(),
    }


async def put_secret(request: Request) -> JSONResponse:
    store, installation, subject = await _secret_store(request, Scope.SECRETS_WRITE)
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest('send a JSON body {"value": "..."}') from None
    if not isinstance(body, dict) or not isinstance(body.get("value"), str):
        raise BadRequest('send a JSON body {"value": "..."} with the value as a string')
    name = request.path_params["name"]
    with _secret_errors():
        stored = await store.put(installation, name, body["value"])
    log.info("secret.stored", installation=installation, name=name, by=subject)
    return JSONResponse(_masked_json(stored))


async def list_secrets(request: Request) -> JSONResponse:
    store, installation, _ = await _secret_store(request, Scope.SECRETS_READ)
    with _secret_errors():
        secrets = await store.list_masked(installation)
    return JSONResponse({"secrets": [_masked_json(secret) for secret in secrets]})


async def delete_secret(request: Request) -> Response:
    store, installation, subject = await _secret_store(request, Scope.SECRETS_WRITE)
    name = request.path_params["name"]
    with _secret_errors():
        deleted = await store.delete(installation, name)
    if not deleted:
        raise NotFound(f"installation {installation} has no secret {name!r}")
    log.info("secret.deleted", installation=installation, name=name, by=subject)
    return Response(status_code=204)


routes = [
    Route("/v1/builds/{build_id}", get_build, methods=["GET"]),
    Route("/v1/builds/{build_id}/events", stream_events, methods=["GET"]),
    Route("/v1/builds/{build_id}/trajectories", get_trajectories, methods=["GET"]),
    Route("/v1/builds/{build_id}/{action}", control_build, methods=["POST"]),
    Route("/v1/installations/{installation_id:int}/secrets", list_secrets, methods=["GET"]),
    Route(
        "/v1/installations/{installation_id:int}/secrets/{name}",
        put_secret,
        methods=["PUT"],
    ),
    Route(
        "/v1/installations/{installation_id:int}/secrets/{name}",
        delete_secret,
        methods=["DELETE"],
    ),
]
