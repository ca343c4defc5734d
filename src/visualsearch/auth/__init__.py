"""API key format, roles and hashing, and rate limiting per key (stored by the catalog, managed by
:mod:`visualsearch.services.keys`)."""

from .keys import ADMIN, READ, ROLES, allows, hash_secret, new_secret
from .ratelimit import RateLimiter

__all__ = ["ADMIN", "READ", "ROLES", "RateLimiter", "allows", "hash_secret", "new_secret"]
