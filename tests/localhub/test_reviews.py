"""localhub pull request reviews: line comments placed as GitHub places them, or refused."""

from __future__ import annotations

import pytest

from tests.localhub.conftest import REPO, new_token


def review(client, world, comments, **extra):
    return client.post(
        f"/repos/{REPO}/pulls/1/reviews",
        headers=world.auth,
        json={"event": "COMMENT", "body": "A suggested fix.", "comments": comments, **extra},
    )


def test_a_review_with_a_multi_line_comment_is_kept_on_the_pull_request(hub, client, world):
    comment = {
        "path": "src/app.py",
        "start_line": 1,
        "line": 2,
        "side": "RIGHT",
        "body": "```suggestion\nprint('hello')\n```",
    }
    response = review(client, world, [comment])
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "COMMENTED"
    assert response.json()["commit_id"] == world.head_sha
    (kept,) = hub.reviews(REPO, 1)
    assert (kept.event, kept.body, kept.user) == ("COMMENT", "A suggested fix.", hub.app.bot_login)
    assert [(c.path, c.start_line, c.line, c.side, c.body) for c in kept.comments] == [
        ("src/app.py", 1, 2, "RIGHT", comment["body"])
    ]


@pytest.mark.parametrize(
    ("comment", "problem"),
    [
        ({"path": "README.md", "line": 1}, "Path could not be resolved"),
        ({"path": "src/nope.py", "line": 1}, "Path could not be resolved"),
        ({"path": "src/app.py", "line": 3}, "Line could not be resolved"),
        ({"path": "src/app.py", "start_line": 2, "line": 1}, "Line could not be resolved"),
        ({"path": "src/app.py", "position": 1}, "Line could not be resolved"),
    ],
)
def test_a_comment_github_cannot_place_is_422(hub, client, world, comment, problem):
    response = review(client, world, [{**comment, "body": "x"}])
    assert response.status_code == 422
    assert response.json()["errors"] == [problem]
    assert hub.reviews(REPO, 1) == []


def test_a_comment_review_needs_a_body(hub, client, world):
    response = review(client, world, [], body="")
    assert response.status_code == 422
    assert hub.reviews(REPO, 1) == []


def test_a_review_needs_pull_requests_write(hub, client, world):
    token = new_token(client, hub, world.installation_id, permissions={"pull_requests": "read"})
    response = client.post(
        f"/repos/{REPO}/pulls/1/reviews",
        headers={"Authorization": f"token {token}"},
        json={"event": "COMMENT", "body": "x"},
    )
    assert response.status_code == 403


def test_a_review_on_a_commit_outside_the_pull_request_is_422(hub, client, world):
    base = hub.ref(REPO, "main")
    response = review(client, world, [], commit_id=base)
    assert response.status_code == 422
    assert response.json()["errors"] == ["commit_id is not part of the pull request"]
