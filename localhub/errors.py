"""Errors the stand-in answers with, each one shaped like GitHub's own error bodies.

Handlers raise these; one place (`endpoint.py`) turns them into JSON responses.
"""

from __future__ import annotations

from typing import Any

DOCS = "https://docs.github.com/rest"


class HubError(Exception):
    """An error answer: status, message and optional `errors` list, as GitHub sends."""

    status = 500
    default_message = "Server Error"

    def __init__(
        self,
        message: str | None = None,
        *,
        errors: list[dict[str, Any] | str] | None = None,
        documentation_url: str = DOCS,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.errors = errors
        self.documentation_url = documentation_url
        self.headers = headers or {}
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        """The JSON body GitHub would send for this error."""
        body: dict[str, Any] = {"message": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        body["documentation_url"] = self.documentation_url
        body["status"] = str(self.status)
        return body


class ProblemsParsingJSON(HubError):
    """400: the body is not JSON."""

    status = 400
    default_message = "Problems parsing JSON"


class Unauthorized(HubError):
    """401: no, unknown or expired credentials."""

    status = 401
    default_message = "Bad credentials"


class RequiresAuthentication(Unauthorized):
    """401: a write without any credential."""

    default_message = "Requires authentication"


class JWTRejected(Unauthorized):
    """401: an App JWT that is malformed, badly signed, expired or too long-lived."""

    default_message = "A JSON web token could not be decoded"


class Forbidden(HubError):
    """403: the token lacks the permission or the repository."""

    status = 403
    default_message = "Resource not accessible by integration"


class Suspended(Forbidden):
    """403: the installation is suspended."""

    default_message = "This installation has been suspended"


class NotFound(HubError):
    """404: unknown route, or a resource the caller may not see."""

    status = 404
    default_message = "Not Found"


class Conflict(HubError):
    """409: the repository cannot answer in its current state."""

    status = 409
    default_message = "Git Repository is empty."


class Unprocessable(HubError):
    """422 with a plain message (GitHub's answer for most semantic errors)."""

    status = 422
    default_message = "Validation Failed"


class InvalidRequest(Unprocessable):
    """422 for a body or parameter the REST description rejects."""

    def __init__(self, problems: list[str], **kwargs: Any) -> None:
        super().__init__("Invalid request.\n\n" + "\n".join(problems), **kwargs)
        self.problems = problems


def validation_failed(
    resource: str, field: str, code: str, message: str | None = None
) -> Unprocessable:
    """GitHub's `Validation Failed` answer with one entry in `errors`."""
    entry: dict[str, Any] = {"resource": resource, "field": field, "code": code}
    if message is not None:
        entry["message"] = message
    return Unprocessable("Validation Failed", errors=[entry])
