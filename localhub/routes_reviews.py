"""Pull request reviews: a submitted review with line comments (the bot's suggested changes).

GitHub anchors each comment on a file the pull request changes, by line number in
the head (`side: RIGHT`) or the merge base (`LEFT`), and answers 422 when the path
or a line cannot be resolved. The stand-in checks the same, and keeps the review on
the pull request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import render, shapes
from .clock import iso
from .endpoint import Context, Reply
from .errors import NotFound, Unprocessable
from .models import PullRequest, Repository, Review, ReviewComment

if TYPE_CHECKING:
    from .state import Hub

# how `state` reads for each event; GitHub leaves a review without one PENDING
STATES = {"COMMENT": "COMMENTED", "APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED"}


class Unresolvable(Unprocessable):
    """422 with GitHub's plain-string `errors`, as for a review comment it cannot place."""

    default_message = "Unprocessable Entity"

    def __init__(self, problem: str) -> None:
        super().__init__(errors=[problem])


async def create_review(ctx: Context) -> Reply:
    """`pulls/create-review`, submitted at once (`event` given) on the head commit."""
    hub, body, repo = ctx.hub, ctx.body or {}, ctx.repo
    assert repo is not None
    event = body.get("event")
    if event is None:
        raise Unresolvable("Pending reviews are not supported by the stand-in")
    if event in ("COMMENT", "REQUEST_CHANGES") and not body.get("body"):
        raise Unresolvable(f"Body is required for {event}")
    with hub.lock:
        pr = hub.pulls.get((repo.full_name.lower(), ctx.params["pull_number"]))
        if pr is None:
            raise NotFound()
        head = hub.head_sha(pr)
        # an older commit of the pull request is accepted; its comments show as outdated
        commit = body.get("commit_id", head)
        merge_base = repo.git.merge_base(hub.base_sha(pr), head) or hub.base_sha(pr)
        if commit not in set(repo.git.ancestors(head)) - set(repo.git.ancestors(merge_base)):
            raise Unresolvable("commit_id is not part of the pull request")
        lines = _changed_files(hub, repo, pr, commit)
        comments = [_comment(raw, lines) for raw in body.get("comments", [])]
        review = Review(
            hub.next_id(),
            event,
            body.get("body", ""),
            hub.app.bot_login,
            commit,
            hub.now(),
            comments,
        )
        pr.reviews.append(review)
        shaped = review_body(hub, repo, pr, review, ctx.base_url)
    hub.changed()
    return Reply(200, shaped)


def _changed_files(
    hub: Hub, repo: Repository, pr: PullRequest, head: str
) -> dict[str, dict[str, int]]:
    """For each file the pull request changes by `head`: its line count at the base and head."""
    base = hub.base_sha(pr)
    merge_base = repo.git.merge_base(base, head) or base
    counts: dict[str, dict[str, int]] = {}
    for change in repo.git.diff(merge_base, head):
        counts[change.filename] = {
            "LEFT": _line_count(repo, merge_base, change.previous_filename or change.filename),
            "RIGHT": _line_count(repo, head, change.filename),
        }
    return counts


def _line_count(repo: Repository, sha: str, path: str) -> int:
    entry = repo.git.files_at(sha).get(path)
    if entry is None or entry.type != "blob":
        return 0
    text = repo.git.objects.blob(entry.sha).decode("utf-8", "replace")
    return len(text.splitlines())


def _comment(raw: dict[str, Any], files: dict[str, dict[str, int]]) -> ReviewComment:
    """One line comment, placed as GitHub places it (422 when it cannot be)."""
    if "line" not in raw:
        # `position` (an offset into the diff) is the legacy form; the bot never sends it
        raise Unresolvable("Line could not be resolved")
    if raw["path"] not in files:
        raise Unresolvable("Path could not be resolved")
    side = raw.get("side", "RIGHT")
    if side not in ("LEFT", "RIGHT") or raw.get("start_side", side) != side:
        raise Unresolvable("Side could not be resolved")
    line, start = raw["line"], raw.get("start_line")
    last = files[raw["path"]][side]
    if not 1 <= line <= last or (start is not None and not 1 <= start <= line):
        raise Unresolvable("Line could not be resolved")
    return ReviewComment(raw["path"], raw["body"], line, side, start)


def review_body(
    hub: Hub, repo: Repository, pr: PullRequest, review: Review, base: str
) -> dict[str, Any]:
    """`pull-request-review`."""
    body = render.example("pull-request-review")
    api = f"{base}/repos/{repo.full_name}/pulls/{pr.number}"
    html = f"{shapes.web(base)}/{repo.full_name}/pull/{pr.number}#pullrequestreview-{review.id}"
    body.update(
        id=review.id,
        node_id=shapes.node_id("PullRequestReview", review.id),
        user=render.user(hub, review.user, base, "Bot"),
        body=review.body,
        state=STATES[review.event],
        html_url=html,
        pull_request_url=api,
        _links={"html": {"href": html}, "pull_request": {"href": api}},
        submitted_at=iso(review.submitted_at),
        commit_id=review.commit_id,
        author_association="NONE",
    )
    return body
