"""localhub check runs: bodies GitHub refuses, appended annotations, unknown shas, fork pull requests."""

from __future__ import annotations

import pytest

from tests.localhub.conftest import REPO, annotations


@pytest.mark.parametrize(
    "change",
    [
        {"output": {"title": "t", "summary": "s", "annotations": annotations(51)}},
        {
            "actions": [
                {"label": "Fix", "description": "Fix it", "identifier": f"fix{i}"} for i in range(4)
            ]
        },
        {"actions": [{"label": "Fix", "description": "Fix it", "identifier": "x" * 21}]},
        {"actions": [{"label": "Fix", "description": "d" * 41, "identifier": "fix"}]},
        {"output": {"title": "t", "summary": "s" * 65_536}},
        {"status": "finished"},
        {"status": "completed"},
    ],
    ids=[
        "51-annotations",
        "4-actions",
        "21-char-identifier",
        "41-char-description",
        "65536-char-summary",
        "bad-status",
        "completed-without-conclusion",
    ],
)
def test_check_run_body_github_would_refuse_is_422(hub, client, world, change):
    response = client.post(
        f"/repos/{REPO}/check-runs",
        headers=world.auth,
        json={"name": "Clarity Check", "head_sha": world.head_sha, **change},
    )
    assert response.status_code == 422
    assert response.json()["message"].startswith("Invalid request.\n\n")
    assert hub.check_runs(REPO) == []


def test_check_run_update_appends_annotations_and_completes(hub, client, world):
    created = client.post(
        f"/repos/{REPO}/check-runs",
        headers=world.auth,
        json={
            "name": "Clarity Check",
            "head_sha": world.head_sha,
            "status": "in_progress",
            "output": {"title": "Scan", "summary": "1", "annotations": annotations(50)},
        },
    ).json()
    assert created["pull_requests"][0]["number"] == 1
    updated = client.patch(
        f"/repos/{REPO}/check-runs/{created['id']}",
        headers=world.auth,
        json={
            "conclusion": "failure",
            "output": {"title": "Scan", "summary": "2", "annotations": annotations(50)},
        },
    ).json()
    assert (updated["status"], updated["conclusion"], updated["output"]["annotations_count"]) == (
        "completed",
        "failure",
        100,
    )
    assert len(hub.check_runs(REPO)[0].annotations) == 100
    assert (
        client.get(f"/repos/{REPO}/check-runs/{created['id']}", headers=world.auth).json()[
            "output"
        ]["summary"]
        == "2"
    )


def test_check_run_for_unknown_sha_is_422(client, world):
    response = client.post(
        f"/repos/{REPO}/check-runs",
        headers=world.auth,
        json={"name": "Clarity Check", "head_sha": "f" * 40},
    )
    assert response.status_code == 422


def test_check_run_of_fork_pull_request_lists_no_pull_requests(hub, client, world):
    hub.add_repository("mallory", "app", fork_of=REPO)
    sha = hub.commit_files("mallory/app", "patch", {"x.txt": "x\n"})
    hub.open_pull_request(REPO, "patch", head_repo="mallory/app", user="mallory")
    run = client.post(
        f"/repos/{REPO}/check-runs",
        headers=world.auth,
        json={"name": "Clarity Check", "head_sha": sha},
    ).json()
    assert run["pull_requests"] == []


def test_check_runs_for_a_ref_are_listed_newest_first_latest_per_name(hub, client, world):
    def create(name: str) -> int:
        response = client.post(
            f"/repos/{REPO}/check-runs",
            headers=world.auth,
            json={"name": name, "head_sha": world.head_sha, "external_id": name},
        )
        return response.json()["id"]

    first, other, second = create("Clarity Check"), create("Other"), create("Clarity Check")
    url = f"/repos/{REPO}/commits/feature/check-runs"
    latest = client.get(url, headers=world.auth).json()
    assert [run["id"] for run in latest["check_runs"]] == [second, other]
    named = client.get(
        url, headers=world.auth, params={"check_name": "Clarity Check", "filter": "all"}
    ).json()
    assert (named["total_count"], [run["id"] for run in named["check_runs"]]) == (
        2,
        [second, first],
    )
    assert client.get(url, headers=world.auth, params={"app_id": 1}).json()["total_count"] == 0
