"""Queries -> ranked results."""

from .engine import SearchEngine, SearchResult

__all__ = ["SearchEngine", "SearchResult"]
