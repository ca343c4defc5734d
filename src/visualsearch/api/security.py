"""Authentication (API keys with roles), and rate limiting per key.

A key may come as ``Authorization: Bearer <key>``, as ``X-API-Key: <key>``, or
in the ``visualsearch_key`` cookie (so ``<img>`` tags in the web page can load
thumbnails). In local single-user mode (loopback only, see ``visualsearch
serve``) every request acts as admin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from ..auth import ADMIN, READ
from .deps import ServerDep
from .errors import ApiError

COOKIE_NAME = "visualsearch_key"
_bearer = HTTPBearer(auto_error=False, description="An API key from `visualsearch keys create`.")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key from `visualsearch keys create`.")
_cookie = APIKeyCookie(name=COOKIE_NAME, auto_error=False, description="An API key, for browsers.")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key, or the local user when keys are not required."""

    key_id: int | None
    name: str
    role: str
    client: str

    @property
    def bucket(self) -> str:
        return f"key:{self.key_id}" if self.key_id is not None else f"addr:{self.client}"


def _authenticate(
    request: Request,
    server: ServerDep,
    bearer: HTTPAuthorizationCredentials | None,
    header: str | None,
    cookie: str | None,
) -> Principal:
    client = request.client.host if request.client else "unknown"
    if not server.require_keys:
        return Principal(None, "local user", ADMIN, client)
    secret = (bearer.credentials if bearer else None) or header or cookie
    if not secret:
        raise ApiError(
            401,
            "missing_key",
            "this server needs an API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    info = server.keys.verify(secret)
    if info is None:
        raise ApiError(
            401, "invalid_key", "the API key is unknown or has been revoked", headers={"WWW-Authenticate": "Bearer"}
        )
    return Principal(info.id, info.name, info.role, client)


def _requirement(role: str, rate_limited: bool = True) -> Callable[..., Principal]:
    def check(
        request: Request,
        server: ServerDep,
        bearer: HTTPAuthorizationCredentials | None = Security(_bearer),
        header: str | None = Security(_header),
        cookie: str | None = Security(_cookie),
    ) -> Principal:
        principal = _authenticate(request, server, bearer, header, cookie)
        if role == ADMIN and principal.role != ADMIN:
            raise ApiError(403, "forbidden", f"this needs an admin key; key {principal.name!r} can only read")
        # Limits are per key. The local single user (no keys, loopback only) is not limited.
        if not rate_limited or principal.key_id is None:
            return principal
        wait = server.limiter.take(principal.bucket)
        if wait > 0:
            raise ApiError(
                429,
                "rate_limited",
                f"too many requests; retry in {wait:.1f} s",
                {"retry_after_seconds": round(wait, 2)},
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        return principal

    return check


require_read = Depends(_requirement(READ))
require_admin = Depends(_requirement(ADMIN))
#: Thumbnails and originals: a page of results loads dozens at once, and they are plain
#: file reads (cached by the browser), so they do not count against the rate limit.
require_read_media = Depends(_requirement(READ, rate_limited=False))
