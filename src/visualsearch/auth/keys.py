"""API keys: created once, shown once, stored only as a hash.

A key looks like ``vs_<8 hex>_<43 url-safe chars>``: 256 random bits, so a
plain SHA-256 is the right hash (slow password hashes exist for guessable
secrets; these are not guessable). The first part is kept in clear as a
prefix so that a listing can tell keys apart.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from ..catalog import ApiKey, Catalog
from ..catalog.schema import utcnow
from ..errors import InvalidInput, NotFound, VisualSearchError

READ = "read"
ADMIN = "admin"
#: Each role includes everything the roles before it may do.
ROLES = (READ, ADMIN)


@dataclass(frozen=True)
class ApiKeyInfo:
    id: int
    name: str
    role: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool

    def allows(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _info(row: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(row.id, row.name, row.role, row.prefix, row.created_at, row.last_used_at,
                      row.revoked_at is not None)


class KeyStore:
    #: Writing last_used_at on every request would serialise readers on the write lock.
    TOUCH_EVERY = timedelta(minutes=1)

    def __init__(self, catalog: Catalog):
        self.catalog = catalog

    def create(self, name: str, role: str = READ) -> tuple[ApiKeyInfo, str]:
        """A new key; returns its description and the secret, which is never shown again."""
        if role not in ROLES:
            raise VisualSearchError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
        name = name.strip()
        if not name:
            raise InvalidInput("a key needs a name (who or what uses it)")
        prefix = secrets.token_hex(4)
        secret = f"vs_{prefix}_{secrets.token_urlsafe(32)}"
        with self.catalog.write_session() as s, s.begin():
            row = ApiKey(name=name[:100], role=role, prefix=f"vs_{prefix}", key_hash=_hash(secret))
            s.add(row)
            s.flush()
            info = _info(row)
        return info, secret

    def list(self, include_revoked: bool = False) -> list[ApiKeyInfo]:
        query = select(ApiKey).order_by(ApiKey.id)
        if not include_revoked:
            query = query.where(ApiKey.revoked_at.is_(None))
        with self.catalog.session() as s:
            return [_info(r) for r in s.scalars(query)]

    def active_count(self) -> int:
        with self.catalog.session() as s:
            return int(s.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None))))

    def revoke(self, key_id: int) -> ApiKeyInfo:
        with self.catalog.write_session() as s, s.begin():
            row = s.get(ApiKey, key_id)
            if row is None:
                raise NotFound(f"no API key with id {key_id}")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
            return _info(row)

    def verify(self, secret: str) -> ApiKeyInfo | None:
        """The key's description when ``secret`` is a live key, else None."""
        if not secret or not secret.startswith("vs_") or len(secret) > 200:
            return None
        digest = _hash(secret)
        with self.catalog.session() as s:
            row = s.scalars(select(ApiKey).where(ApiKey.key_hash == digest)).first()
        if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, digest):
            return None
        now = utcnow()
        last = row.last_used_at
        if last is not None and last.tzinfo is None:  # SQLite returns naive datetimes
            last = last.replace(tzinfo=now.tzinfo)
        if last is None or now - last > self.TOUCH_EVERY:
            with self.catalog.write_session() as s, s.begin():
                s.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
        return _info(row)
