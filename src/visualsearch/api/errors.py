"""One JSON shape for every error: ``{"error": {"code", "message", "details"?}}``.

Statuses follow what went wrong, never a stack trace: 400 bad request or
refused URL, 401/403 keys, 404 unknown, 409 duplicate, 413 too large, 415
not an image, 422 invalid input or corrupt image, 429 rate limited, 503 busy
(with Retry-After), 507 disk full.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..catalog import DatabaseError
from ..config import megabytes
from ..errors import (
    Busy,
    CheckingCopies,
    ConfigError,
    DecodeError,
    Duplicate,
    FetchError,
    ImageTooLarge,
    InvalidInput,
    ModelNotInstalled,
    ModelPinned,
    ModelUnavailable,
    NotFound,
    SourceChanged,
    StorageFull,
    UnsupportedImage,
    VisualSearchError,
)

log = logging.getLogger("visualsearch.api")

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
    507: "insufficient_storage",
}


class ApiError(StarletteHTTPException):
    """An HTTP error with a stable machine-readable ``code`` (and optional details)."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(status_code, message, headers)
        self.code = code
        self.details = details


class RequestTooLarge(ApiError):
    def __init__(self, limit: int):
        super().__init__(
            413, "too_large", f"request body is larger than the limit of {megabytes(limit)}", {"limit_bytes": limit}
        )


def status_of(exc: VisualSearchError) -> int:
    if isinstance(exc, FetchError):
        return 400
    if isinstance(exc, ImageTooLarge):
        return 413
    if isinstance(exc, UnsupportedImage):
        return 415
    if isinstance(exc, DecodeError):
        return 422
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, (Duplicate, SourceChanged, ModelPinned, ModelUnavailable, ModelNotInstalled)):
        return 409
    if isinstance(exc, ConfigError):
        return 500
    if isinstance(exc, Busy):
        return 503
    if isinstance(exc, InvalidInput):
        return 422
    if isinstance(exc, StorageFull):
        return 507
    return 400


def storage_full(exc: BaseException) -> StorageFull | None:
    """A full disk or database anywhere in the exception's chain, as a :class:`StorageFull`."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StorageFull):
            return current
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            where = current.filename
            return StorageFull(
                f"the disk is full{f' (writing {where})' if where else ''}; nothing was lost, "
                "free some space and try again",
                str(where) if where else None,
            )
        if isinstance(current, sqlite3.OperationalError) and "full" in str(current):
            return StorageFull("the catalog's disk is full; nothing was lost, free some space and try again")
        current = current.__cause__ or current.__context__ or getattr(current, "orig", None)
    return None


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def details_of(exc: VisualSearchError) -> dict[str, Any] | None:
    if isinstance(exc, FetchError):
        return {"reason": exc.reason}
    if isinstance(exc, StorageFull):
        return {"path": exc.path} if exc.path else None
    if isinstance(exc, SourceChanged):
        return {"asset_id": exc.asset_id}
    if isinstance(exc, CheckingCopies):
        return {"done": exc.done, "total": exc.total}
    if isinstance(exc, Duplicate) and exc.asset_id > 0:
        details: dict[str, Any] = {"asset_id": exc.asset_id}
        similarity = getattr(exc, "similarity", None)  # set by NearDuplicate
        if similarity is not None:
            details["similarity"] = similarity
        return details
    return None


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(jsonable_encoder(error_body(code, message, details)), status_code=status, headers=headers)


def product_error_response(exc: VisualSearchError) -> JSONResponse:
    headers = {"Retry-After": str(max(1, round(exc.retry_after)))} if isinstance(exc, Busy) else None
    return error_response(status_of(exc), exc.code, str(exc), details_of(exc), headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(VisualSearchError)
    async def _product_error(_: Request, exc: VisualSearchError) -> JSONResponse:
        return product_error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = getattr(exc, "code", None) or _STATUS_CODES.get(exc.status_code, "error")
        return error_response(
            exc.status_code, code, str(exc.detail), getattr(exc, "details", None), getattr(exc, "headers", None)
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")} for e in exc.errors()
        ]
        first = problems[0] if problems else {"where": "request", "problem": "invalid"}
        return error_response(422, "invalid_request", f"{first['where']}: {first['problem']}", {"problems": problems})

    async def _maybe_full(_: Request, exc: Exception) -> JSONResponse:
        # Registered for the exception types a full disk shows up as (handled here, the
        # connection stays usable); anything else goes on to the 500 handler below.
        full = storage_full(exc)
        if full is None:
            raise exc
        log.error("disk full: %s", full)
        return product_error_response(full)

    app.add_exception_handler(OSError, _maybe_full)
    app.add_exception_handler(DatabaseError, _maybe_full)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error while serving a request")
        return error_response(500, "internal_error", "something went wrong on the server; it has been logged")
