"""`/v1` against its own description: valid, complete, served, and holding under schemathesis."""

from __future__ import annotations

import copy
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route

from bot.app import create_app
from bot.auth import Scope, capability, create_token, revoke_token
from bot.db import Database
from bot.models import BuildTier, Installation, Repository, Trajectory, WebhookSubscription
from bot.openapi import description
from bot.secret_store import SecretStore, new_key
from orchestrator import control
from orchestrator.dag import Node
from orchestrator.executor import run_build
from tests.chaos_report import sized
from tests.dag_nodes import chain

SECTION = "Hostile input: /v1 API (schemathesis)"
REQUEST_TIMEOUT = 10.0  # seconds for a whole answer; longer counts as a hang
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# The credential-free tests need no second backend: a token is refused before any query.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def described_routes() -> set[tuple[str, str]]:
    methods = {"get", "put", "post", "delete", "patch"}
    return {
        (method.upper(), path)
        for path, item in description()["paths"].items()
        for method in item
        if method in methods
    }


def app_routes(app) -> set[tuple[str, str]]:
    """(method, path) of every `/v1` route, with Starlette's `{name:int}` written `{name}`."""
    return {
        (method, re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path))
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith("/v1/")
        for method in route.methods - {"HEAD"}
    }


def test_the_description_is_valid_openapi():
    validate(copy.deepcopy(description()))


def test_every_v1_route_is_described_and_nothing_else(make_settings):
    assert app_routes(create_app(make_settings())) == described_routes()


@sqlite_only
async def test_the_description_is_served_without_credentials(intake):
    url, _ = intake()
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/v1/openapi.json")
    assert response.status_code == 200
    assert response.json() == description()


@dataclass
class Service:
    """The live app on seeded rows: one installation, a finished build with events and a run."""

    url: str
    db: Database
    link_key: bytes
    build_id: int
    subscription_id: int
    all_scopes: str  # a token holding every scope
    revoked: str  # a token holding every scope, revoked

    def known(self, operation) -> dict[str, int | str]:
        """Path parameters naming seeded rows, for the operation's parameters that take them."""
        rows = {
            "build_id": self.build_id,
            "installation_id": 1,
            "subscription_id": self.subscription_id,
            "name": "DATABASE_URL",
        }
        names = {p.name for p in operation.path_parameters}
        return {name: value for name, value in rows.items() if name in names}


@pytest.fixture
async def service(intake, db, queue) -> Service:
    keys = [new_key()]
    async with db.session() as session:
        session.add(Installation(id=1, account_login="octo-org"))
        await session.flush()
        session.add(Repository(id=10, installation_id=1, full_name="octo-org/app"))
        await session.commit()
    url, settings = intake(encryption_keys=keys)
    build = await control.create_build(
        db,
        chain(
            Node("scan", "tests.dag_nodes:noop"), Node("report", "tests.dag_nodes:noop", ("scan",))
        ),
        installation_id=1,
        repository_id=10,
        tier=BuildTier.SCAN,
        head_sha="c" * 40,
        trigger="test",
    )
    # Finished, so its event stream replays and ends rather than waiting for more.
    await run_build({"db": db, "redis": queue, "settings": settings}, build.id)
    await SecretStore(db, keys).put(1, "DATABASE_URL", "postgres://app:hunter2@db/app")
    async with db.session() as session:
        session.add(
            Trajectory(
                build_id=build.id,
                task_key="scan",
                role="scanner",
                status="finished",
                events=[{"type": "tool_call", "tool": "grep"}],
            )
        )
        subscription = WebhookSubscription(
            installation_id=1, url="https://hooks.example.com/clarity", secret_name="DATABASE_URL"
        )
        session.add(subscription)
        await session.commit()
        await session.refresh(subscription)
    revoked = await create_token(db, "gone", list(Scope))
    await revoke_token(db, "gone")
    everything = await create_token(db, "ops", list(Scope))
    return Service(url, db, settings.link_key(), build.id, subscription.id, everything, revoked)


def operations(*, public: bool = False) -> list:
    """The described operations needing a credential; with `public`, the open ones too."""
    schema = schemathesis.openapi.from_dict(copy.deepcopy(description()))
    # Like most HTTP APIs, the service ignores query parameters it does not know.
    schema.config.generation.update(allow_extra_parameters=False)
    found = [result.ok() for result in schema.get_all_operations()]
    return [op for op in found if public or op.definition.raw.get("security") != []]


def required_scopes(operation) -> set[Scope]:
    """The operator-token scopes the description says the operation needs."""
    return {
        Scope(scope)
        for requirement in operation.definition.raw["security"]
        for scope in requirement.get("operatorToken", [])
    }


@dataclass
class Tally:
    """What a schemathesis run saw."""

    operations: set[str] = field(default_factory=set)
    cases: int = 0
    statuses: dict[str, list[int]] = field(default_factory=dict)
    server_errors: int = 0
    mismatches: list[str] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)  # "operation: failure title", once each
    hangs: list[str] = field(default_factory=list)

    def count(self, label: str, status: int) -> None:
        self.operations.add(label)
        self.cases += 1
        self.statuses.setdefault(label, []).append(status)
        self.server_errors += status >= 500


def hypothesis_settings(examples: int):
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def send(
    case, tally: Tally, base_url: str, headers: dict[str, str] | None = None
) -> Response | None:
    """One call with a whole-answer deadline; a call past it is a hang, not an answer."""
    started = time.monotonic()
    try:
        response = case.call(base_url, headers=headers, timeout=REQUEST_TIMEOUT)
    except requests.Timeout:
        tally.hangs.append(case.as_curl_command())
        return None
    if time.monotonic() - started > REQUEST_TIMEOUT:
        tally.hangs.append(case.as_curl_command())
    tally.count(case.operation.label, response.status_code)
    return response


def without_credentials(case) -> None:
    if case.headers:
        case.headers = {k: v for k, v in case.headers.items() if k.lower() != "authorization"}
    if case.query:
        case.query = {k: v for k, v in case.query.items() if k != "cap"}


def invalid_credentials(service: Service) -> dict[str, Callable]:
    """Ways to ask without a valid credential, each applied to a generated case in place."""

    def bearer(token: str) -> Callable:
        def apply(case) -> None:
            without_credentials(case)
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}

        return apply

    def link(value: str) -> Callable:
        def apply(case) -> None:
            without_credentials(case)
            case.query = {**(case.query or {}), "cap": value}

        return apply

    expired = capability(service.build_id, service.link_key, now=time.time() - 10**8)
    return {
        "none": without_credentials,
        "generated by schemathesis": lambda case: None,
        "unknown token": bearer("clarity_" + secrets.token_urlsafe(32)),
        "revoked token": bearer(service.revoked),
        "expired link": link(expired),
        "forged link": link(capability(service.build_id, b"not the service's key")),
    }


@pytest.mark.chaos
@sqlite_only
async def test_no_operation_answers_without_a_valid_credential(service, chaos):
    credentials = invalid_credentials(service)
    tally = Tally()
    examples = sized(ci=8, full=80)
    for operation in operations():

        @given(case=operation.as_strategy(), way=st.sampled_from(sorted(credentials)))
        @hypothesis_settings(examples)
        def ask(case, way: str) -> None:
            credentials[way](case)
            send(case, tally, service.url)

        ask()
    answers = [status for statuses in tally.statuses.values() for status in statuses]
    accepted = sum(200 <= status < 300 for status in answers)
    other = {label: sorted(set(s) - {401}) for label, s in tally.statuses.items() if set(s) - {401}}
    chaos.record(SECTION, "operations tried without a valid credential", len(tally.operations))
    chaos.record(SECTION, "cases sent without a valid credential", tally.cases)
    chaos.record(
        SECTION, "accepted without a valid credential", accepted, target="0", ok=accepted == 0
    )
    chaos.record(
        SECTION, "answers other than 401 without a credential", len(other), target="0", ok=not other
    )
    assert tally.operations == {op.label for op in operations()}
    assert other == {}
    assert tally.hangs == []


@pytest.mark.chaos
@sqlite_only
async def test_a_token_without_the_scope_is_forbidden_everywhere(service, chaos):
    tally = Tally()
    examples = sized(ci=8, full=80)
    for operation in operations():
        lacking = [scope for scope in Scope if scope not in required_scopes(operation)]
        token = await create_token(service.db, f"lacks-{operation.label[:80]}", lacking)
        auth = {"Authorization": f"Bearer {token}"}

        @given(case=operation.as_strategy())
        @hypothesis_settings(examples)
        def ask(case) -> None:
            send(case, tally, service.url, auth)

        ask()
    answers = [status for statuses in tally.statuses.values() for status in statuses]
    accepted = sum(200 <= status < 300 for status in answers)
    other = {label: sorted(set(s) - {403}) for label, s in tally.statuses.items() if set(s) - {403}}
    chaos.record(SECTION, "cases sent with a token lacking the scope", tally.cases)
    chaos.record(SECTION, "accepted without the scope", accepted, target="0", ok=accepted == 0)
    chaos.record(
        SECTION, "answers other than 403 without the scope", len(other), target="0", ok=not other
    )
    assert other == {}
    assert tally.hangs == []


@pytest.mark.chaos
async def test_generated_requests_get_documented_answers_and_no_server_error(
    service, database_url, chaos
):
    tally = Tally()
    auth = {"Authorization": f"Bearer {service.all_scopes}"}
    examples = sized(ci=12, full=120)
    for operation in operations(public=True):
        strategies = {
            GenerationMode.POSITIVE: st.one_of(
                operation.as_strategy(),
                operation.as_strategy(path_parameters=service.known(operation)),
            )
        }
        if operation.path_parameters or operation.query or operation.headers or operation.body:
            strategies[GenerationMode.NEGATIVE] = operation.as_strategy(GenerationMode.NEGATIVE)
        for mode, strategy in strategies.items():
            checks = CHECKS + [negative_data_rejection] * (mode is GenerationMode.NEGATIVE)

            @given(case=strategy)
            @hypothesis_settings(examples)
            def ask(case) -> None:
                response = send(case, tally, service.url, auth)
                if response is None:
                    return
                try:
                    case.validate_response(response, checks=checks, headers=auth)
                except FailureGroup as failures:
                    tally.mismatches.append(str(failures))
                    tally.kinds.update(
                        f"{case.operation.label}: {f.title}" for f in failures.exceptions
                    )

            ask()
    backend = database_url.split(":", 1)[0]
    served = {op.label for op in operations(public=True)}
    chaos.record(
        SECTION,
        f"operations covered ({backend})",
        f"{len(tally.operations)}/{len(served)}",
        target=str(len(served)),
        ok=tally.operations == served,
    )
    chaos.record(SECTION, f"cases generated ({backend})", tally.cases)
    chaos.record(
        SECTION,
        f"5xx answers ({backend})",
        tally.server_errors,
        target="0",
        ok=tally.server_errors == 0,
    )
    chaos.record(
        SECTION,
        f"answers not conforming to the description ({backend})",
        len(tally.mismatches),
        target="0",
        ok=not tally.mismatches,
    )
    chaos.record(SECTION, f"hangs ({backend})", len(tally.hangs), target="0", ok=not tally.hangs)
    assert tally.operations == served
    assert tally.kinds == set(), "\n".join(tally.mismatches[:3])
    assert tally.hangs == []
