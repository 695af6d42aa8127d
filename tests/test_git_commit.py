"""Fix commits against the GitHub stand-in: commit a checked patch on the pull request's head,
point the fix branch (never over someone else's commit), open one pull request, delete it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from bot.github import GitHubApp, RetryPolicy
from localhub import Hub, running
from orchestrator.git_commit import (
    BranchOutcome,
    NothingToCommit,
    apply_patch,
    branch_outcome,
    commit_changes,
    delete_branch,
    fix_branch,
    open_pull,
    patch_modes,
    point_branch,
)
from tests.git_diffs import git_diff

OWNER, NAME = "octo-org", "app"
REPO = f"{OWNER}/{NAME}"
FINGERPRINT = "3f2a9c1e" + "0" * 56
FIX_SCOPE = {"contents": "write", "pull_requests": "write"}


@pytest.mark.parametrize(
    ("current", "ours", "outcome"),
    [
        (None, None, BranchOutcome.CREATED),
        ("new", "old", BranchOutcome.ALREADY_THERE),
        ("old", "old", BranchOutcome.MOVED),
        ("human", "old", BranchOutcome.HUMAN_COMMITS),
        ("human", None, BranchOutcome.HUMAN_COMMITS),
    ],
)
def test_the_branch_moves_only_while_it_holds_our_last_commit(current, ours, outcome):
    assert branch_outcome(current, "new", ours) is outcome


def test_fix_branches_are_named_after_the_pull_request_and_the_finding():
    assert fix_branch(12, FINGERPRINT) == "clarity/fix/12-3f2a9c1e"
    with pytest.raises(ValueError):
        fix_branch(12, "../../x")


@pytest.fixture(scope="module")
def served(app_private_key: str) -> Iterator[tuple[Hub, str]]:
    hub = Hub(app_id=4242, client_id="Iv1.testclient", private_key_pem=app_private_key)
    with running(hub) as url:
        yield hub, url


@pytest.fixture
def hub(served: tuple[Hub, str]) -> Hub:
    hub, _ = served
    hub.reset()
    installation = hub.add_installation(OWNER, installation_id=77)
    files = {"README.md": "# app\n", "src/app.py": "import os\nprint(1)\n", "src/old.py": "x = 1\n"}
    hub.add_repository(OWNER, NAME, files, installation_id=installation.id)
    hub.commit_files(REPO, "feature", {"src/app.py": "import os\nprint(2)\n"}, author="alice")
    hub.open_pull_request(REPO, "feature", title="Add feature", user="alice")
    return hub


@pytest.fixture
async def gh(hub: Hub, served: tuple[Hub, str], app_private_key: str) -> AsyncIterator:
    fast = RetryPolicy(max_attempts=2, base_delay=0.0, max_delay=0.0)
    async with httpx.AsyncClient() as http:
        app = GitHubApp(
            http,
            issuer="Iv1.testclient",
            private_key=app_private_key,
            base_url=served[1],
            policy=fast,
        )
        yield app.for_installation(77, repositories=(NAME,), permissions=FIX_SCOPE)


def only_subset_calls(hub: Hub) -> bool:
    """Every call matched an operation of the REST subset and passed its validation."""
    failed = {(c.operation_id, c.status) for c in hub.calls if c.status >= 400}
    return all(c.operation_id for c in hub.calls) and failed <= {("git/get-ref", 404)}


async def commit_fix(gh, hub: Hub, tmp_path: Path, edits: Mapping[str, bytes | None]) -> str:
    """What the control plane does with a sandbox's diff of the pull request's head."""
    head = hub.ref(REPO, "feature")
    base = hub.files(REPO, "feature")
    patch = git_diff(tmp_path, base, edits)
    return await commit_changes(
        gh,
        OWNER,
        NAME,
        parent_sha=head,
        changes=apply_patch(base, patch),
        message="Fix: close the file",
        modes=patch_modes(patch),
    )


async def test_a_fix_is_committed_on_the_head_and_opened_as_a_pull_request(gh, hub, tmp_path):
    head = hub.ref(REPO, "feature")
    edits = {"src/app.py": b"import os\nprint(3)\n", "src/old.py": None, "src/new.py": b"y\n"}
    sha = await commit_fix(gh, hub, tmp_path, edits)
    branch = fix_branch(1, FINGERPRINT)

    update = await point_branch(gh, OWNER, NAME, branch, sha, ours=None)
    pull = await open_pull(
        gh, OWNER, NAME, branch=branch, base="feature", title="Clarity fix", body="For #1"
    )

    assert (update.outcome, update.sha, update.human_commits) == (BranchOutcome.CREATED, sha, False)
    assert hub.files(REPO, branch) == {
        "README.md": b"# app\n",
        "src/app.py": b"import os\nprint(3)\n",
        "src/new.py": b"y\n",
    }
    assert hub.repository(REPO).git.objects.commit(sha).parents == (head,)
    opened = hub.pull_request(REPO, pull.number)
    assert pull.created and (opened.head_ref, opened.base_ref) == (branch, "feature")
    assert pull.url.endswith(f"/{REPO}/pull/{pull.number}")
    [tree] = hub.calls_for("git/create-tree")
    assert {"path": "src/old.py", "mode": "100644", "type": "blob", "sha": None} in (
        tree.request_json["tree"]
    )
    assert len(hub.calls_for("git/create-blob")) == 2
    [token] = hub.calls_for("apps/create-installation-access-token")
    assert token.request_json == {"repositories": [NAME], "permissions": FIX_SCOPE}
    assert only_subset_calls(hub)


async def test_a_second_run_moves_our_branch_and_keeps_one_pull_request(gh, hub, tmp_path):
    branch = fix_branch(1, FINGERPRINT)
    first = await commit_fix(gh, hub, tmp_path / "one", {"src/app.py": b"import os\n"})
    await point_branch(gh, OWNER, NAME, branch, first, ours=None)
    opened = await open_pull(gh, OWNER, NAME, branch=branch, base="feature", title="Fix", body="")

    second = await commit_fix(gh, hub, tmp_path / "two", {"src/app.py": b"print(2)\n"})
    again = await point_branch(gh, OWNER, NAME, branch, second, ours=first)
    retried = await point_branch(gh, OWNER, NAME, branch, second, ours=first)
    reopened = await open_pull(gh, OWNER, NAME, branch=branch, base="feature", title="Fix", body="")

    assert (again.outcome, retried.outcome) == (BranchOutcome.MOVED, BranchOutcome.ALREADY_THERE)
    assert hub.ref(REPO, branch) == second
    assert hub.files(REPO, branch)["src/app.py"] == b"print(2)\n"
    assert (reopened.number, reopened.created) == (opened.number, False)
    assert [p.number for p in hub.pull_requests(REPO) if p.head_ref == branch] == [opened.number]
    assert [c.request_json["force"] for c in hub.calls_for("git/update-ref")] == [True]
    assert only_subset_calls(hub)


async def test_a_human_commit_on_the_fix_branch_is_left_alone(gh, hub, tmp_path):
    branch = fix_branch(1, FINGERPRINT)
    ours = await commit_fix(gh, hub, tmp_path / "one", {"src/app.py": b"import os\n"})
    await point_branch(gh, OWNER, NAME, branch, ours, ours=None)
    human = hub.commit_files(REPO, branch, {"src/app.py": "import sys\n"}, author="alice")

    newer = await commit_fix(gh, hub, tmp_path / "two", {"src/app.py": b"print(2)\n"})
    update = await point_branch(gh, OWNER, NAME, branch, newer, ours=ours)

    assert update.human_commits and update.sha == human
    assert hub.ref(REPO, branch) == human
    assert hub.calls_for("git/update-ref") == []
    assert only_subset_calls(hub)


async def test_deleting_the_fix_branch_closes_its_pull_request(gh, hub, tmp_path):
    branch = fix_branch(1, FINGERPRINT)
    sha = await commit_fix(gh, hub, tmp_path, {"src/app.py": b"import os\n"})
    await point_branch(gh, OWNER, NAME, branch, sha, ours=None)
    pull = await open_pull(gh, OWNER, NAME, branch=branch, base="feature", title="Fix", body="")

    assert await delete_branch(gh, OWNER, NAME, branch) is True
    assert await delete_branch(gh, OWNER, NAME, branch) is False

    assert hub.pull_request(REPO, pull.number).state == "closed"
    assert hub.ref(REPO, branch) is None
    failed = {(c.operation_id, c.status) for c in hub.calls if c.status >= 400}
    assert failed <= {("git/get-ref", 404), ("git/delete-ref", 422)}
    assert all(c.operation_id for c in hub.calls)


async def test_executable_files_stay_executable(gh, hub, tmp_path):
    head = hub.ref(REPO, "feature")
    script = {"bin/run.sh": b"#!/bin/sh\n"}
    patch = git_diff(tmp_path, {}, script, executable=("bin/run.sh",))
    sha = await commit_changes(
        gh,
        OWNER,
        NAME,
        parent_sha=head,
        changes=apply_patch({}, patch),
        message="Add a script",
        modes=patch_modes(patch),
    )
    assert hub.repository(REPO).git.files_at(sha)["bin/run.sh"].mode == "100755"


async def test_an_empty_change_is_refused_before_any_call(gh, hub):
    with pytest.raises(NothingToCommit):
        await commit_changes(
            gh, OWNER, NAME, parent_sha=hub.ref(REPO, "feature"), changes={}, message="Nothing"
        )
    assert hub.calls == []
