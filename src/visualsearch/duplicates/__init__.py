"""Exact copies, near-duplicates and look-alike groups, and moving extras to a trash folder."""

from .finder import (DEFAULT_GROUP_THRESHOLD, DEFAULT_THRESHOLD, DuplicateGroup, Match, Member, find_duplicates,
                     find_lookalikes, keeper_order, matches_for)
from .trash import Trash

__all__ = ["DEFAULT_GROUP_THRESHOLD", "DEFAULT_THRESHOLD", "DuplicateGroup", "Match", "Member", "Trash", "find_duplicates",
           "find_lookalikes", "keeper_order", "matches_for"]
