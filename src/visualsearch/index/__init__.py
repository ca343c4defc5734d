"""Vector indexes derived from the catalog: exact (memory-mapped) and approximate."""

from .base import SearchHits, VectorIndex
from .exact import ExactIndex
from .manager import IndexManager

__all__ = ["ExactIndex", "IndexManager", "SearchHits", "VectorIndex"]
