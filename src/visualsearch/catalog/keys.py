"""API keys as stored: a name, a role, a clear prefix and a SHA-256 of the secret."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update

from .records import ApiKeyRecord
from .schema import ApiKeyRow, utcnow

if TYPE_CHECKING:
    from .store import Catalog


def _record(row: ApiKeyRow) -> ApiKeyRecord:
    return ApiKeyRecord(
        row.id, row.name, row.role, row.prefix, row.created_at, row.last_used_at, row.revoked_at is not None
    )


class KeyRepository:
    """Reads and writes ``api_keys``; generating and checking secrets is :mod:`visualsearch.auth`'s job."""

    def __init__(self, catalog: Catalog):
        self._catalog = catalog

    def add(self, name: str, role: str, prefix: str, key_hash: str) -> ApiKeyRecord:
        with self._catalog.write_session() as s, s.begin():
            row = ApiKeyRow(name=name, role=role, prefix=prefix, key_hash=key_hash)
            s.add(row)
            s.flush()
            return _record(row)

    def list(self, include_revoked: bool = False) -> list[ApiKeyRecord]:
        query = select(ApiKeyRow).order_by(ApiKeyRow.id)
        if not include_revoked:
            query = query.where(ApiKeyRow.revoked_at.is_(None))
        with self._catalog.session() as s:
            return [_record(r) for r in s.scalars(query)]

    def active_count(self) -> int:
        with self._catalog.session() as s:
            return int(s.scalar(select(func.count()).select_from(ApiKeyRow).where(ApiKeyRow.revoked_at.is_(None))) or 0)

    def revoke(self, key_id: int) -> ApiKeyRecord | None:
        """Marks the key revoked (once); None when there is no such key."""
        with self._catalog.write_session() as s, s.begin():
            row = s.get(ApiKeyRow, key_id)
            if row is None:
                return None
            if row.revoked_at is None:
                row.revoked_at = utcnow()
            return _record(row)

    def by_hash(self, key_hash: str) -> tuple[ApiKeyRecord, str] | None:
        """The key whose secret hashes to ``key_hash``, with the stored hash (for a constant-time compare)."""
        with self._catalog.session() as s:
            row = s.scalars(select(ApiKeyRow).where(ApiKeyRow.key_hash == key_hash)).first()
            return None if row is None else (_record(row), row.key_hash)

    def touch(self, key_id: int, when: datetime) -> None:
        with self._catalog.write_session() as s, s.begin():
            s.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(last_used_at=when))
