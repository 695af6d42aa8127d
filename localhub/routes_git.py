"""The Git Data API: blobs, trees (with `base_tree`), commits and refs."""

from __future__ import annotations

import base64
import binascii

from . import auth, render_git
from .clock import parse_iso
from .endpoint import Context, Reply
from .errors import NotFound, Unprocessable
from .gitstore import MODE_TYPES, TREE_MODE, Entry, GitRepo, signature
from .models import AuthKind

WORKFLOWS_DIR = ".github/workflows/"


def _git(ctx: Context) -> GitRepo:
    assert ctx.repo is not None
    return ctx.repo.git


async def create_blob(ctx: Context) -> Reply:
    """`git/create-blob` from utf-8 or base64 content."""
    encoding = ctx.body.get("encoding", "utf-8")
    content = ctx.body["content"]
    if encoding in ("utf-8", "utf8"):
        data = content.encode("utf-8")
    elif encoding == "base64":
        try:
            data = base64.b64decode(content, validate=False)
        except (binascii.Error, ValueError):
            raise Unprocessable("Invalid request.\n\ncontent is not valid Base64.") from None
    else:
        raise Unprocessable(
            f'Invalid request.\n\nencoding must be "utf-8" or "base64", not "{encoding}".'
        )
    with ctx.hub.lock:
        sha = _git(ctx).objects.put_blob(data)
    shaped = render_git.blob(ctx.base_url, ctx.repo.full_name, sha)
    return Reply(201, shaped, {"location": shaped["url"]})


async def create_tree(ctx: Context) -> Reply:
    """Entries override `base_tree` by path; `sha: null` deletes a path."""
    body, git = ctx.body, _git(ctx)
    _guard_workflows(ctx, body["tree"])
    with ctx.hub.lock:
        files: dict[str, Entry] = {}
        if "base_tree" in body:
            if git.objects.kind(body["base_tree"]) != "tree":
                raise Unprocessable("Invalid request.\n\nbase_tree is not a valid tree.")
            files = git.flatten(body["base_tree"])
        for index, item in enumerate(body["tree"]):
            _apply_entry(git, files, index, item)
        sha = git.build_tree(files)
        shaped = render_git.tree(ctx.base_url, ctx.repo.full_name, git, sha)
    return Reply(201, shaped, {"location": shaped["url"]})


def _apply_entry(git: GitRepo, files: dict[str, Entry], index: int, item: dict) -> None:
    path = item.get("path", "").strip("/")
    mode, kind = item.get("mode"), item.get("type")
    if not path or mode is None or kind is None:
        raise Unprocessable(f"Invalid request.\n\ntree.{index} needs path, mode and type.")
    if MODE_TYPES.get(mode) != kind:
        raise Unprocessable(
            f"Invalid request.\n\ntree.{index}.mode {mode} does not match type {kind}."
        )
    if "sha" in item and "content" in item:
        raise Unprocessable(
            "Invalid request.\n\nOnly one of tree.sha or tree.content may be given."
        )
    if "content" in item:
        if kind != "blob":
            raise Unprocessable(f"Invalid request.\n\ntree.{index}.content requires type blob.")
        files[path] = Entry(mode, kind, git.objects.put_blob(item["content"].encode("utf-8")))
        return
    sha = item.get("sha")
    if sha is None:
        # deleting a file, or every file under a directory
        for existing in [p for p in files if p == path or p.startswith(path + "/")]:
            del files[existing]
        return
    if kind != "commit" and git.objects.kind(sha) != kind:
        raise Unprocessable(f"Invalid request.\n\ntree.sha {sha} is not a valid {kind}.")
    for existing in [p for p in files if p == path or p.startswith(path + "/")]:
        del files[existing]
    if mode == TREE_MODE:
        files.update({f"{path}/{sub}": e for sub, e in git.flatten(sha).items()})
    else:
        files[path] = Entry(mode, kind, sha)


def _guard_workflows(ctx: Context, items: list[dict]) -> None:
    """Changing workflow files needs `workflows: write`; GitHub answers 404 without it."""
    touches = any(str(i.get("path", "")).lstrip("/").startswith(WORKFLOWS_DIR) for i in items)
    token = ctx.caller.token
    if (
        touches
        and ctx.caller.kind is AuthKind.TOKEN
        and token
        and not auth.holds(token.permissions, "workflows", "write")
    ):
        raise NotFound()


async def create_commit(ctx: Context) -> Reply:
    """`git/create-commit`: the tree and parents must exist."""
    body, git, hub = ctx.body, _git(ctx), ctx.hub
    with hub.lock:
        if git.objects.kind(body["tree"]) != "tree":
            raise Unprocessable("Tree SHA does not exist")
        parents = tuple(body.get("parents") or ())
        if any(git.objects.kind(p) != "commit" for p in parents):
            raise Unprocessable("Parent SHA does not exist or is not a commit object")
        author = _person(hub, body.get("author"))
        committer = _person(hub, body.get("committer")) if body.get("committer") else author
        sha = git.objects.put_commit(body["tree"], parents, body["message"], author, committer)
        shaped = render_git.commit(ctx.base_url, ctx.repo.full_name, git, sha)
    return Reply(201, shaped, {"location": shaped["url"]})


def _person(hub, given: dict | None):
    if not given:
        login = hub.app.bot_login
        return signature(login, f"{hub.app.id}+{login}@users.noreply.github.com", hub.now())
    return signature(
        given["name"], given["email"], parse_iso(given["date"]) if given.get("date") else hub.now()
    )


async def get_commit(ctx: Context) -> Reply:
    """`git/get-commit`."""
    git, sha = _git(ctx), ctx.params["commit_sha"]
    with ctx.hub.lock:
        if git.objects.kind(sha) != "commit":
            raise NotFound()
        shaped = render_git.commit(ctx.base_url, ctx.repo.full_name, git, sha)
    return Reply(200, shaped)


async def get_ref(ctx: Context) -> Reply:
    """`git/get-ref`: exact match only, as GitHub."""
    name = "refs/" + ctx.params["ref"]
    with ctx.hub.lock:
        sha = _git(ctx).refs.get(name)
    if sha is None:
        raise NotFound()
    return Reply(200, render_git.ref(ctx.base_url, ctx.repo.full_name, name, sha))


async def create_ref(ctx: Context) -> Reply:
    """`git/create-ref`."""
    name, sha, git = ctx.body["ref"], ctx.body["sha"], _git(ctx)
    if not name.startswith("refs/") or name.count("/") < 2:
        raise Unprocessable("Reference name must start with 'refs' and have at least two slashes.")
    with ctx.hub.lock:
        if name in git.refs:
            raise Unprocessable("Reference already exists")
        if git.objects.kind(sha) != "commit":
            raise Unprocessable("Object does not exist")
        git.refs[name] = sha
    shaped = render_git.ref(ctx.base_url, ctx.repo.full_name, name, sha)
    return Reply(201, shaped, {"location": shaped["url"]})


async def update_ref(ctx: Context) -> Reply:
    """Fast-forward only unless `force`; GitHub's 422 messages otherwise."""
    name, sha, git = "refs/" + ctx.params["ref"], ctx.body["sha"], _git(ctx)
    with ctx.hub.lock:
        current = git.refs.get(name)
        if current is None:
            raise Unprocessable("Reference does not exist")
        if git.objects.kind(sha) != "commit":
            raise Unprocessable("Object does not exist")
        if not ctx.body.get("force", False) and not git.is_ancestor(current, sha):
            raise Unprocessable("Update is not a fast forward")
        git.refs[name] = sha
        if name == f"refs/heads/{ctx.repo.default_branch}":
            ctx.repo.pushed_at = ctx.hub.now()
    return Reply(200, render_git.ref(ctx.base_url, ctx.repo.full_name, name, sha))


async def delete_ref(ctx: Context) -> Reply:
    """`git/delete-ref`; the default branch cannot go, and a deleted branch's pulls close."""
    name, git = "refs/" + ctx.params["ref"], _git(ctx)
    with ctx.hub.lock:
        if name not in git.refs:
            raise Unprocessable("Reference does not exist")
        if name == f"refs/heads/{ctx.repo.default_branch}":
            raise Unprocessable("Cannot delete the default branch")
        sha = git.refs.pop(name)
        if name.startswith("refs/heads/"):
            _close_pulls_from(ctx, name.removeprefix("refs/heads/"), sha)
    return Reply(204)


def _close_pulls_from(ctx: Context, branch: str, sha: str) -> None:
    """GitHub closes (without merging) the open pull requests whose head branch is deleted."""
    now = ctx.hub.now()
    for pr in ctx.hub.pulls.values():
        if pr.state == "open" and pr.head_ref == branch and pr.head_repo == ctx.repo.full_name:
            pr.state, pr.closed_at, pr.updated_at, pr.last_head_sha = "closed", now, now, sha
