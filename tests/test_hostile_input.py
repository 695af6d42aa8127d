"""Hostile input at the three edges that take text from anyone: the webhook endpoint,
`.clarity.yml` and `/clarity` comments. Each is refused in its own words, never crashes."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import uuid
import zlib
from collections import Counter
from datetime import date

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.freshness import event_timestamp
from bot.signature import sign
from handlers.commands import MAX_COMMANDS, CommandName, parse_commands
from policies.repo_config import RepoConfig, RepoConfigError, load_repo_config
from tests.chaos_report import sized
from tests.conftest import WEBHOOK_SECRET
from tests.webhook_fixtures import stored_deliveries

pytestmark = pytest.mark.chaos
SECTION = "Hostile input: webhooks, .clarity.yml, slash commands (hypothesis)"
HOSTILE = settings(
    max_examples=int(sized(ci=200, full=2000)),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
LIMIT = 4096  # max_body_bytes for these tests, so "over the limit" stays cheap to generate

# ---------------------------------------------------------------------------- webhooks

EVENTS = ["push", "pull_request", "issue_comment", "ping", "check_run", "installation"]
# Header values travel as bytes: anything h11 lets through (no control characters);
# non-Latin-1 text arrives as its UTF-8 bytes, read back by Starlette as Latin-1.
header_text = st.text(st.characters(blacklist_categories=["Cc", "Cs"]), max_size=80).map(
    lambda text: text.strip().encode()
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
timestamps = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False),
    st.just("2001-01-01T00:00:00Z"),
    st.just("9999-12-31T23:59:59-14:00"),
    st.just("0001-01-01T00:00:00+14:00"),
    st.text(max_size=30),
    json_values,
)


@st.composite
def payloads(draw: st.DrawFn) -> dict:
    """A JSON object with GitHub's keys (some) holding anything, timestamps included."""
    payload = draw(st.dictionaries(st.text(max_size=10), json_values, max_size=4))
    for key, value in [
        ("action", st.one_of(st.sampled_from(["opened", "created"]), st.text(max_size=80))),
        ("installation", st.fixed_dictionaries({"id": st.integers(-(2**70), 2**70)})),
        ("comment", st.fixed_dictionaries({"updated_at": timestamps})),
        ("pull_request", st.fixed_dictionaries({"updated_at": timestamps})),
        ("repository", st.fixed_dictionaries({"pushed_at": timestamps})),
    ]:
        if draw(st.booleans()):
            payload[key] = draw(value)
    return payload


def _json_bytes(value: object) -> bytes:
    return json.dumps(value).encode()


bodies = st.one_of(
    st.binary(max_size=300),
    payloads().map(_json_bytes),
    st.text(st.sampled_from('{}[]":,0123456789 \\ntrueaflsu'), max_size=200).map(str.encode),
    st.binary(min_size=1, max_size=40).map(lambda data: b'{"a": "' + data + b'"}'),  # bad UTF-8
    payloads().map(lambda payload: gzip.compress(_json_bytes(payload))),
    payloads().map(lambda payload: zlib.compress(_json_bytes(payload))),
    st.integers(LIMIT - 32, LIMIT + 64).map(lambda n: b'{"pad": "' + b"x" * n + b'"}'),
)


@st.composite
def signature_headers(draw: st.DrawFn, body: bytes) -> list[tuple[bytes, bytes]]:
    """Zero or more `X-Hub-Signature-256` headers (valid, wrong, malformed), maybe a sha1 one."""
    valid = sign(body, WEBHOOK_SECRET)
    choices = st.sampled_from(
        [
            valid,
            valid.upper(),
            "Sha256=" + valid[7:],
            "",
            "sha256=",
            "sha1=" + valid[7:],
            valid[7:],
            sign(body, "another-secret"),
            sign(body + b"x", WEBHOOK_SECRET),
            "sha256=" + "0" * 64,
            "sha256=" + valid[7:-1],
            "sha256=" + valid[7:] + "0",
        ]
    )
    values = draw(st.lists(st.one_of(choices.map(str.encode), header_text), max_size=3))
    hdrs = [(b"X-Hub-Signature-256", value) for value in values]
    if draw(st.booleans()):
        sha1 = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha1).hexdigest()
        hdrs.append((b"X-Hub-Signature", b"sha1=" + sha1.encode()))
    return hdrs


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    body = draw(bodies)
    hdrs = draw(signature_headers(body))
    optional = {
        b"X-GitHub-Event": st.one_of(st.sampled_from(EVENTS).map(str.encode), header_text),
        b"X-GitHub-Delivery": st.one_of(st.just(str(uuid.uuid4()).encode()), header_text),
        b"Content-Type": st.sampled_from(
            [b"application/json", b"application/x-www-form-urlencoded", b"text/plain", b"\xff"]
        ),
    }
    for name, values in optional.items():
        for _ in range(draw(st.integers(0, 2))):  # absent, once, or twice
            hdrs.append((name, draw(values)))
    return body, draw(st.permutations(hdrs))


def _validly_signed(body: bytes, hdrs: list[tuple[bytes, bytes]]) -> bool:
    """Does the first `X-Hub-Signature-256` (the one the app reads) sign exactly `body`?"""
    given = [value for name, value in hdrs if name.lower() == b"x-hub-signature-256"]
    if not given:
        return False
    value = given[0].decode("latin-1").strip().lower()
    return hmac.compare_digest(value.encode(), sign(body, WEBHOOK_SECRET).encode())


def _assert_error_shape(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("application/json"), response.text
    assert set(response.json()) == {"error", "detail"}, response.text


async def test_hostile_deliveries_never_crash_and_are_accepted_only_when_signed(intake, db, chaos):
    url, _ = intake(max_body_bytes=LIMIT)
    inbox = db.url.split(":", 1)[0]
    seen: Counter[str] = Counter()

    # The app serves in its own thread, so a blocking client in the test is fine.
    with httpx.Client(base_url=url) as client:

        @HOSTILE
        @given(deliveries())
        def check(delivery: tuple[bytes, list[tuple[bytes, bytes]]]) -> None:
            body, hdrs = delivery
            response = client.post("/webhooks/github", content=body, headers=hdrs)
            seen["cases"] += 1
            seen["5xx"] += response.status_code >= 500
            seen["accepted unsigned"] += response.is_success and not _validly_signed(body, hdrs)
            assert response.status_code < 500, (response.status_code, response.text)
            if response.is_success:
                assert _validly_signed(body, hdrs)
            else:
                _assert_error_shape(response)

        check()
    chaos.record(
        SECTION,
        f"hostile deliveries sent (bodies, headers, signatures, sizes), {inbox} inbox",
        seen["cases"],
    )
    for figure in ("5xx", "accepted unsigned"):
        chaos.record(
            SECTION,
            f"hostile deliveries, {inbox} inbox: {figure}",
            seen[figure],
            target="0",
            ok=seen[figure] == 0,
        )


async def test_signed_random_json_objects_are_answered_without_a_server_error(intake, db, chaos):
    url, _ = intake(max_body_bytes=LIMIT)
    inbox = db.url.split(":", 1)[0]
    seen: Counter[str] = Counter()

    # The app serves in its own thread, so a blocking client in the test is fine.
    with httpx.Client(base_url=url) as client:

        @HOSTILE
        @given(
            payloads(),
            st.one_of(
                st.sampled_from(EVENTS),
                st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=80),
            ),
        )
        def check(payload: dict, event: str) -> None:
            body = _json_bytes(payload)
            hdrs = {
                "X-GitHub-Event": event,
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": sign(body, WEBHOOK_SECRET),
                "Content-Type": "application/json",
            }
            response = client.post("/webhooks/github", content=body, headers=hdrs)
            seen["cases"] += 1
            seen["5xx"] += response.status_code >= 500
            assert response.status_code in {200, 202, 400, 409}, (
                response.status_code,
                response.text,
            )
            if response.status_code >= 400:
                _assert_error_shape(response)

        check()
    chaos.record(SECTION, f"signed random JSON deliveries sent, {inbox} inbox", seen["cases"])
    chaos.record(
        SECTION,
        f"signed random JSON, {inbox} inbox: 5xx",
        seen["5xx"],
        target="0",
        ok=seen["5xx"] == 0,
    )


@pytest.mark.parametrize("value", [1e20, -(2**63), 2**63, float("inf"), float("nan")])
def test_an_out_of_range_push_timestamp_is_no_timestamp(value):
    # An OverflowError: a signed push with `pushed_at: 1e20` was answered 500.
    assert event_timestamp("push", {"repository": {"pushed_at": value}}) is None


def test_a_timestamp_with_no_utc_time_is_no_timestamp():
    # Stored in UTC it overflowed, and the delivery was answered 503 for ever.
    payload = {"pull_request": {"updated_at": "9999-12-31T23:59:59-14:00"}}
    assert event_timestamp("pull_request", payload) is None


@pytest.mark.parametrize(
    ("payload", "event", "detail"),
    [
        ({"action": "a" * 65}, "push", "invalid action"),
        ({"action": "opened\u0000"}, "push", "invalid action"),
        ({"action": "\ud800"}, "push", "invalid action"),
        ({}, "e" * 65, "X-GitHub-Event"),
    ],
)
async def test_a_signed_delivery_that_would_not_fit_the_inbox_is_a_bad_request(
    intake, payload, event, detail
):
    # PostgreSQL refused these rows (too long, NUL, lone surrogate): 503, and GitHub retries.
    url, _ = intake()
    body = _json_bytes(payload)
    hdrs = {"X-GitHub-Event": event, "X-GitHub-Delivery": str(uuid.uuid4())}
    hdrs["X-Hub-Signature-256"] = sign(body, WEBHOOK_SECRET)
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/webhooks/github", content=body, headers=hdrs)
    assert response.status_code == 400
    assert detail in response.json()["detail"]


async def test_an_installation_id_beyond_bigint_is_no_installation(intake, db):
    url, _ = intake()
    body = _json_bytes({"installation": {"id": 2**70}})
    hdrs = {"X-GitHub-Event": "push", "X-GitHub-Delivery": str(uuid.uuid4())}
    hdrs["X-Hub-Signature-256"] = sign(body, WEBHOOK_SECRET)
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/webhooks/github", content=body, headers=hdrs)
    assert response.status_code == 202
    [row] = await stored_deliveries(db)
    assert row.installation_id is None


# --------------------------------------------------------------------------- .clarity.yml

KEYS = [
    "version", "exclude", "rules", "fail_on", "comment", "tiers", "drafts", "ignore", "policy",
    "fingerprint", "reason", "until", "commands", "deny", "allow", "mode", "network", "deep_scan",
    "deep-scan", "fix", "scan", "allow_hosts", "limits", "memory", "wall_seconds", "cpu_seconds",
    "access", "approve", "fixes", "deny_paths", "allow_paths", "max_files", "budgets",
    "max_cost_usd", "confirm_over_usd", "gates", "security", "checkpoint", "paths", "quotas",
    "per_user", "agent", "py-print-in-production", "js-console-log",
]  # fmt: skip
yaml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),
    st.dates(),
    st.text(max_size=20),
    st.sampled_from(
        [
            "off",
            "info",
            "high",
            "critical",
            "on-findings",
            "scan",
            "skip",
            "none",
            "admin",
            "1GiB",
            "-1",
            "npx",
            "git push",
            "!npx",
            "'",
            "src/**",
            "!src/**",
            "",
            "a" * 32,
        ]
    ),
)
yaml_keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8), st.integers(-3, 3))
yaml_values = st.recursive(
    yaml_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(yaml_keys, children, max_size=5)
    ),
    max_leaves=20,
)
yaml_documents = st.one_of(
    st.dictionaries(st.sampled_from(KEYS[:9]), yaml_values, max_size=6),
    yaml_values,
).map(lambda data: yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
YAML_PIECES = [
    "\n", "  ", "- ", ": ", "version", "rules", "ignore", "policy", "fingerprint", "until",
    "&a ", "*a", "!!int ", "!!float ", "!!timestamp ", "!!binary ", "!!python/name:os.system ",
    "2024-02-30", "2024-13-01", "0x", "{", "}", "[", "]", ",", "'", '"', "#", "?", "|", ">",
    "\t", "%YAML 1.1\n", "---\n", "...\n", "\x00", "\ufeff", "\u2028",
]  # fmt: skip
yaml_texts = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(YAML_PIECES) | st.text(max_size=5), max_size=40).map("".join),
    st.integers(1, 1500).map(lambda depth: "exclude: " + "[" * depth + "]" * depth),
    st.integers(1, 1500).map(lambda depth: "policy: " + "{a: " * depth + "1" + "}" * depth),
)


@HOSTILE
@given(yaml_documents)
def test_any_yaml_document_loads_or_is_refused_naming_key_or_line(text):
    try:
        config = load_repo_config(text)
    except RepoConfigError as error:
        assert error.key or error.line, str(error)
    else:
        assert isinstance(config, RepoConfig)


@HOSTILE
@given(yaml_texts)
def test_any_text_loads_or_is_refused_with_a_repo_config_error(text):
    try:
        config = load_repo_config(text, known_rules={"js-console-log"})
    except RepoConfigError as error:
        assert str(error)
    else:
        assert isinstance(config, RepoConfig)


def test_values_pyyaml_cannot_construct_are_a_repo_config_error():
    # PyYAML raises plain ValueError, KeyError, ... for these; they escaped load_repo_config.
    for text in ["a: 2024-02-30", "a: !!int", "a: !!bool x", "a: !!timestamp x", "[" * 5000]:
        try:
            load_repo_config(text)
        except RepoConfigError:
            pass
        else:  # pragma: no cover
            raise AssertionError(text)
    fingerprint = "a" * 32
    good = f"ignore:\n  - {{fingerprint: {fingerprint}, reason: ok, until: {date(2026, 6, 30)}}}\n"
    assert load_repo_config(good).ignore[0].until == date(2026, 6, 30)


# ------------------------------------------------------------------------- slash commands

COMMENT_PIECES = [
    "\n", "\r\n", "\r", "/clarity", "/clarity ", "/CLARITY ", "status", "deep-scan", "confirm",
    "fix all-new-critical", "ignore CC-1 it's fine", "'", '"', "`", "```", "~~~", "> ", ">",
    "<!--", "-->", "<!-->", "<pre>", "</pre>", "    ", "\t", "- ", "1. ", "\\", "\u2028",
    "\x00", "\x0c", "é", "\U0001f600", "\ufeff",
]  # fmt: skip
comments = st.one_of(
    st.text(),
    st.lists(st.sampled_from(COMMENT_PIECES) | st.text(max_size=6), max_size=120).map("".join),
    st.integers(1, 200_000).map(lambda n: "/clarity ignore CC-1 " + "x" * n),
    st.integers(1, 5_000).map(lambda n: "/clarity status\n" * n),
    st.integers(1, 5_000).map(lambda n: "`" * n + "/clarity status" + "`" * (n - 1)),
)


@HOSTILE
@given(comments)
def test_any_comment_parses_to_at_most_ten_known_commands(body):
    commands = parse_commands(body)
    assert len(commands) <= MAX_COMMANDS
    assert all(isinstance(command.name, CommandName) for command in commands)


# Text around the block: no characters that open a fence, a quote or an HTML block,
# so the block starts where it is written.
plain_lines = st.lists(
    st.text(st.characters(blacklist_characters="`~<>\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")),
    max_size=3,
)
inner_lines = st.lists(
    st.sampled_from(["/clarity status", "/clarity deep-scan confirm", "  /clarity fix all", ""])
    | st.text(st.characters(blacklist_characters="`~\r\n")),
    min_size=1,
    max_size=6,
)


def _lines_between(before: list[str], block: list[str]) -> range:
    return range(len(before) + 1, len(before) + len(block) + 1)


@HOSTILE
@given(
    plain_lines,
    st.sampled_from(["", " ", "   ", "- ", "1. "]),
    st.sampled_from(["```", "````", "~~~", "~~~~~"]),
    st.sampled_from(["", "yaml", " sh {.x}"]),
    inner_lines,
    st.booleans(),
    plain_lines,
)
def test_commands_in_a_fenced_block_are_never_read(
    before, indent, fence, info, inner, close, after
):
    block = [indent + fence + info, *inner] + ([fence] if close else [])
    body = "\n".join([*before, *block, *after])
    inside = _lines_between(before, block)
    assert [c.line for c in parse_commands(body) if c.line in inside] == []


@HOSTILE
@given(
    plain_lines,
    st.lists(
        st.tuples(
            st.sampled_from([">", "> ", "   > ", ">> ", "> > "]),
            st.sampled_from(["/clarity status", "/clarity abort", "`x` /clarity retry", ""])
            | st.text(st.characters(blacklist_characters="\r\n")),
        ).map("".join),
        min_size=1,
        max_size=6,
    ),
    plain_lines,
)
def test_commands_on_quoted_lines_are_never_read(before, quoted, after):
    body = "\n".join(["", *before, "", *quoted, *after])
    inside = _lines_between(["", *before, ""], quoted)
    assert [c.line for c in parse_commands(body) if c.line in inside] == []


def test_a_comment_of_many_commands_yields_ten():
    body = "\n".join(["/clarity status"] * 100)
    assert [c.line for c in parse_commands(body)] == list(range(1, MAX_COMMANDS + 1))


async def test_a_signed_body_nested_too_deeply_for_json_is_a_bad_request(intake):
    # json.loads raised RecursionError: answered 500.
    url, _ = intake()
    body = b"[" * 100_000 + b"]" * 100_000
    hdrs = {"X-GitHub-Event": "push", "X-GitHub-Delivery": str(uuid.uuid4())}
    hdrs["X-Hub-Signature-256"] = sign(body, WEBHOOK_SECRET)
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/webhooks/github", content=body, headers=hdrs)
    assert response.status_code == 400
