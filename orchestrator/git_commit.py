"""Fix commits: commit a checked patch's changes, point the fix branch, open its pull request.

Thin adapters over the Git Data and pulls API (only operations of our REST subset),
plus the pure decisions they follow (`branch_outcome`, `fix_branch`). The patch itself
is re-checked and applied in `git_patch`; its public names are re-exported here.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import gidgethub
from gidgethub.abc import GitHubAPI

from orchestrator.git_patch import (
    EXEC_MODE,
    FILE_MODE,
    PatchDoesNotApply,
    apply_patch,
    blob_sha,
    patch_modes,
)

__all__ = [
    "BranchOutcome",
    "BranchUpdate",
    "NothingToCommit",
    "PatchDoesNotApply",
    "PullRef",
    "apply_patch",
    "blob_sha",
    "branch_outcome",
    "commit_changes",
    "delete_branch",
    "fix_branch",
    "open_pull",
    "patch_modes",
    "point_branch",
]

_BRANCH = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*(?:/[A-Za-z0-9_-][A-Za-z0-9._-]*)*")


class NothingToCommit(ValueError):
    """`commit_changes` was given no change: an empty commit is never made."""


async def commit_changes(
    gh: GitHubAPI,
    owner: str,
    repo: str,
    *,
    parent_sha: str,
    changes: Mapping[str, bytes | None],
    message: str,
    modes: Mapping[str, str] | None = None,
) -> str:
    """Commit `changes` (None deletes) on top of `parent_sha` with the Git Data API; its sha.

    The subset of the API we hold cannot read a file's mode, so `modes` (from
    `patch_modes` or the tarball) keeps executables executable; others get 100644.
    """
    if not changes:
        raise NothingToCommit(f"no change to commit on {parent_sha}")
    where = {"owner": owner, "repo": repo}
    parent = await gh.getitem(
        "/repos/{owner}/{repo}/git/commits/{sha}", url_vars={**where, "sha": parent_sha}
    )
    entries = []
    for path, content in sorted(changes.items()):
        mode = (modes or {}).get(path, FILE_MODE)
        if mode not in (FILE_MODE, EXEC_MODE):
            raise ValueError(f"{path}: mode {mode} is not a regular file's")
        sha = None
        if content is not None:
            encoded = base64.b64encode(content).decode()
            blob = await gh.post(
                "/repos/{owner}/{repo}/git/blobs",
                url_vars=where,
                data={"content": encoded, "encoding": "base64"},
            )
            sha = blob["sha"]
        entries.append({"path": path, "mode": mode, "type": "blob", "sha": sha})
    tree = await gh.post(
        "/repos/{owner}/{repo}/git/trees",
        url_vars=where,
        data={"base_tree": parent["tree"]["sha"], "tree": entries},
    )
    commit = await gh.post(
        "/repos/{owner}/{repo}/git/commits",
        url_vars=where,
        data={"message": message, "tree": tree["sha"], "parents": [parent_sha]},
    )
    return commit["sha"]


class BranchOutcome(StrEnum):
    """What `point_branch` found and did."""

    CREATED = "created"
    MOVED = "moved"
    ALREADY_THERE = "already_there"
    HUMAN_COMMITS = "human_commits"  # someone else moved it: left alone


@dataclass(frozen=True)
class BranchUpdate:
    """Where the branch points now, and how it got there."""

    branch: str
    sha: str
    outcome: BranchOutcome

    @property
    def human_commits(self) -> bool:
        return self.outcome is BranchOutcome.HUMAN_COMMITS


def branch_outcome(current: str | None, commit_sha: str, ours: str | None) -> BranchOutcome:
    """Create a missing branch, move one still at our last commit, never touch anyone else's."""
    if current is None:
        return BranchOutcome.CREATED
    if current == commit_sha:
        return BranchOutcome.ALREADY_THERE
    if ours is not None and current == ours:
        return BranchOutcome.MOVED
    return BranchOutcome.HUMAN_COMMITS


async def point_branch(
    gh: GitHubAPI, owner: str, repo: str, branch: str, commit_sha: str, *, ours: str | None
) -> BranchUpdate:
    """Point `refs/heads/<branch>` at `commit_sha` unless someone else committed there.

    `ours` is the last commit we put on the branch (None: we never did).
    """
    current = await _branch_sha(gh, owner, repo, branch)
    outcome = branch_outcome(current, commit_sha, ours)
    where = {"owner": owner, "repo": repo, "ref": f"heads/{branch}"}
    if outcome is BranchOutcome.CREATED:
        try:
            await gh.post(
                "/repos/{owner}/{repo}/git/refs",
                url_vars=where,
                data={"ref": f"refs/heads/{branch}", "sha": commit_sha},
            )
            return BranchUpdate(branch, commit_sha, outcome)
        except gidgethub.BadRequest as exc:
            if exc.status_code != 422:
                raise
            # created by someone else since we looked
            current = await _branch_sha(gh, owner, repo, branch)
            outcome = branch_outcome(current, commit_sha, ours)
            if current is None:
                raise
    if outcome is BranchOutcome.MOVED:
        # forced: the new commit grows from the pull request's head, not from our last fix
        await gh.patch(
            "/repos/{owner}/{repo}/git/refs/{+ref}",
            url_vars=where,
            data={"sha": commit_sha, "force": True},
        )
        return BranchUpdate(branch, commit_sha, outcome)
    assert current is not None
    return BranchUpdate(branch, current, outcome)


def _check_branch(branch: str) -> None:
    """Branch names go into URLs unescaped (GitHub wants the slashes), so only plain ones."""
    if not _BRANCH.fullmatch(branch) or ".." in branch or branch.endswith(".lock"):
        raise ValueError(f"unsupported branch name {branch!r}")


async def _branch_sha(gh: GitHubAPI, owner: str, repo: str, branch: str) -> str | None:
    _check_branch(branch)
    try:
        ref = await gh.getitem(
            "/repos/{owner}/{repo}/git/ref/{+ref}",
            url_vars={"owner": owner, "repo": repo, "ref": f"heads/{branch}"},
        )
    except gidgethub.BadRequest as exc:
        if exc.status_code == 404:
            return None
        raise
    return ref["object"]["sha"]


@dataclass(frozen=True)
class PullRef:
    """A fix pull request: its number, web address, and whether this call opened it."""

    number: int
    url: str
    created: bool


async def open_pull(
    gh: GitHubAPI, owner: str, repo: str, *, branch: str, base: str, title: str, body: str
) -> PullRef:
    """The open pull request from `branch`, or a new one; an existing one is left as it is."""
    found = await _open_pull_from(gh, owner, repo, branch)
    if found:
        return found
    try:
        pull = await gh.post(
            "/repos/{owner}/{repo}/pulls",
            url_vars={"owner": owner, "repo": repo},
            data={"title": title, "head": branch, "base": base, "body": body},
        )
    except gidgethub.BadRequest as exc:
        # opened by a concurrent run since we looked?
        found = await _open_pull_from(gh, owner, repo, branch) if exc.status_code == 422 else None
        if found:
            return found
        raise
    return PullRef(pull["number"], pull["html_url"], created=True)


async def _open_pull_from(gh: GitHubAPI, owner: str, repo: str, branch: str) -> PullRef | None:
    pulls = await gh.getitem(
        "/repos/{owner}/{repo}/pulls{?head,state}",
        url_vars={"owner": owner, "repo": repo, "head": f"{owner}:{branch}", "state": "open"},
    )
    return next((PullRef(p["number"], p["html_url"], created=False) for p in pulls), None)


async def delete_branch(gh: GitHubAPI, owner: str, repo: str, branch: str) -> bool:
    """Delete the branch (GitHub then closes its open pull request); False if it was gone."""
    _check_branch(branch)
    try:
        await gh.delete(
            "/repos/{owner}/{repo}/git/refs/{+ref}",
            url_vars={"owner": owner, "repo": repo, "ref": f"heads/{branch}"},
        )
    except gidgethub.BadRequest as exc:
        if exc.status_code in (404, 422):
            return False
        raise
    return True


def fix_branch(pr_number: int, fingerprint: str) -> str:
    """The branch holding the fix for one finding of a pull request."""
    short = fingerprint[:8]
    if pr_number < 1 or not re.fullmatch(r"[0-9A-Za-z]{8}", short):
        raise ValueError(f"no fix branch for #{pr_number} and fingerprint {fingerprint!r}")
    return f"clarity/fix/{pr_number}-{short}"
