"""gidgethub routers, one module per event family, merged into one."""

from gidgethub.routing import Router

from handlers import (
    check_actions,
    check_suite,
    fix_outcomes,
    installation,
    issue_comment,
    pull_request,
    push,
)

router = Router(
    installation.router,
    pull_request.router,
    fix_outcomes.router,
    check_suite.router,
    check_actions.router,
    push.router,
    issue_comment.router,
)
