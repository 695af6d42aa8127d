"""The service's tables (SQLModel). Schema changes go through Alembic migrations.

This module is the shared data layer: it imports nothing else from the service,
so handlers and the orchestrator may use it without depending on the web edge.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, ForeignKey, LargeBinary, UniqueConstraint
from sqlalchemy import Enum as SAEnum
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def _enum(enum: type[StrEnum]) -> Any:
    # Stored as the value's text: adding a member later needs no database type change.
    return SAEnum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda members: [member.value for member in members],
    )


def _fk(target: str, *, nullable: bool = False, index: bool = True) -> Any:
    # GitHub ids exceed 32 bits; deleting a parent removes its children.
    return Field(
        default=None,
        sa_column=Column(
            BigInteger, ForeignKey(target, ondelete="CASCADE"), nullable=nullable, index=index
        ),
    )


class DeliveryStatus(StrEnum):
    RECEIVED = "received"
    PROCESSED = "processed"
    FAILED = "failed"


class BuildTier(StrEnum):
    SCAN = "scan"
    DEEP_SCAN = "deep_scan"
    FIX = "fix"


class BuildMode(StrEnum):
    DETERMINISTIC = "deterministic"
    AUTONOMOUS = "autonomous"


class BuildStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    BLOCKED = "blocked"


class Installation(SQLModel, table=True):
    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    account_login: str
    account_type: str = "User"
    repository_selection: str = "all"
    suspended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Repository(SQLModel, table=True):
    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    installation_id: int = _fk("installation.id")
    full_name: str = Field(index=True)
    private: bool = False
    default_branch: str | None = None


class Delivery(SQLModel, table=True):
    """The inbox: one row per accepted webhook delivery."""

    id: str = Field(primary_key=True, max_length=64)  # X-GitHub-Delivery GUID
    event: str = Field(max_length=64)
    action: str | None = Field(default=None, max_length=64)
    installation_id: int | None = Field(default=None, sa_type=BigInteger, index=True)
    # sha256 of the signed body: the replay check.
    nonce: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    body: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    status: DeliveryStatus = Field(
        default=DeliveryStatus.RECEIVED, sa_type=_enum(DeliveryStatus), index=True
    )
    error: str | None = None
    attempts: int = 0
    event_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Build(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    installation_id: int = _fk("installation.id")
    repository_id: int = _fk("repository.id")
    tier: BuildTier = Field(sa_type=_enum(BuildTier))
    mode: BuildMode = Field(default=BuildMode.DETERMINISTIC, sa_type=_enum(BuildMode))
    status: BuildStatus = Field(default=BuildStatus.QUEUED, sa_type=_enum(BuildStatus), index=True)
    head_sha: str = Field(max_length=40)
    pr_number: int | None = None
    check_run_id: int | None = Field(default=None, sa_type=BigInteger)
    trigger: str
    requester: str | None = None
    delivery_id: str | None = Field(default=None, max_length=64)
    fallback_scan_mode: BuildMode | None = Field(default=None, sa_type=_enum(BuildMode))
    # The DAG this build runs, as data: replanning and fallback change it, resuming reads it.
    dag_name: str = Field(default="", max_length=200)
    dag_spec: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    budget_usd: float | None = None
    cost_usd: float = 0.0
    fencing_token: int = 0
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Task(SQLModel, table=True):
    """One node of a build's DAG; a finished task is a checkpoint."""

    __table_args__ = (UniqueConstraint("build_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    build_id: int = Field(sa_column=Column(ForeignKey("build.id", ondelete="CASCADE"), index=True))
    key: str = Field(max_length=128)
    deps: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: TaskStatus = Field(default=TaskStatus.PENDING, sa_type=_enum(TaskStatus))
    attempts: int = 0
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    error: str | None = None
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class BuildEvent(SQLModel, table=True):
    """Append-only log of a build's state changes, ordered by `seq` per build."""

    __table_args__ = (UniqueConstraint("build_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    build_id: int = Field(sa_column=Column(ForeignKey("build.id", ondelete="CASCADE"), index=True))
    seq: int
    type: str = Field(max_length=64)
    task_key: str | None = Field(default=None, max_length=128)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ApiToken(SQLModel, table=True):
    """An operator credential for `/v1`; only its sha256 is stored."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PullRequest(SQLModel, table=True):
    """What we know of a pull request, and GitHub's id of our one comment on it."""

    __table_args__ = (UniqueConstraint("repository_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    repository_id: int = _fk("repository.id")
    number: int
    head_sha: str = Field(max_length=40)
    head_ref: str = ""
    base_ref: str = ""
    from_fork: bool = False
    draft: bool = False
    open: bool = True
    comment_id: int | None = Field(default=None, sa_type=BigInteger)
    report_comment_id: int | None = Field(default=None, sa_type=BigInteger)  # the deep scan's
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CheckRun(SQLModel, table=True):
    """GitHub's check run for one commit: created once, then only updated."""

    __table_args__ = (UniqueConstraint("repository_id", "head_sha", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    repository_id: int = _fk("repository.id")
    head_sha: str = Field(max_length=40)
    name: str = Field(max_length=100)
    github_id: int | None = Field(default=None, sa_type=BigInteger)
    build_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Secret(SQLModel, table=True):
    """An installation's secret (e.g. its LLM key), encrypted at rest with the service's keys."""

    __table_args__ = (UniqueConstraint("installation_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    installation_id: int = _fk("installation.id")
    name: str = Field(max_length=100)
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    key_id: str = Field(max_length=16)  # which encryption key sealed it, for rotation
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Usage(SQLModel, table=True):
    """How much of one quota kind a scope used in one period; changed only by atomic increments."""

    __table_args__ = (
        UniqueConstraint("installation_id", "scope", "subject", "kind", "period_start"),
    )
    id: int | None = Field(default=None, primary_key=True)
    installation_id: int = _fk("installation.id")
    scope: str = Field(max_length=32)  # installation | user | pull_request
    subject: str = Field(default="", max_length=200)  # the user's login, or "repository#number"
    kind: str = Field(max_length=32)  # a policies.quotas.QuotaKind value
    period_start: datetime = Field(sa_type=UTCDateTime)
    amount: float = 0.0
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class QuoteStatus(StrEnum):
    PENDING = "pending"  # waiting for `/clarity deep-scan confirm`
    CONFIRMED = "confirmed"
    EXPIRED = "expired"


class Quote(SQLModel, table=True):
    """An estimate given before an expensive build; above the threshold it waits for a confirm."""

    id: int | None = Field(default=None, primary_key=True)
    installation_id: int = _fk("installation.id")
    repository_id: int = _fk("repository.id")
    pr_number: int
    head_sha: str = Field(max_length=40)
    requester: str = Field(max_length=100)
    comment_id: int = Field(sa_type=BigInteger, sa_column_kwargs={"unique": True})
    tier: BuildTier = Field(sa_type=_enum(BuildTier))
    status: QuoteStatus = Field(default=QuoteStatus.PENDING, sa_type=_enum(QuoteStatus))
    estimate: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    build_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class Trajectory(SQLModel, table=True):
    """One agent run of a build's node: its events, tool calls and outputs, cost and end state."""

    id: int | None = Field(default=None, primary_key=True)
    build_id: int = Field(sa_column=Column(ForeignKey("build.id", ondelete="CASCADE"), index=True))
    task_key: str = Field(max_length=128)
    role: str = Field(max_length=32)
    attempt: int = 1
    model: str = Field(default="", max_length=200)
    status: str = Field(
        max_length=32
    )  # finished | invalid | budget | iterations | stuck | error ...
    iterations: int = 0
    cost_usd: float = 0.0
    duration_seconds: float = 0.0
    error: str | None = None
    events: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class FixOutcome(StrEnum):
    WORKING = "working"  # the fix build is running
    AWAITING_APPROVAL = "awaiting_approval"  # gates passed; the pack wants a human's approve
    OPENED = "opened"  # a fix pull request (or suggestions on a fork) was published
    REFUSED = "refused"  # every attempt failed a gate: no pull request, an explanation
    MERGED = "merged"
    IGNORED = "ignored"  # the fix pull request was closed unmerged
    RESOLVED = "resolved"  # the finding went away by itself; the fix pull request was closed
    HUMAN_EDITED = "human_edited"  # someone committed on the fix branch: hands off


class FixAttempt(SQLModel, table=True):
    """One finding's fix on one pull request: its attempts, gate evidence and outcome."""

    __table_args__ = (UniqueConstraint("repository_id", "pr_number", "fingerprint"),)
    id: int | None = Field(default=None, primary_key=True)
    installation_id: int = _fk("installation.id")
    repository_id: int = _fk("repository.id")
    pr_number: int
    fingerprint: str = Field(max_length=64)  # the finding's stable fingerprint
    rule_id: str = Field(max_length=100, index=True)
    build_id: int | None = None  # the latest fix build
    branch: str | None = Field(default=None, max_length=250)
    fix_pr_number: int | None = None
    commit_sha: str | None = Field(default=None, max_length=40)  # our latest commit on the branch
    attempts: int = 0
    gate_results: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    diff_hash: str | None = Field(default=None, max_length=64)
    outcome: FixOutcome = Field(default=FixOutcome.WORKING, sa_type=_enum(FixOutcome), index=True)
    reason: str | None = None
    requester: str | None = Field(default=None, max_length=100)
    approved_by: str | None = Field(default=None, max_length=100)  # the human checkpoint
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OutboundStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"  # the dead letter: no more attempts, `last_error` says why


class WebhookSubscription(SQLModel, table=True):
    """A URL an installation wants told when its builds finish; its signing secret is a `Secret`."""

    id: int | None = Field(default=None, primary_key=True)
    installation_id: int = _fk("installation.id")
    url: str = Field(max_length=2000)
    secret_name: str = Field(max_length=100)  # the installation `Secret` holding its signing key
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OutboundDelivery(SQLModel, table=True):
    """One event for one subscriber, and how sending it went."""

    __table_args__ = (UniqueConstraint("subscription_id", "build_id", "event"),)
    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(
        sa_column=Column(
            ForeignKey("webhooksubscription.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    build_id: int = Field(
        sa_column=Column(ForeignKey("build.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    event: str = Field(max_length=64)
    body: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    status: OutboundStatus = Field(
        default=OutboundStatus.PENDING, sa_type=_enum(OutboundStatus), index=True
    )
    last_error: str | None = None  # a status code or an error's class, never a URL or a secret
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
