"""API keys: created once, shown once, stored only as a hash, revoked by id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ..auth.keys import READ, ROLES, hash_secret, new_secret, plausible, same_hash
from ..catalog import ApiKeyRecord, Catalog
from ..errors import InvalidInput, NotFound, VisualSearchError

__all__ = ["ApiKeyRecord", "KeyService"]


class KeyService:
    #: Writing last_used_at on every request would serialise readers on the write lock.
    TOUCH_EVERY = timedelta(minutes=1)

    def __init__(self, catalog: Catalog):
        self.keys = catalog.keys

    def create(self, name: str, role: str = READ) -> tuple[ApiKeyRecord, str]:
        """A new key; returns its description and the secret, which is never shown again."""
        if role not in ROLES:
            raise VisualSearchError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
        name = name.strip()
        if not name:
            raise InvalidInput("a key needs a name (who or what uses it)")
        prefix, secret = new_secret()
        return self.keys.add(name[:100], role, prefix, hash_secret(secret)), secret

    def list(self, include_revoked: bool = False) -> list[ApiKeyRecord]:
        return self.keys.list(include_revoked)

    def active_count(self) -> int:
        return self.keys.active_count()

    def revoke(self, key_id: int) -> ApiKeyRecord:
        record = self.keys.revoke(key_id)
        if record is None:
            raise NotFound(f"no API key with id {key_id}")
        return record

    def verify(self, secret: str | None) -> ApiKeyRecord | None:
        """The key's description when ``secret`` is a live key, else None."""
        if secret is None or not plausible(secret):
            return None
        digest = hash_secret(secret)
        found = self.keys.by_hash(digest)
        if found is None:
            return None
        record, stored = found
        if record.revoked or not same_hash(stored, digest):
            return None
        now = datetime.now(UTC)
        last = record.last_used_at
        if last is not None and last.tzinfo is None:  # SQLite returns naive datetimes
            last = last.replace(tzinfo=now.tzinfo)
        if last is None or now - last > self.TOUCH_EVERY:
            self.keys.touch(record.id, now)
        return record
