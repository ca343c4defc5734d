"""Ranking vector hits into pages of results (the query side is :mod:`visualsearch.services.search`)."""

from .ranking import SearchResult, ranked

__all__ = ["SearchResult", "ranked"]
