"""The records the stand-in keeps: what GitHub would store for the operations the bot uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from .gitstore import GitRepo

PERMISSION_LEVELS = {"read": 1, "write": 2, "admin": 3}
# the collaborator endpoint reports these roles with a coarser permission
ROLE_PERMISSIONS = {
    "admin": "admin",
    "maintain": "write",
    "write": "write",
    "triage": "read",
    "read": "read",
    "none": "none",
}


class AuthKind(StrEnum):
    """The credential a request presented."""

    NONE = "none"
    JWT = "jwt"
    TOKEN = "token"


@dataclass
class App:
    """The GitHub App the hub serves: identity, key for its JWTs, permissions."""

    id: int
    client_id: str
    slug: str
    name: str
    owner_login: str
    # the loaded key, not PEM text: parsing an RSA key costs milliseconds per request
    public_key: RSAPublicKey = field(repr=False)
    permissions: dict[str, str]
    events: list[str]
    created_at: datetime

    @property
    def bot_login(self) -> str:
        return f"{self.slug}[bot]"


@dataclass
class Installation:
    """The App installed on an account, on all or selected repositories."""

    id: int
    account_login: str
    account_id: int
    account_type: str
    permissions: dict[str, str]
    # None: every repository of the account ("all"); otherwise the selected ids
    repository_ids: list[int] | None
    events: list[str]
    created_at: datetime
    suspended_at: datetime | None = None

    @property
    def repository_selection(self) -> str:
        return "all" if self.repository_ids is None else "selected"


@dataclass
class Repository:
    """A repository and its git data; forks share their parent's objects."""

    id: int
    owner: str
    owner_id: int
    name: str
    default_branch: str
    private: bool
    git: GitRepo
    created_at: datetime
    pushed_at: datetime
    fork_of: str | None = None
    next_number: int = 1

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class PullRequest:
    """A pull request; its head sha is read live from the head branch."""

    id: int
    number: int
    repo: str
    head_repo: str
    head_ref: str
    base_ref: str
    title: str
    body: str | None
    user: str
    draft: bool
    created_at: datetime
    updated_at: datetime
    state: str = "open"
    closed_at: datetime | None = None
    merged_at: datetime | None = None
    # the head's tip when its branch was deleted (GitHub keeps showing it)
    last_head_sha: str | None = None
    reviews: list[Review] = field(default_factory=list)

    @property
    def is_fork(self) -> bool:
        return self.head_repo != self.repo


@dataclass
class CheckRun:
    """A check run, with every annotation its requests appended."""

    id: int
    repo: str
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    started_at: datetime | None
    completed_at: datetime | None
    details_url: str | None
    external_id: str | None
    check_suite_id: int
    output: dict[str, Any] = field(default_factory=dict)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ReviewComment:
    """A line comment of a review: `start_line`..`line` of `path` on one side of the diff."""

    path: str
    body: str
    line: int
    side: str = "RIGHT"
    start_line: int | None = None


@dataclass
class Review:
    """A submitted pull request review and its line comments."""

    id: int
    event: str
    body: str
    user: str
    commit_id: str
    submitted_at: datetime
    comments: list[ReviewComment] = field(default_factory=list)


@dataclass
class Comment:
    """An issue comment on a pull request."""

    id: int
    repo: str
    issue_number: int
    body: str
    user: str
    user_type: str
    created_at: datetime
    updated_at: datetime
    via_app: bool = False


@dataclass
class Reaction:
    """A reaction to an issue comment."""

    id: int
    comment_id: int
    content: str
    user: str
    user_type: str
    created_at: datetime


@dataclass
class Token:
    """An installation access token; `value` is never logged or shown in a repr."""

    value: str = field(repr=False)
    installation_id: int
    expires_at: datetime
    permissions: dict[str, str]
    # None: every repository the installation covers
    repository_ids: list[int] | None


@dataclass
class Delivery:
    """One webhook delivery attempt, for `/app/hook/deliveries`."""

    id: int
    guid: str
    event: str
    action: str | None
    installation_id: int | None
    repository_id: int | None
    url: str
    redelivery: bool
    delivered_at: datetime
    request_headers: dict[str, str]
    body: bytes
    status_code: int = 0
    duration: float = 0.0
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""
    error: str | None = None

    @property
    def status(self) -> str:
        if self.error:
            return self.error
        if self.status_code == 0:
            return "Pending"
        if 200 <= self.status_code < 300:
            return "OK"
        return f"Invalid HTTP Response: {self.status_code}"


@dataclass(frozen=True)
class CallRecord:
    """One request the stand-in answered, for tests to assert what the bot did."""

    method: str
    path: str
    operation_id: str | None
    status: int
    request_json: Any
    auth_kind: AuthKind
    query: dict[str, str]
    injected: bool = False


@dataclass
class Fault:
    """An injected answer, served instead of the real one `remaining` more times.

    `applied`: the request is carried out all the same, as when GitHub acts and its
    gateway then answers 502, so the caller cannot tell that it worked.
    """

    operation_id: str | None
    status: int
    remaining: int
    headers: dict[str, str]
    body: Any
    applied: bool = False
