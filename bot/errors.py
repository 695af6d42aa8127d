"""Errors at the web edge; one handler turns each into `{"error": code, "detail": text}`."""

from __future__ import annotations

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

log = structlog.get_logger(__name__)


class HTTPError(Exception):
    """An error answered with `status` and a stable machine-readable `code`."""

    status = 500
    code = "internal_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(HTTPError):
    status, code = 400, "bad_request"


class BadDelivery(BadRequest):
    """A webhook delivery that is not a well-formed GitHub event."""


class Unauthenticated(HTTPError):
    status, code = 401, "unauthenticated"


class NotAllowed(HTTPError):
    status, code = 403, "forbidden"


class NotFound(HTTPError):
    status, code = 404, "not_found"


class Conflict(HTTPError):
    status, code = 409, "conflict"


class InvalidSignature(HTTPError):
    status, code = 401, "invalid_signature"


class StaleDelivery(HTTPError):
    status, code = 409, "stale"


class PayloadTooLarge(HTTPError):
    status, code = 413, "payload_too_large"


class ServiceUnavailable(HTTPError):
    """Something the request needs is down or not configured; the detail says which."""

    status, code = 503, "unavailable"


class InboxUnavailable(ServiceUnavailable):
    """The webhook inbox cannot take the delivery now; GitHub may redeliver it."""


async def http_error_response(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPError)
    return JSONResponse({"error": error.code, "detail": error.detail}, status_code=error.status)


async def starlette_error_response(request: Request, error: Exception) -> JSONResponse:
    """Routing errors (404, 405) in the same JSON shape as ours."""
    assert isinstance(error, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
    return JSONResponse(
        {"error": code, "detail": error.detail},
        status_code=error.status_code,
        headers=error.headers,
    )


async def unexpected_error_response(request: Request, error: Exception) -> JSONResponse:
    log.exception("request.failed", path=request.url.path, error=type(error).__name__)
    return JSONResponse(
        {"error": "internal_error", "detail": "an unexpected error occurred"}, status_code=500
    )
