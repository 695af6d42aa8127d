"""The one place every request is checked, answered, counted and recorded.

Order, as GitHub applies it: injected fault, authentication, rate limit, access to
the repository, request validation against the REST description, then the handler.
Every `HubError` becomes GitHub's JSON error body here and nowhere else.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import auth
from .errors import DOCS, Forbidden, HubError, InvalidRequest, NotFound, ProblemsParsingJSON
from .models import AuthKind, CallRecord, Fault, Repository
from .spec import Operation, load_spec

if TYPE_CHECKING:
    from .state import Hub

JSON = "application/json; charset=utf-8"
APP, INSTALLATION = "app", "installation"
API_VERSION = "2022-11-28"


@dataclass(frozen=True)
class Policy:
    """How an operation is authorized: App JWT or installation token, and which permission."""

    auth: str = INSTALLATION
    needs: tuple[auth.Need, ...] = ()
    write: bool = False


@dataclass
class Context:
    """What a handler gets: the hub, the checked request, and the repository it targets."""

    hub: Hub
    request: Request
    operation: Operation
    params: dict[str, Any]
    query: dict[str, str]
    body: Any
    caller: auth.Caller
    repo: Repository | None

    @property
    def base_url(self) -> str:
        """The address the caller used, for links in response bodies."""
        return str(self.request.base_url).rstrip("/")


@dataclass
class Reply:
    """A handler's answer; `content` for non-JSON bodies such as archives."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    media_type: str = JSON
    background: BackgroundTask | None = None


Handler = Callable[[Context], Awaitable[Reply]]


def operation(operation_id: str, handler: Handler, policy: Policy = Policy()) -> Route:
    """A Starlette route for one operation of the REST description."""
    op = load_spec().operation(operation_id)

    async def endpoint(request: Request) -> Response:
        return await answer(request, op, handler, policy)

    return Route(op.route_path(), endpoint, methods=[op.method], name=operation_id)


async def answer(request: Request, op: Operation, handler: Handler, policy: Policy) -> Response:
    """Run the checks, the handler, and record the call."""
    hub: Hub = request.app.state.hub
    params = dict(request.path_params)
    query = list(request.query_params.multi_items())
    body, unreadable = _decode(op, await request.body())
    caller, refused = _authenticate(hub, request, policy)
    # every answer carries the caller's rate limit, faults and refusals included
    limits = auth.rate_limit(hub, caller)
    fault = take_fault(hub, op.operation_id)
    try:
        if fault is not None and not fault.applied:
            reply = fault_reply(fault)
        else:
            for error in (refused, unreadable):
                if error is not None:
                    raise error
            if int(limits["x-ratelimit-used"]) > int(limits["x-ratelimit-limit"]):
                raise Forbidden("API rate limit exceeded.")
            repo = _repository(hub, caller, params, policy)
            problems = load_spec().request_problems(
                op, request.url.path, _strings(params), query, body
            )
            if problems:
                raise InvalidRequest(problems)
            reply = await handler(
                Context(hub, request, op, params, dict(query), body, caller, repo)
            )
            if fault is not None:  # carried out, and answered as if it failed
                reply = fault_reply(fault)
    except HubError as exc:
        if exc.documentation_url == DOCS:
            exc.documentation_url = op.documentation_url
        reply = Reply(exc.status, exc.body(), dict(exc.headers))
    response = _response(reply, limits)
    kind = auth.presented(request.headers.get("authorization"))
    record(hub, request, op.operation_id, reply.status, body, kind, dict(query), fault is not None)
    return response


def _decode(op: Operation, raw: bytes) -> tuple[Any, HubError | None]:
    """The JSON body, or the 400 to answer once authentication had its say."""
    if not op.has_body:
        return None, None
    if not raw.strip():
        # GitHub reads an empty body as an empty object
        return {}, None
    try:
        return json.loads(raw), None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None, ProblemsParsingJSON()


def _authenticate(
    hub: Hub, request: Request, policy: Policy
) -> tuple[auth.Caller, HubError | None]:
    """The caller, or an anonymous one plus the refusal to raise once faults had their turn."""
    header = request.headers.get("authorization")
    try:
        if policy.auth == APP:
            return auth.authenticate_app(hub, header), None
        return auth.authenticate_installation(hub, header), None
    except HubError as refused:
        return auth.Caller(AuthKind.NONE, "anonymous"), refused


def _repository(
    hub: Hub, caller: auth.Caller, params: dict[str, Any], policy: Policy
) -> Repository | None:
    if "owner" not in params:
        return None
    with hub.lock:
        repo = hub.repositories.get(f"{params['owner']}/{params['repo']}".lower())
    if policy.auth == APP:
        if repo is None:
            raise NotFound()
        return repo
    auth.authorize(hub, caller, repo, policy.needs, policy.write)
    return repo


def _strings(params: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in params.items()}


def _response(reply: Reply, limits: dict[str, str]) -> Response:
    headers = {
        **limits,
        "x-github-api-version-selected": API_VERSION,
        "x-github-media-type": "github.v3; format=json",
        "x-github-request-id": uuid.uuid4().hex[:20].upper(),
        **reply.headers,
    }
    if reply.content is not None:
        content, media_type = reply.content, reply.media_type
    elif reply.body is None and reply.status in (204, 302):
        content, media_type = b"", None
    else:
        content, media_type = json.dumps(reply.body).encode(), JSON
    return Response(
        content,
        status_code=reply.status,
        headers=headers,
        media_type=media_type,
        background=reply.background,
    )


def take_fault(hub: Hub, operation_id: str | None) -> Fault | None:
    """Consume the first injected fault that matches this operation, in injection order."""
    with hub.lock:
        for fault in hub.faults:
            if fault.remaining > 0 and fault.operation_id in (None, operation_id):
                fault.remaining -= 1
                return fault
    return None


def fault_reply(fault: Fault) -> Reply:
    body = fault.body if fault.body is not None else _fault_body(fault.status)
    return Reply(fault.status, body, dict(fault.headers))


def _fault_body(status: int) -> dict[str, str]:
    messages = {
        500: "Server Error",
        502: "Server Error",
        503: "Service Unavailable",
        504: "We couldn't respond to your request in time.",
    }
    return {
        "message": messages.get(status, "Injected fault"),
        "documentation_url": DOCS,
        "status": str(status),
    }


def record(
    hub: Hub,
    request: Request,
    operation_id: str | None,
    status: int,
    body: Any,
    kind: AuthKind,
    query: dict[str, str],
    injected: bool = False,
) -> None:
    """Append the call to `hub.calls` (and wake anyone waiting on the hub)."""
    with hub.lock:
        hub.calls.append(
            CallRecord(
                request.method, request.url.path, operation_id, status, body, kind, query, injected
            )
        )
    hub.changed()


async def not_found(request: Request, exc: Exception) -> Response:
    """Unknown routes and wrong methods: GitHub answers 404 for both."""
    hub: Hub = request.app.state.hub
    header = request.headers.get("authorization")
    limits = auth.rate_limit(hub, auth.any_caller(hub, header))
    reply = Reply(404, NotFound().body())
    record(
        hub, request, None, reply.status, None, auth.presented(header), dict(request.query_params)
    )
    return _response(reply, limits)
