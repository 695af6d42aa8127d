"""The read side of `Hub`: what tests (and handlers) ask of the stand-in's state."""

from __future__ import annotations

import threading
from collections.abc import Callable

from .models import (
    CallRecord,
    CheckRun,
    Comment,
    Installation,
    PullRequest,
    Reaction,
    Repository,
    Review,
)


class HubReads:
    """Queries over the state `Hub` keeps; every one takes the hub's lock."""

    lock: threading.RLock
    _changed: threading.Condition
    installations: dict[int, Installation]
    repositories: dict[str, Repository]
    pulls: dict[tuple[str, int], PullRequest]
    check_run_records: dict[int, CheckRun]
    comment_records: dict[int, Comment]
    reaction_records: list[Reaction]
    calls: list[CallRecord]

    def repository(self, full_name: str) -> Repository:
        """The repository `owner/name` (KeyError if the hub has none)."""
        with self.lock:
            return self.repositories[full_name.lower()]

    def repository_by_id(self, repo_id: int) -> Repository | None:
        """The repository with this id, if any."""
        with self.lock:
            return next((r for r in self.repositories.values() if r.id == repo_id), None)

    def pull_request(self, repo: str, number: int) -> PullRequest:
        """Pull request `number` of `repo` (KeyError if absent)."""
        with self.lock:
            return self.pulls[(repo.lower(), number)]

    def pull_requests(self, repo: str) -> list[PullRequest]:
        """Every pull request of `repo`, by number."""
        with self.lock:
            return sorted(
                (p for (r, _), p in self.pulls.items() if r == repo.lower()), key=lambda p: p.number
            )

    def head_sha(self, pr: PullRequest) -> str:
        """The current tip of the pull request's head branch (its last, once deleted)."""
        with self.lock:
            live = self.repository(pr.head_repo).git.resolve(f"refs/heads/{pr.head_ref}")
            return live or pr.last_head_sha or ""

    def base_sha(self, pr: PullRequest) -> str:
        """The current tip of the pull request's base branch."""
        with self.lock:
            return self.repository(pr.repo).git.resolve(f"refs/heads/{pr.base_ref}") or ""

    def check_runs(self, repo: str) -> list[CheckRun]:
        """The check runs created on `repo`, oldest first."""
        with self.lock:
            return [c for c in self.check_run_records.values() if c.repo.lower() == repo.lower()]

    def comments(self, repo: str, number: int) -> list[Comment]:
        """The comments on issue or pull request `number`, oldest first."""
        with self.lock:
            return [
                c
                for c in self.comment_records.values()
                if c.repo.lower() == repo.lower() and c.issue_number == number
            ]

    def reviews(self, repo: str, number: int) -> list[Review]:
        """The reviews submitted on pull request `number` of `repo`, oldest first."""
        with self.lock:
            return list(self.pull_request(repo, number).reviews)

    def reactions(self, comment_id: int) -> list[Reaction]:
        """The reactions to a comment."""
        with self.lock:
            return [r for r in self.reaction_records if r.comment_id == comment_id]

    def files(self, repo: str, ref: str | None = None) -> dict[str, bytes]:
        """Every file's content at a ref (default branch by default)."""
        with self.lock:
            r = self.repository(repo)
            sha = r.git.resolve(ref or r.default_branch)
            if sha is None:
                raise KeyError(ref)
            return {
                p: r.git.objects.blob(e.sha)
                for p, e in r.git.files_at(sha).items()
                if e.type == "blob"
            }

    def ref(self, repo: str, name: str) -> str | None:
        """The sha a branch, tag or full ref points at."""
        with self.lock:
            return self.repository(repo).git.resolve(name)

    def calls_for(self, operation_id: str) -> list[CallRecord]:
        """The recorded calls of one operation, in order."""
        with self.lock:
            return [c for c in self.calls if c.operation_id == operation_id]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Block until `predicate()` holds (checked on every change); False on timeout."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout)

    def changed(self) -> None:
        """Wake `wait_for` callers; route handlers call it after each write."""
        with self._changed:
            self._changed.notify_all()

    def installation_covers(self, inst: Installation, repo: Repository) -> bool:
        """Whether an installation reaches a repository (its account's, and selected if so)."""
        if repo.owner.lower() != inst.account_login.lower():
            return False
        return inst.repository_ids is None or repo.id in inst.repository_ids

    def installation_for(self, repo: Repository) -> Installation | None:
        """The App's installation on the repository's account, if it covers the repository."""
        with self.lock:
            return next(
                (i for i in self.installations.values() if self.installation_covers(i, repo)), None
            )
