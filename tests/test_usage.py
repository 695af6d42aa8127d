"""Usage accounting: quotas counted atomically, all or nothing, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from bot.db import Database
from bot.models import Installation
from bot.usage import add_cost, pull_request_subject, release, reserve, snapshot
from policies import QuotaKind, UsageSnapshot, check_quota, load_pack
from policies.pack import Pack, QuotaPolicy

INSTALLATION = 31
NOW = datetime(2025, 1, 31, 23, 59, tzinfo=UTC)
NEXT_MONTH = datetime(2025, 2, 1, tzinfo=UTC)
PR = pull_request_subject("octo/app", 12)


def _pack(installation: int = 100, user: int = 100, pull_request: int = 100, llm: float = 10):
    quotas = QuotaPolicy.model_validate(
        {
            "installation": {"deep_scans": installation, "fixes": 100, "llm_cost_usd": llm},
            "per_user": {"deep_scans": user, "fixes": 100},
            "per_pull_request": {"deep_scans": pull_request, "fixes": 100},
        }
    )
    return load_pack("default").model_copy(update={"quotas": quotas})


@pytest.fixture
async def accounts(db: Database) -> Database:
    async with db.session() as session:
        session.add(Installation(id=INSTALLATION, account_login="octo"))
        await session.commit()
    return db


async def _reserve(db: Database, pack: Pack, *, user="alice", pr=PR, now=NOW, amount=1.0):
    return await reserve(
        db,
        pack,
        QuotaKind.DEEP_SCAN,
        installation_id=INSTALLATION,
        user=user,
        pull_request=pr,
        now=now,
        amount=amount,
    )


async def _used(db: Database, pack: Pack, *, user="alice", pr=PR, now=NOW) -> UsageSnapshot:
    return await snapshot(
        db,
        pack,
        QuotaKind.DEEP_SCAN,
        installation_id=INSTALLATION,
        user=user,
        pull_request=pr,
        now=now,
    )


@pytest.mark.parametrize(
    ("limits", "scope", "resets_at", "reason"),
    [
        ({"installation": 3}, "installation", NEXT_MONTH, "the installation quota of 3 deep scans"),
        ({"user": 3}, "user", NEXT_MONTH, "the user quota of 3 deep scans is used up"),
        ({"pull_request": 3}, "pull_request", None, "the pull request quota of 3 deep scans"),
    ],
)
async def test_reserves_until_the_limit_then_refuses(accounts, limits, scope, resets_at, reason):
    pack = _pack(**limits)
    decisions = [await _reserve(accounts, pack) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    refused = decisions[-1]
    assert (refused.scope, refused.limit, refused.used, refused.resets_at) == (
        scope,
        3,
        3,
        resets_at,
    )
    assert reason in refused.reason
    assert refused == check_quota(pack, QuotaKind.DEEP_SCAN, await _used(accounts, pack))


async def test_an_allowed_reservation_reports_the_usage_before_it(accounts):
    pack = _pack(user=5)
    await _reserve(accounts, pack)
    decision = await _reserve(accounts, pack)
    assert (decision.allowed, decision.scope, decision.used, decision.limit) == (True, "user", 1, 5)


async def test_a_refusal_changes_nothing(accounts):
    pack = _pack(user=2)
    await _reserve(accounts, pack, pr="octo/app#1")
    await _reserve(accounts, pack, pr="octo/app#2")
    before = await _used(accounts, pack, pr="octo/app#3")
    assert (before.installation, before.user, before.pull_request) == (2, 2, 0)
    # The installation and the new pull request have room; the user has none.
    refused = await _reserve(accounts, pack, pr="octo/app#3")
    assert (refused.allowed, refused.scope) == (False, "user")
    assert await _used(accounts, pack, pr="octo/app#3") == before


async def test_an_amount_that_overflows_names_that_quota_and_counts_nothing(accounts):
    pack = _pack(installation=10, pull_request=4)
    await _reserve(accounts, pack, amount=3)
    # 3 + 2 overflows the pull request's 4 but fits the installation's 10.
    refused = await _reserve(accounts, pack, amount=2)
    assert (refused.allowed, refused.scope, refused.used, refused.limit) == (
        False,
        "pull_request",
        3,
        4,
    )
    assert (await _used(accounts, pack)).installation == 3
    assert (await _reserve(accounts, pack, amount=1)).allowed  # exactly to the limit


async def test_release_gives_a_reservation_back(accounts):
    pack = _pack(pull_request=2)
    await _reserve(accounts, pack)
    await _reserve(accounts, pack)
    assert not (await _reserve(accounts, pack)).allowed
    await release(
        accounts,
        pack,
        QuotaKind.DEEP_SCAN,
        installation_id=INSTALLATION,
        user="alice",
        pull_request=PR,
        now=NOW,
    )
    assert await _used(accounts, pack) == UsageSnapshot(NOW, installation=1, user=1, pull_request=1)
    assert (await _reserve(accounts, pack)).allowed


async def test_release_never_goes_below_zero(accounts):
    pack = _pack()
    await _reserve(accounts, pack)
    for kind, amount in [(QuotaKind.DEEP_SCAN, 5.0), (QuotaKind.FIX, 1.0)]:  # FIX: no rows at all
        await release(
            accounts,
            pack,
            kind,
            installation_id=INSTALLATION,
            user="alice",
            pull_request=PR,
            now=NOW,
            amount=amount,
        )
    assert await _used(accounts, pack) == UsageSnapshot(NOW)


async def test_a_new_period_starts_from_zero_but_a_pull_request_never_resets(accounts):
    pack = _pack(user=1, pull_request=2)
    assert (await _reserve(accounts, pack, pr="octo/app#1")).allowed
    assert not (await _reserve(accounts, pack, pr="octo/app#2")).allowed  # the user's month
    assert (await _reserve(accounts, pack, pr="octo/app#2", now=NEXT_MONTH)).allowed
    march = NEXT_MONTH.replace(month=3)
    assert (await _reserve(accounts, pack, pr="octo/app#1", now=march)).allowed
    refused = await _reserve(accounts, pack, pr="octo/app#1", now=datetime(2026, 6, 1, tzinfo=UTC))
    assert (refused.allowed, refused.scope, refused.used) == (False, "pull_request", 2)
    january = await _used(accounts, pack, pr="octo/app#1")
    june = await _used(accounts, pack, pr="octo/app#1", now=datetime(2026, 6, 1, tzinfo=UTC))
    assert (january.installation, january.user, january.pull_request) == (1, 1, 2)
    assert (june.installation, june.user, june.pull_request) == (0, 0, 2)


async def test_logins_and_repositories_count_whatever_their_case(accounts):
    pack = _pack(user=1)
    await _reserve(accounts, pack, user="Alice", pr="Octo/App#12")
    assert (await _used(accounts, pack, user="alice", pr="octo/app#12")).pull_request == 1
    assert not (await _reserve(accounts, pack, user="ALICE")).allowed


async def test_llm_cost_is_counted_for_the_installation_only(accounts):
    pack = _pack(llm=1.0)
    assert await add_cost(accounts, pack, INSTALLATION, 0.25, NOW) == 0.25
    assert await add_cost(accounts, pack, INSTALLATION, 0.5, NOW) == 0.75
    assert await add_cost(accounts, pack, INSTALLATION, 0.1, NEXT_MONTH) == pytest.approx(0.1)
    used = await snapshot(
        accounts,
        pack,
        QuotaKind.LLM_COST,
        installation_id=INSTALLATION,
        user="",
        pull_request="",
        now=NOW,
    )
    assert used == UsageSnapshot(NOW, installation=0.75)
    over = await reserve(
        accounts,
        pack,
        QuotaKind.LLM_COST,
        installation_id=INSTALLATION,
        user="",
        pull_request="",
        now=NOW,
        amount=0.5,
    )
    assert (over.allowed, over.scope, over.used, over.limit) == (False, "installation", 0.75, 1.0)


@pytest.mark.parametrize(
    "call",
    [
        lambda db, pack: _reserve(db, pack, now=datetime(2025, 1, 1)),
        lambda db, pack: _reserve(db, pack, amount=0),
        lambda db, pack: _reserve(db, pack, amount=float("nan")),
        lambda db, pack: _reserve(db, pack, user=""),
        lambda db, pack: add_cost(db, pack, INSTALLATION, -1.0, NOW),
    ],
)
async def test_misuse_is_refused_before_anything_is_counted(accounts, call):
    pack = _pack()
    with pytest.raises(ValueError):
        await call(accounts, pack)
    assert await _used(accounts, pack) == UsageSnapshot(NOW)


# On SQLite too: each reservation's first statement is a write, which takes the
# database's one write lock until commit; the others wait in the busy timeout (5 s).
async def test_concurrent_reservations_never_exceed_the_limit(accounts):
    pack = _pack(installation=10)
    decisions = await asyncio.gather(
        *(_reserve(accounts, pack, user=f"user{i % 7}", pr=f"octo/app#{i % 5}") for i in range(50))
    )
    assert sum(d.allowed for d in decisions) == 10
    refused = [d for d in decisions if not d.allowed]
    assert {(d.scope, d.used) for d in refused} == {("installation", 10)}
    assert (await _used(accounts, pack, user="user0", pr="octo/app#0")).installation == 10


async def test_concurrent_reservations_of_one_pull_request(accounts):
    pack = _pack(pull_request=10)
    decisions = await asyncio.gather(*(_reserve(accounts, pack, user=f"u{i}") for i in range(50)))
    assert sum(d.allowed for d in decisions) == 10
    used = await _used(accounts, pack)
    assert (used.installation, used.pull_request) == (10, 10)
