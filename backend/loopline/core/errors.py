"""The error shape of the API and the handlers that guarantee it.

Every failure leaves the server as
``{"error": {"code": "...", "message": "...", "details": {...}}}`` with a stable
``code``. Anything unforeseen is logged and answered as ``internal_error``; input that
the database refuses (a NUL byte, a duplicate key) is the client's error, not ours.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.exc import DataError, IntegrityError, StatementError

log = logging.getLogger("loopline")


class AppError(Exception):
    """A failure the client can act on, with a stable machine-readable code."""

    status_code = 400

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status_code: int | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}
        if status_code is not None:
            self.status_code = status_code


class NotFound(AppError):
    def __init__(self, entity: str, entity_id: str) -> None:
        super().__init__(
            "not_found",
            f"No {entity} with id {entity_id!r} that you can read.",
            status_code=404,
            details={"entity": entity, "id": entity_id},
        )


class Forbidden(AppError):
    def __init__(self, message: str = "Your role may not do this.") -> None:
        super().__init__("forbidden", message, status_code=403)


class Conflict(AppError):
    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(code, message, status_code=409, details=details)


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    return Response(
        {"error": {"code": code, "message": message, "details": details or {}}},
        status_code=status_code,
        media_type=MediaType.JSON,
        headers=headers,
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}


def _app_error(_: Request[Any, Any, Any], exc: AppError) -> Response[dict[str, Any]]:
    return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


def _validation_error(_: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    return error_response(400, "validation_error", "The request is not valid.", {"fields": exc.extra or []})


def _model_validation_error(_: Request[Any, Any, Any], exc: PydanticValidationError) -> Response[dict[str, Any]]:
    fields = [{"loc": list(e["loc"]), "message": e["msg"]} for e in exc.errors()]
    return error_response(400, "validation_error", "The request is not valid.", {"fields": fields})


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    if isinstance(exc, NotAuthorizedException):
        code = "not_authenticated"
    elif isinstance(exc, PermissionDeniedException):
        code = "forbidden"
    elif isinstance(exc, NotFoundException):
        code = "not_found"
    details = exc.extra if isinstance(exc.extra, dict) else {}
    return error_response(exc.status_code, code, exc.detail, details, exc.headers)


def _integrity_error(_: Request[Any, Any, Any], exc: IntegrityError) -> Response[dict[str, Any]]:
    return error_response(
        409, "constraint_violation", "The change conflicts with existing data (a duplicate or a missing reference)."
    )


class UnstorableValue(ValueError):
    """A value a JSON column cannot hold (an integer beyond 64 bits), found as it is written."""


def _data_error(_: Request[Any, Any, Any], exc: DataError) -> Response[dict[str, Any]]:
    return error_response(400, "invalid_value", "A value cannot be stored as given.")


def _statement_error(request: Request[Any, Any, Any], exc: StatementError) -> Response[dict[str, Any]]:
    # The database's own refusals arrive as DataError; a value our JSON encoder refuses before
    # the database sees it is the same mistake of the caller's.
    if isinstance(exc.orig, UnstorableValue):
        return error_response(400, "invalid_value", "A value cannot be stored as given.")
    return _unexpected(request, exc)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "Something went wrong on our side.")


exception_handlers: dict[type[Exception] | int, Any] = {
    AppError: _app_error,
    ValidationException: _validation_error,
    PydanticValidationError: _model_validation_error,
    HTTPException: _http_error,
    IntegrityError: _integrity_error,
    DataError: _data_error,
    StatementError: _statement_error,
    Exception: _unexpected,
}
