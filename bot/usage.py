"""Usage accounting: the quotas of `policies.quotas` counted atomically in the database.

Each scope a kind of quota applies to (the installation and the user for the period,
the pull request for ever) is one `Usage` row, changed only by an increment in SQL.
`reserve` increments all of them in one transaction and rolls back if any went over
its limit, so concurrent requests cannot both take the last unit: on PostgreSQL the
upsert locks each row until the transaction ends, and SQLite runs one writer at a time.
Rows are always touched in the same order (installation, user, pull request), so two
reservations never wait on each other in a cycle.
"""

from __future__ import annotations

import math
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from bot.db import Database
from bot.models import Usage, utcnow
from policies.pack import Pack
from policies.quotas import QuotaDecision, QuotaKind, UsageSnapshot, check_quota, quota_period

# The period of a pull request's quota, which never resets.
FOREVER = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _Row:
    """The key of one scope's usage row."""

    scope: str  # "installation", "user" or "pull_request", as in UsageSnapshot
    subject: str
    period_start: datetime


def pull_request_subject(repository: str, number: int) -> str:
    """The subject of a pull request's usage: `owner/repo#12`."""
    return f"{repository}#{number}"


async def reserve(
    db: Database,
    pack: Pack,
    kind: QuotaKind | str,
    *,
    installation_id: int,
    user: str,
    pull_request: str,
    now: datetime,
    amount: float = 1.0,
) -> QuotaDecision:
    """Count `amount` of `kind` against every quota that applies, or against none.

    Refused when any scope would go over its limit; nothing is then counted. The
    decision's `used` is the usage before this reservation. Give it back with `release`
    (same arguments, same `now`) if the build does not run after all.
    """
    kind = QuotaKind(kind)
    _positive(amount)
    rows = _rows(pack, kind, user, pull_request, now)
    limits = _limits(pack, kind)
    with suppress(_Overdrawn):
        async with db.engine.begin() as connection:
            after = {
                row.scope: await _add(connection, installation_id, kind, row, amount)
                for row in rows
            }
            over = {scope for scope, used in after.items() if used > limits[scope]}
            if over:
                raise _Overdrawn  # leaving the block rolls every increment back
    before = {scope: used - amount for scope, used in after.items()}
    if over:
        return _refusal(pack, kind, now, before, over)
    return check_quota(pack, kind, UsageSnapshot(now, **before))


class _Overdrawn(Exception):
    """A reservation went over a limit: raised to roll its transaction back."""


async def release(
    db: Database,
    pack: Pack,
    kind: QuotaKind | str,
    *,
    installation_id: int,
    user: str,
    pull_request: str,
    now: datetime,
    amount: float = 1.0,
) -> None:
    """Give back a reservation (e.g. the build was a duplicate); usage never goes below 0.

    Pass the `now` the reservation was made with, so the period it was counted in is the
    one given back to.
    """
    kind = QuotaKind(kind)
    _positive(amount)
    async with db.engine.begin() as connection:
        for row in _rows(pack, kind, user, pull_request, now):
            remaining = case((col(Usage.amount) > amount, col(Usage.amount) - amount), else_=0.0)
            await connection.execute(
                update(Usage)
                .where(*_matches(installation_id, kind, row))
                .values(amount=remaining, updated_at=utcnow())
            )


async def add_cost(
    db: Database, pack: Pack, installation_id: int, usd: float, now: datetime
) -> float:
    """Count LLM spend (after a build) against the installation's period; the new total."""
    if not math.isfinite(usd) or usd < 0:
        raise ValueError(f"a cost must be finite and not negative: {usd!r}")
    row = _Row("installation", "", quota_period(pack, now)[0])
    async with db.engine.begin() as connection:
        return await _add(connection, installation_id, QuotaKind.LLM_COST, row, usd)


async def snapshot(
    db: Database,
    pack: Pack,
    kind: QuotaKind | str,
    *,
    installation_id: int,
    user: str,
    pull_request: str,
    now: datetime,
) -> UsageSnapshot:
    """Usage of `kind` so far, for `check_quota` or to show: 0 where nothing was counted."""
    kind = QuotaKind(kind)
    used: dict[str, float] = {}
    async with db.engine.connect() as connection:
        for row in _rows(pack, kind, user, pull_request, now):
            result = await connection.execute(
                select(col(Usage.amount)).where(*_matches(installation_id, kind, row))
            )
            used[row.scope] = result.scalar_one_or_none() or 0.0
    return UsageSnapshot(now, **used)


def _rows(pack: Pack, kind: QuotaKind, user: str, pull_request: str, now: datetime) -> list[_Row]:
    """The usage rows a kind counts in, in the order they are always locked."""
    period_start, _ = quota_period(pack, now)  # also refuses a naive `now`
    rows = [_Row("installation", "", period_start)]
    if kind is not QuotaKind.LLM_COST:
        if not user or not pull_request:
            raise ValueError(f"{kind.value} are counted per user and per pull request: name both")
        # GitHub logins and repository names are case-insensitive.
        rows.append(_Row("user", user.lower(), period_start))
        rows.append(_Row("pull_request", pull_request.lower(), FOREVER))
    return rows


def _matches(installation_id: int, kind: QuotaKind, row: _Row) -> tuple[Any, ...]:
    return (
        col(Usage.installation_id) == installation_id,
        col(Usage.scope) == row.scope,
        col(Usage.subject) == row.subject,
        col(Usage.kind) == kind.value,
        col(Usage.period_start) == row.period_start,
    )


async def _add(
    connection: AsyncConnection, installation_id: int, kind: QuotaKind, row: _Row, amount: float
) -> float:
    """Add `amount` to one row, creating it at `amount`; the row's new total."""
    insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
    statement = insert(Usage).values(
        installation_id=installation_id,
        scope=row.scope,
        subject=row.subject,
        kind=kind.value,
        period_start=row.period_start,
        amount=amount,
        updated_at=utcnow(),
    )
    statement = statement.on_conflict_do_update(
        index_elements=["installation_id", "scope", "subject", "kind", "period_start"],
        set_={
            "amount": col(Usage.amount) + statement.excluded.amount,
            "updated_at": statement.excluded.updated_at,
        },
    ).returning(col(Usage.amount))
    return (await connection.execute(statement)).scalar_one()


def _limits(pack: Pack, kind: QuotaKind) -> dict[str, float]:
    quotas = pack.quotas
    limits = {"installation": getattr(quotas.installation, kind.value)}
    if kind is not QuotaKind.LLM_COST:
        limits["user"] = getattr(quotas.per_user, kind.value)
        limits["pull_request"] = getattr(quotas.per_pull_request, kind.value)
    return limits


def _refusal(
    pack: Pack, kind: QuotaKind, now: datetime, before: dict[str, float], over: set[str]
) -> QuotaDecision:
    """check_quota's refusal for the first scope (in its order) this reservation overflows."""
    # Only the overflowing scopes are shown as used up, so check_quota names one of them
    # (with its limit, reset time and reason), not a scope this reservation fills exactly.
    used_up = UsageSnapshot(now, **{scope: math.inf if scope in over else 0.0 for scope in before})
    decision = check_quota(pack, kind, used_up)
    return replace(decision, used=before[decision.scope])


def _positive(amount: float) -> None:
    if not math.isfinite(amount) or amount <= 0:
        raise ValueError(f"an amount to reserve must be finite and positive: {amount!r}")
