"""What crosses the catalog's border: frozen dataclasses, never ORM rows.

A row handed out of a session can lazy-load, expire or be changed and flushed
by whoever holds it; a frozen record is a plain value that every layer above
may keep, compare, cache and serialise (the API builds its response models
from these with ``from_attributes``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

INDEXED = "indexed"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Asset:
    """One image the library knows about, indexed or failed (with the reason)."""

    id: int
    #: Absolute path or URL; unique in the library.
    source: str = ""
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    byte_size: int | None = None
    #: File modification time (seconds since the epoch), for files indexed in place.
    mtime: float | None = None
    added_at: datetime | None = None
    updated_at: datetime | None = None
    status: str = INDEXED
    error: str | None = None
    #: File name shown to people (the upload's name, the URL's last segment, the file name).
    name: str | None = None
    #: ``folder``, ``upload`` or ``url``.
    origin: str | None = None
    #: The library's own copy (uploads, URLs); None when ``source`` is the file itself.
    path: str | None = None
    pixel_sha256: str | None = None
    phash: str | None = None
    #: Filled only by :meth:`Catalog.with_tags` (listings shown to people); empty otherwise.
    tags: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row: Any) -> Asset:
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls) if f.name != "tags"})


@dataclass(frozen=True, slots=True)
class FileState:
    """What the catalog remembers of a file, to tell whether it changed."""

    asset_id: int
    byte_size: int | None
    mtime: float | None
    status: str


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """Metadata of one decoded image, ready to be stored."""

    source: str
    sha256: str
    width: int
    height: int
    format: str
    byte_size: int
    mtime: float | None
    name: str | None = None
    origin: str = "folder"
    #: Where the library keeps its own copy (uploads, URLs); None for files indexed in place.
    path: str | None = None
    tags: tuple[str, ...] = ()
    pixel_sha256: str | None = None
    phash: str | None = None
    #: Text read in the picture (OCR), one line per text line; "" when read and none found,
    #: None when not read (the asset keeps what an earlier reading stored).
    text: str | None = None
    #: Which reader (and settings) read ``text``.
    reader: str | None = None


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """An API key as stored: never the secret, only its hash (which is not handed out either)."""

    id: int
    name: str
    role: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A background job and its progress."""

    id: str
    kind: str
    status: str
    total: int
    done: int
    failed: int
    failures: list[dict[str, Any]]
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    params: dict[str, Any]
