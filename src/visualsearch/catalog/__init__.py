"""Catalog of assets and their vectors (SQLite by default, via SQLAlchemy)."""

from .schema import FAILED, INDEXED, ApiKey, Asset, AssetTag, Embedding, Job
from .store import AssetFilter, Catalog, FileState, ImageRecord, normalise_tag

__all__ = ["ApiKey", "Asset", "AssetFilter", "AssetTag", "Catalog", "Embedding", "FAILED", "FileState", "INDEXED",
           "ImageRecord", "Job", "normalise_tag"]
