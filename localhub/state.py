"""`Hub`: the stand-in's in-memory GitHub, plus the helpers tests use to arrange and inspect it.

One lock guards everything: the server thread answers requests while the test thread
arranges state and reads what the bot did.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Mapping
from datetime import datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt import api_jws as jws

from . import events
from .clock import utcnow
from .faults import HubFaults
from .gitstore import FILE_MODE, Entry, GitRepo, signature
from .manifests import PendingManifest
from .models import (
    ROLE_PERMISSIONS,
    App,
    CallRecord,
    CheckRun,
    Comment,
    Delivery,
    Fault,
    Installation,
    PullRequest,
    Reaction,
    Repository,
    Token,
)
from .reads import HubReads

DEFAULT_APP_PERMISSIONS = {
    "checks": "write",
    "contents": "write",
    "issues": "write",
    "metadata": "read",
    "pull_requests": "write",
}
DEFAULT_EVENTS = ["check_run", "check_suite", "issue_comment", "pull_request", "push"]


class Hub(HubReads, HubFaults):
    """In-memory GitHub state for one App, its installations and their repositories."""

    def __init__(
        self,
        *,
        app_id: int = 1001,
        client_id: str = "Iv1.localhub0000000001",
        slug: str = "clarity-check",
        name: str = "Clarity Check",
        private_key_pem: bytes | str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if private_key_pem is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            private_key_pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        if isinstance(private_key_pem, str):
            private_key_pem = private_key_pem.encode()
        self.private_key_pem = private_key_pem
        self._private_key = serialization.load_pem_private_key(private_key_pem, None)
        public = self._private_key.public_key()
        self.clock = clock
        self.app = App(
            id=app_id,
            client_id=client_id,
            slug=slug,
            name=name,
            owner_login="clarity-check-dev",
            public_key=public,
            permissions=dict(DEFAULT_APP_PERMISSIONS),
            events=list(DEFAULT_EVENTS),
            created_at=clock(),
        )
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.base_url = "https://api.github.com"
        self.lock = threading.RLock()
        self._changed = threading.Condition(self.lock)
        self.reset()

    def reset(self) -> None:
        """Forget everything but the App itself: a clean GitHub for the next test."""
        with self.lock:
            self._ids = itertools.count(1000)
            self.installations: dict[int, Installation] = {}
            self.repositories: dict[str, Repository] = {}
            self.pulls: dict[tuple[str, int], PullRequest] = {}
            self.check_run_records: dict[int, CheckRun] = {}
            self.check_suites: dict[tuple[str, str], int] = {}
            self.comment_records: dict[int, Comment] = {}
            self.reaction_records: list[Reaction] = []
            self.collaborators: dict[tuple[str, str], str] = {}
            self.users: dict[str, int] = {}
            self.tokens: dict[str, Token] = {}
            self.deliveries: list[Delivery] = []
            self.calls: list[CallRecord] = []
            self.faults: list[Fault] = []
            self.rate_usage: dict[str, tuple[int, int]] = {}
            self.archive_tickets: dict[str, tuple[str, datetime]] = {}
            # manifest-flow codes (`manifests.py`), each converted at most once
            self.manifest_codes: dict[str, PendingManifest] = {}

    # ids and clock -----------------------------------------------------
    def next_id(self) -> int:
        """A fresh id; ids are unique across every kind of object."""
        with self.lock:
            return next(self._ids)

    def now(self) -> datetime:
        """The hub's clock (tests may replace `clock`)."""
        return self.clock()

    def user_id(self, login: str) -> int:
        """A stable numeric id for a login (GitHub ids never change)."""
        with self.lock:
            return self.users.setdefault(login.lower(), self.next_id())

    # arranging ---------------------------------------------------------
    def add_installation(
        self,
        account: str = "octo-org",
        *,
        installation_id: int | None = None,
        permissions: Mapping[str, str] | None = None,
        repositories: list[str] | None = None,
        account_type: str = "Organization",
        suspended: bool = False,
    ) -> Installation:
        """Install the App on an account, on all its repositories or on `repositories` (names)."""
        with self.lock:
            inst = Installation(
                id=installation_id or self.next_id(),
                account_login=account,
                account_id=self.user_id(account),
                account_type=account_type,
                permissions=dict(permissions or self.app.permissions),
                repository_ids=None,
                events=list(self.app.events),
                created_at=self.now(),
                suspended_at=self.now() if suspended else None,
            )
            if repositories is not None:
                inst.repository_ids = [self.repository(f"{account}/{n}").id for n in repositories]
            self.installations[inst.id] = inst
            self._changed.notify_all()
            return inst

    def add_repository(
        self,
        owner: str,
        name: str,
        files: Mapping[str, bytes | str] | None = None,
        *,
        default_branch: str = "main",
        private: bool = True,
        fork_of: str | None = None,
        installation_id: int | None = None,
        message: str = "Initial commit",
    ) -> Repository:
        """Create a repository with one commit holding `files` on its default branch.

        A fork shares its parent's objects and starts at the parent's default branch.
        """
        with self.lock:
            parent = self.repository(fork_of) if fork_of else None
            repo = Repository(
                id=self.next_id(),
                owner=owner,
                owner_id=self.user_id(owner),
                name=name,
                default_branch=default_branch,
                private=private,
                git=GitRepo(parent.git.objects if parent else None),
                created_at=self.now(),
                pushed_at=self.now(),
                fork_of=parent.full_name if parent else None,
            )
            self.repositories[repo.full_name.lower()] = repo
            if parent:
                repo.git.refs[f"refs/heads/{default_branch}"] = parent.git.resolve(
                    parent.default_branch
                )
            if files or not parent:
                self.commit_files(repo.full_name, default_branch, files or {}, message)
            if installation_id is not None:
                inst = self.installations[installation_id]
                if inst.repository_ids is not None:
                    inst.repository_ids.append(repo.id)
            return repo

    def commit_files(
        self,
        repo: str,
        branch: str,
        files: Mapping[str, bytes | str | None],
        message: str = "Update files",
        *,
        author: str = "octocat",
        base: str | None = None,
    ) -> str:
        """Commit `files` (None deletes a path) on `branch` and return the new sha.

        A missing branch starts from `base` (a branch, tag or sha; the default branch
        unless given).
        """
        with self.lock:
            r = self.repository(repo)
            ref = f"refs/heads/{branch}"
            parent = r.git.refs.get(ref) or r.git.resolve(base or r.default_branch)
            current = r.git.files_at(parent) if parent else {}
            for path, content in files.items():
                if content is None:
                    current.pop(path, None)
                else:
                    data = content.encode() if isinstance(content, str) else content
                    current[path] = Entry(FILE_MODE, "blob", r.git.objects.put_blob(data))
            sig = signature(author, f"{author}@users.noreply.github.com", self.now())
            tree = r.git.build_tree(current)
            sha = r.git.objects.put_commit(tree, (parent,) if parent else (), message, sig, sig)
            r.git.refs[ref] = sha
            r.pushed_at = self.now()
            self._changed.notify_all()
            return sha

    def open_pull_request(
        self,
        repo: str,
        head_branch: str,
        base_branch: str | None = None,
        *,
        title: str = "Update",
        body: str | None = None,
        user: str = "octocat",
        head_repo: str | None = None,
        draft: bool = False,
    ) -> PullRequest:
        """Open a pull request; `head_repo` names a fork holding `head_branch`."""
        with self.lock:
            base = self.repository(repo)
            head = self.repository(head_repo or repo)
            if head.git.resolve(f"refs/heads/{head_branch}") is None:
                raise KeyError(f"no branch {head_branch} in {head.full_name}")
            pr = PullRequest(
                id=self.next_id(),
                number=self._next_number(base),
                repo=base.full_name,
                head_repo=head.full_name,
                head_ref=head_branch,
                base_ref=base_branch or base.default_branch,
                title=title,
                body=body,
                user=user,
                draft=draft,
                created_at=self.now(),
                updated_at=self.now(),
            )
            self.user_id(user)
            self.pulls[(base.full_name.lower(), pr.number)] = pr
            self._changed.notify_all()
            return pr

    def close_pull_request(self, repo: str, number: int, *, merged: bool = False) -> PullRequest:
        """Close a pull request, merged or not (branches stay as they are)."""
        with self.lock:
            pr, now = self.pull_request(repo, number), self.now()
            pr.state, pr.closed_at, pr.updated_at = "closed", now, now
            pr.merged_at = now if merged else None
            self._changed.notify_all()
            return pr

    def add_comment(
        self, repo: str, number: int, body: str, *, user: str = "octocat", user_type: str = "User"
    ) -> Comment:
        """A comment written by a person (or another bot) on an issue or pull request."""
        with self.lock:
            now = self.now()
            comment = Comment(
                self.next_id(),
                self.repository(repo).full_name,
                number,
                body,
                user,
                user_type,
                now,
                now,
            )
            self.user_id(user)
            self.comment_records[comment.id] = comment
            self._changed.notify_all()
            return comment

    def set_permission(self, repo: str, user: str, level: str) -> None:
        """Give `user` a role on `repo`: admin, maintain, write, triage, read or none."""
        if level not in ROLE_PERMISSIONS:
            raise ValueError(f"unknown role {level!r}")
        with self.lock:
            self.user_id(user)
            self.collaborators[(self.repository(repo).full_name.lower(), user.lower())] = level

    def app_jwt(
        self,
        *,
        iat: int | None = None,
        exp: int | None = None,
        iss: int | str | None = None,
        key: bytes | str | None = None,
    ) -> str:
        """An App JWT like `gidgethub.apps.get_jwt` makes (iat 60 s back, 10 min lifetime)."""
        issued = int(self.now().timestamp()) - 60 if iat is None else iat
        claims = {
            "iat": issued,
            "exp": issued + 600 if exp is None else exp,
            "iss": str(self.app.id) if iss is None else iss,
        }
        # signed as raw JWS so an integer `iss` (which PyJWT refuses to encode) can be tested too
        return jws.encode(
            json.dumps(claims).encode(),
            key or self._private_key,
            algorithm="RS256",
            headers={"typ": "JWT"},
        )

    # webhook payloads built from this state -----------------------------
    def pull_request_event(
        self, repo: str, number: int, action: str = "opened", *, before: str | None = None
    ) -> events.Event:
        """`pull_request.<action>` for a hub pull request."""
        return events.pull_request_event(self, repo, number, action, before)

    def issue_comment_event(self, comment: Comment, action: str = "created") -> events.Event:
        """`issue_comment.<action>` for a comment on a hub pull request."""
        return events.issue_comment_event(self, comment, action)

    def installation_event(self, installation_id: int, action: str = "created") -> events.Event:
        """`installation.<action>` listing the repositories the installation covers."""
        return events.installation_event(self, installation_id, action)

    def push_event(
        self, repo: str, branch: str, before: str, after: str | None = None
    ) -> events.Event:
        """`push` of `branch` from `before` to `after` (default: the branch tip)."""
        return events.push_event(self, repo, branch, before, after)

    async def deliver(
        self, event: events.Event, *, url: str | None = None, guid: str | None = None
    ) -> Delivery:
        """Sign and POST an event to the App's webhook URL, recording the delivery."""
        return await events.deliver(self, event, url=url, guid=guid)

    def _next_number(self, repo: Repository) -> int:
        number = repo.next_number
        repo.next_number += 1
        return number
