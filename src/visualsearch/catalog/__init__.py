"""Catalog of assets and their vectors (SQLite by default, via SQLAlchemy)."""

from .schema import FAILED, INDEXED, Asset, Embedding
from .store import Catalog, FileState, ImageRecord

__all__ = ["Asset", "Catalog", "Embedding", "FAILED", "FileState", "INDEXED", "ImageRecord"]
