"""Errors over HTTP: THE table from exception to status code, and the error envelope.

Every error response, whatever raised it (an admin operation, a malformed request, an unknown
route, a wrong method, a bug), has flaggery 0.2.1's body::

    {"exception": {"name": "FeatureNotFound", "message": "Feature 'x' does not exist."}}

Malformed requests (a path, query or body that does not decode to the declared types) answer
422 with the name ``RequestValidationError``, FastAPI's name in 0.2.1; the store's own
``ValidationError`` (well-formed but unacceptable values, e.g. weight 0) stays 400 as in 0.2.1.
A bug answers 500 ``InternalError`` with a generic message; the traceback goes to the log only.
"""

from __future__ import annotations

import logging

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from flaggery.errors import (
    AbTestIsLive,
    AbTestNotLive,
    AlreadyExists,
    Conflict,
    DatabaseUnavailable,
    EntityChanged,
    FlaggeryError,
    Forbidden,
    InvalidInput,
    MisdirectedRequest,
    NoBuckets,
    NotAdmin,
    NotFound,
    RevertRefused,
    RevisionNotReached,
    TooManyAttempts,
    TooManyStreams,
    Unauthorized,
    UpstreamUnavailable,
)

__all__ = [
    "STATUS_BY_ERROR",
    "ContentTooLarge",
    "ErrorBody",
    "ErrorEnvelope",
    "RequestHeadersTooLarge",
    "RequestTimeout",
    "RequestValidationError",
    "error_body",
    "error_headers",
    "error_response",
    "exception_handlers",
    "status_for",
]

log = logging.getLogger(__name__)


class RequestValidationError(FlaggeryError):
    """The request does not decode: a wrong type, a missing or unknown parameter, bad JSON."""


class ContentTooLarge(FlaggeryError):
    """The request body is larger than the server accepts."""


class RequestTimeout(FlaggeryError):
    """The client did not send the whole request within FLAGGERY_READ_TIMEOUT seconds."""


class RequestHeadersTooLarge(FlaggeryError):
    """The request line and headers are longer than the server reads (RFC 6585's 431)."""


STATUS_BY_ERROR: dict[type[FlaggeryError], int] = {
    NotFound: 404,
    AlreadyExists: 400,
    InvalidInput: 400,
    Conflict: 400,
    NoBuckets: 409,
    AbTestIsLive: 409,
    AbTestNotLive: 409,
    RevertRefused: 409,
    EntityChanged: 412,  # RFC 9110 13.1.1: the If-Match condition is false
    RequestValidationError: 422,
    ContentTooLarge: 413,
    RequestTimeout: 408,
    RequestHeadersTooLarge: 431,
    NotAdmin: 423,
    Unauthorized: 401,
    Forbidden: 403,
    TooManyAttempts: 429,
    MisdirectedRequest: 421,
    TooManyStreams: 503,
    DatabaseUnavailable: 503,
    UpstreamUnavailable: 503,  # an edge's database is its upstream: not ready, retry later
    RevisionNotReached: 503,
}
"""The most specific class listed in an error's MRO decides (NoBuckets before Conflict)."""

# Errors the router raises itself, by status, with the names the envelope carries.
_HTTP_NAMES = {
    404: "NotFound",
    405: "MethodNotAllowed",
}
_EXTRA_HEADERS: dict[type[FlaggeryError], dict[str, str]] = {
    Unauthorized: {"WWW-Authenticate": 'Bearer realm="flaggery admin"'},
}
INTERNAL_ERROR_MESSAGE = "The server failed to handle the request; the error is in its log."


class ErrorBody(msgspec.Struct, frozen=True):
    name: str
    message: str


class ErrorEnvelope(msgspec.Struct, frozen=True):
    exception: ErrorBody


_encoder = msgspec.json.Encoder()


def status_for(kind: type[FlaggeryError]) -> int:
    for cls in kind.__mro__:
        status = STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
    return 500


def error_body(error: FlaggeryError) -> bytes:
    """The envelope's JSON for ``error``."""
    return _encoder.encode(ErrorEnvelope(ErrorBody(error.name, error.message)))


def error_response(
    status: int, name: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    body = _encoder.encode(ErrorEnvelope(ErrorBody(name, message)))
    return Response(body, status, headers, media_type="application/json")


def _flaggery_error(_request: Request, error: Exception) -> Response:
    assert isinstance(error, FlaggeryError)
    status = status_for(type(error))
    if status == 500:
        raise error  # a FlaggeryError the table does not know is a bug: answer it as one
    return error_response(status, error.name, error.message, error_headers(error))


def error_headers(error: FlaggeryError) -> dict[str, str] | None:
    """The headers an error's response carries besides the envelope's: a challenge for
    Unauthorized, Retry-After for the errors that say when to retry."""
    headers = _EXTRA_HEADERS.get(type(error))
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        headers = {**(headers or {}), "Retry-After": str(retry_after)}
    return headers


def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    headers = dict(error.headers or {})
    message = error.detail
    if error.status_code == 404:
        message = f"No route for {request.method} {request.url.path}: the API is listed at /docs."
    elif error.status_code == 405:
        # Starlette lists a route's methods in set order, which differs between processes
        # (string hashing is randomised): every worker must answer the same bytes.
        if "Allow" in headers:
            headers["Allow"] = ", ".join(sorted(headers["Allow"].split(", ")))
        message = (
            f"{request.method} is not allowed on {request.url.path}; "
            f"allowed: {headers.get('Allow', 'none')}."
        )
    name = _HTTP_NAMES.get(error.status_code, "HTTPError")
    return error_response(error.status_code, name, message, headers)


def _internal_error(request: Request, error: Exception) -> Response:
    # Starlette re-raises the error after this response is sent, and the server logs it with
    # its traceback (without saying which request); this line names the route, once.
    path = request.url.path
    log.error(
        "Internal error answering %s %s: %r", request.method, path, error, extra={"route": path}
    )
    return error_response(500, "InternalError", INTERNAL_ERROR_MESSAGE)


def _client_gone(_request: Request, _error: Exception) -> Response:
    # The client left, or the read timeout cut it off, before its body was complete: nobody
    # reads this answer, and it is not a bug (no traceback). 499 as in nginx, for the metrics.
    return Response(status_code=499)


exception_handlers = {
    FlaggeryError: _flaggery_error,
    HTTPException: _http_error,
    ClientDisconnect: _client_gone,
    Exception: _internal_error,
}
"""For ``Starlette(exception_handlers=...)``; ``Exception`` goes to ServerErrorMiddleware."""
