"""The catalog: every table of a library and all of its SQL (SQLite by default, via SQLAlchemy).

Callers get frozen records (:mod:`.records`), never ORM rows.
"""

from sqlalchemy.exc import SQLAlchemyError as DatabaseError  # what a failing database raises, for callers

from .jobs import DONE, QUEUED, RUNNING
from .jobs import FAILED as JOB_FAILED
from .records import FAILED, INDEXED, ApiKeyRecord, Asset, FileState, ImageRecord, JobRecord
from .store import AssetFilter, Catalog, normalise_tag

__all__ = [
    "ApiKeyRecord",
    "Asset",
    "AssetFilter",
    "Catalog",
    "DONE",
    "DatabaseError",
    "FAILED",
    "FileState",
    "INDEXED",
    "ImageRecord",
    "JOB_FAILED",
    "JobRecord",
    "QUEUED",
    "RUNNING",
    "normalise_tag",
]
