"""Exact copies, near-duplicates and look-alike groups, and the trash folder extras are moved to."""

from .finder import (
    DEFAULT_GROUP_THRESHOLD,
    DEFAULT_THRESHOLD,
    CheckStopped,
    DuplicateGroup,
    Match,
    Member,
    find_duplicates,
    find_lookalikes,
    keeper_order,
    matches_for,
)
from .trash import TrashedFile, TrashFolder
from .verify import PixelVerifier, RecentCache, Verdict

__all__ = [
    "CheckStopped",
    "DEFAULT_GROUP_THRESHOLD",
    "DEFAULT_THRESHOLD",
    "DuplicateGroup",
    "Match",
    "Member",
    "PixelVerifier",
    "RecentCache",
    "TrashFolder",
    "TrashedFile",
    "Verdict",
    "find_duplicates",
    "find_lookalikes",
    "keeper_order",
    "matches_for",
]
