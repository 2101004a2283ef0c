"""One JSON shape for every error the API returns, whoever raised it.

    {"error": {"type": "ConflictError", "message": "...", "where": "audience VIPs",
               "hint": "...", "status": 409}}

Corral's own errors map to a status by who must act (the table below, most specific class
first); FastAPI's request validation becomes a `ValidationError` with status 422 and each
problem's place in `where`; Starlette's HTTP exceptions (an unknown route, a wrong method)
keep their status. Anything else is a bug: it is logged with its traceback and answered
with a 500 that says nothing about the internals.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from corral.errors import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    CorralError,
    DefinitionError,
    DestinationError,
    PermissionDeniedError,
    UnknownReferenceError,
    WarehouseError,
)

logger = logging.getLogger(__name__)


class PreconditionRequiredError(CorralError):
    """A change was sent without `If-Match`, so it could overwrite someone else's change."""


class PayloadTooLargeError(CorralError):
    """A request asked for more than the API hands out at once."""


# Most specific first: UnknownReferenceError is a DefinitionError.
STATUS_BY_ERROR: tuple[tuple[type[CorralError], int], ...] = (
    (UnknownReferenceError, 404),
    (DefinitionError, 422),
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (PreconditionRequiredError, 428),
    (ConflictError, 409),
    (WarehouseError, 502),
    (DestinationError, 502),
    (ConfigurationError, 500),
)

_HTTP_TYPES = {
    400: "BadRequest",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "ConflictError",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "ValidationError",
    428: "PreconditionRequiredError",
    429: "TooManyRequests",
}


class ErrorDetail(BaseModel):
    type: str
    message: str
    where: str | None = None
    hint: str | None = None
    status: int


class ErrorBody(BaseModel):
    """What every failed request returns."""

    error: ErrorDetail


# For `responses=` on routers, so the OpenAPI document shows the shape of every error.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (401, "No valid session or API token"),
        (403, "Signed in, but without the permission this needs"),
        (404, "No such resource"),
        (409, "The resource changed since it was read, or is in use"),
        (422, "The request or the definition in it is invalid"),
        (428, "The change needs an If-Match header"),
        (502, "The warehouse or the destination failed"),
    )
}


def status_of(error: CorralError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return status
    return 500


def error_response(
    status: int,
    type_: str,
    message: str,
    *,
    where: str | None = None,
    hint: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    detail = ErrorDetail(type=type_, message=message, where=where, hint=hint, status=status)
    return JSONResponse(
        ErrorBody(error=detail).model_dump(mode="json"), status_code=status, headers=headers
    )


def _corral_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, CorralError)
    status = status_of(error)
    if status >= 500 and not isinstance(error, WarehouseError | DestinationError):
        logger.error("%s %s failed: %s", request.method, request.url.path, error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return error_response(
        status,
        type(error).__name__,
        error.message,
        where=_relative(request, error.where),
        hint=error.hint,
        headers=headers,
    )


def _relative(request: Request, where: str | None) -> str | None:
    """A place in the workspace without the server's own path to it."""
    studio = getattr(request.app.state, "studio", None)
    root = getattr(studio, "root", None)
    if where is None or root is None:
        return where
    return where.replace(f"{root}/", "")


def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = error.errors()
    lines = []
    for problem in problems[:10]:
        place = " > ".join(str(p) for p in problem.get("loc", ()))
        lines.append(f"{place}: {problem.get('msg', 'invalid')}")
    first = problems[0] if problems else {}
    where = " > ".join(str(p) for p in first.get("loc", ())) or None
    return error_response(
        422,
        "ValidationError",
        "the request is invalid:\n  " + "\n  ".join(lines),
        where=where,
        hint="see /api/v1/docs for what this endpoint takes",
    )


def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    status = error.status_code
    if status == 404 and error.detail == "Not Found":
        message = f"there is no {request.method} {request.url.path}"
        hint: str | None = "see /api/v1/docs for every endpoint"
    else:
        message, hint = str(error.detail), None
    headers = dict(error.headers) if error.headers else None
    return error_response(
        status, _HTTP_TYPES.get(status, "HTTPError"), message, hint=hint, headers=headers
    )


def _unexpected(request: Request, error: Exception) -> JSONResponse:
    logger.exception("%s %s failed with a bug", request.method, request.url.path)
    return error_response(
        500,
        "InternalError",
        "Corral failed unexpectedly; the server log has the details",
        hint="please report it with the time of the request",
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CorralError, _corral_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
