"""Who may do what: API keys with roles, and per-key rate limits."""

from .keys import ADMIN, READ, ROLES, ApiKeyInfo, KeyStore
from .ratelimit import RateLimiter

__all__ = ["ADMIN", "READ", "ROLES", "ApiKeyInfo", "KeyStore", "RateLimiter"]
