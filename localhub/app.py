"""`create_app(hub)`: the Starlette application serving every operation of the REST subset."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route

from . import (
    manifests,
    routes_app,
    routes_checks,
    routes_contents,
    routes_git,
    routes_issues,
    routes_pulls,
    routes_reviews,
)
from .endpoint import APP, Policy, not_found, operation
from .state import Hub

JWT = Policy(auth=APP)
READ_CONTENTS = Policy(needs=(("contents", "read"),))
WRITE_CONTENTS = Policy(needs=(("contents", "write"),), write=True)
READ_PULLS = Policy(needs=(("pull_requests", "read"),))
# comments on a pull request may be read or written with either permission
READ_COMMENTS = Policy(needs=(("issues", "read"), ("pull_requests", "read")))
WRITE_COMMENTS = Policy(needs=(("issues", "write"), ("pull_requests", "write")), write=True)

ROUTES = [
    operation("apps/get-authenticated", routes_app.get_app, JWT),
    operation("apps/create-installation-access-token", routes_app.create_installation_token, JWT),
    operation("apps/get-repo-installation", routes_app.get_repo_installation, JWT),
    operation("apps/list-webhook-deliveries", routes_app.list_deliveries, JWT),
    operation("apps/get-webhook-delivery", routes_app.get_delivery, JWT),
    operation("apps/redeliver-webhook-delivery", routes_app.redeliver, JWT),
    # no credential: the one-time code is the credential
    operation("apps/create-from-manifest", manifests.create_from_manifest),
    operation(
        "checks/create",
        routes_checks.create_check_run,
        Policy(needs=(("checks", "write"),), write=True),
    ),
    operation("checks/get", routes_checks.get_check_run, Policy(needs=(("checks", "read"),))),
    operation(
        "checks/update",
        routes_checks.update_check_run,
        Policy(needs=(("checks", "write"),), write=True),
    ),
    operation(
        "checks/list-for-ref",
        routes_checks.list_check_runs_for_ref,
        Policy(needs=(("checks", "read"),)),
    ),
    operation("issues/list-comments", routes_issues.list_comments, READ_COMMENTS),
    operation("issues/create-comment", routes_issues.create_comment, WRITE_COMMENTS),
    operation("issues/get-comment", routes_issues.get_comment, READ_COMMENTS),
    operation("issues/update-comment", routes_issues.update_comment, WRITE_COMMENTS),
    operation("reactions/create-for-issue-comment", routes_issues.create_reaction, WRITE_COMMENTS),
    operation(
        "repos/get-collaborator-permission-level",
        routes_issues.get_collaborator_permission,
        Policy(needs=(("metadata", "read"),)),
    ),
    operation("pulls/list", routes_pulls.list_pulls, READ_PULLS),
    operation(
        "pulls/create",
        routes_pulls.create_pull,
        Policy(needs=(("pull_requests", "write"),), write=True),
    ),
    operation("pulls/get", routes_pulls.get_pull, READ_PULLS),
    operation("pulls/list-files", routes_pulls.list_pull_files, READ_PULLS),
    operation(
        "pulls/create-review",
        routes_reviews.create_review,
        Policy(needs=(("pull_requests", "write"),), write=True),
    ),
    operation("git/create-blob", routes_git.create_blob, WRITE_CONTENTS),
    operation("git/create-tree", routes_git.create_tree, WRITE_CONTENTS),
    operation("git/create-commit", routes_git.create_commit, WRITE_CONTENTS),
    operation("git/get-commit", routes_git.get_commit, READ_CONTENTS),
    operation("git/get-ref", routes_git.get_ref, READ_CONTENTS),
    operation("git/create-ref", routes_git.create_ref, WRITE_CONTENTS),
    operation("git/update-ref", routes_git.update_ref, WRITE_CONTENTS),
    operation("git/delete-ref", routes_git.delete_ref, WRITE_CONTENTS),
    operation("repos/get-content", routes_contents.get_content, READ_CONTENTS),
    operation("repos/download-tarball-archive", routes_contents.download_tarball, READ_CONTENTS),
    # not part of the REST API: github.com's "register a new App" form (the manifest flow)
    Route("/settings/apps/new", manifests.new_app_form, methods=["POST"], name="new-app"),
    Route(
        "/organizations/{org}/settings/apps/new",
        manifests.new_app_form,
        methods=["POST"],
        name="new-org-app",
    ),
    # not part of the REST API: where the tarball redirect leads (codeload.github.com)
    Route(
        routes_contents.CODELOAD_PATH, routes_contents.codeload, methods=["GET"], name="codeload"
    ),
]


def create_app(hub: Hub) -> Starlette:
    """The stand-in's ASGI app over `hub` (reachable as `app.state.hub`)."""
    app = Starlette(routes=ROUTES, exception_handlers={404: not_found, 405: not_found})
    app.state.hub = hub
    return app
