"""Vector indexes derived from the catalog: exact (memory-mapped), HNSW, pgvector and Milvus backends."""

from .base import IndexBackend, SearchHits, VectorIndex
from .exact import ExactIndex
from .manager import IndexManager
from .registry import BACKENDS, open_backend

__all__ = ["BACKENDS", "ExactIndex", "IndexBackend", "IndexManager", "SearchHits", "VectorIndex", "open_backend"]
