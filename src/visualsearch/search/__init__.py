"""Ranking vector hits into pages of results, and the text query language (:mod:`.query`).

The query side (which vector to search with) is :mod:`visualsearch.services.search`.
"""

from .query import Clause, TextQuery, combine, parse
from .ranking import SearchResult, page_of, ranked

__all__ = ["Clause", "SearchResult", "TextQuery", "combine", "page_of", "parse", "ranked"]
