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

READ = "read"
ADMIN = "admin"
#: Each role includes everything the roles before it may do.
ROLES = (READ, ADMIN)
#: Longest string ever taken for a key (real ones are 56 characters).
MAX_KEY_LENGTH = 200


def allows(role: str, needed: str) -> bool:
    """Whether a key of ``role`` may do what needs ``needed``."""
    return ROLES.index(role) >= ROLES.index(needed)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> tuple[str, str]:
    """(prefix shown in listings, the secret itself)."""
    prefix = secrets.token_hex(4)
    return f"vs_{prefix}", f"vs_{prefix}_{secrets.token_urlsafe(32)}"


def plausible(secret: str | None) -> bool:
    """Cheap shape check before any database look-up."""
    return bool(secret and secret.startswith("vs_") and len(secret) <= MAX_KEY_LENGTH)


def same_hash(stored: str, digest: str) -> bool:
    return hmac.compare_digest(stored, digest)
