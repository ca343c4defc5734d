"""Tables of the catalog. Changing them needs a migration in ``migrations/versions``."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .records import FAILED, INDEXED

__all__ = [
    "FAILED",
    "INDEXED",
    "AssetRow",
    "AssetTag",
    "AssetText",
    "AssetWord",
    "ApiKeyRow",
    "Base",
    "Embedding",
    "JobRow",
    "LibraryState",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class AssetRow(Base):
    """One image the library knows about, indexed or failed (with the reason)."""

    __tablename__ = "assets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Absolute path or URL; unique, so re-indexing never duplicates rows.
    source: Mapped[str] = mapped_column(Text, unique=True, nullable=False)
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    format: Mapped[str | None] = mapped_column(String(16))
    byte_size: Mapped[int | None] = mapped_column(BigInteger)
    #: File modification time (seconds since the epoch); with byte_size, tells changed files.
    mtime: Mapped[float | None] = mapped_column(Float)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False, index=True)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, nullable=False
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    error: Mapped[str | None] = mapped_column(Text)
    #: File name shown to people (the upload's name, the URL's last segment, the file name).
    name: Mapped[str | None] = mapped_column(Text)
    #: How the asset came in: ``folder``, ``upload`` or ``url``.
    origin: Mapped[str | None] = mapped_column(String(16))
    #: The file holding the bytes when the library keeps its own copy (uploads, URLs);
    #: None when ``source`` is itself the file (folders indexed in place).
    path: Mapped[str | None] = mapped_column(Text)
    #: SHA-256 of the decoded pixels: equal for the same picture in different files.
    pixel_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    #: 64-bit perceptual hash (16 hex digits).
    phash: Mapped[str | None] = mapped_column(String(16))


class AssetTag(Base):
    """A free-text label on an asset (lower-cased, trimmed)."""

    __tablename__ = "asset_tags"

    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class AssetText(Base):
    """The words a text reader (OCR) found in an asset's picture, as read, one line per text line.

    An asset read with nothing found has a row with empty ``text``: it is not read again.
    ``reader`` names the reader and its settings, so a better reader can tell what it has not read.
    """

    __tablename__ = "asset_texts"

    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    reader: Mapped[str] = mapped_column(String(64), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)


class AssetWord(Base):
    """One word of an asset's read text, normalised (:func:`visualsearch.catalog.words.words_of`), for lookup."""

    __tablename__ = "asset_words"

    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    word: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class ApiKeyRow(Base):
    """An API key; only a SHA-256 of the secret is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    #: First characters of the key, to tell keys apart in listings without revealing them.
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class JobRow(Base):
    """A background indexing job (folder or large upload), with its progress."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    #: JSON: what to do (folder path, staged files...).
    params: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    total: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    done: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    failed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    #: JSON list of {"name", "error"} for files that could not be indexed (first 1,000).
    failures: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PairVerdictRow(Base):
    """Whether two files (by SHA-256, the smaller first) are the same picture, by one pixel-check method.

    Files with those bytes always give the same verdict, so it is kept across runs and processes;
    a new ``method`` (the check's version) makes old verdicts unused.
    """

    __tablename__ = "pair_verdicts"

    first_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    second_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    method: Mapped[str] = mapped_column(String(32), primary_key=True)
    same: Mapped[bool] = mapped_column(Boolean, nullable=False)


class LibraryState(Base):
    """Small library-wide values every process must agree on (JSON text), e.g. the active model."""

    __tablename__ = "library_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)


class Embedding(Base):
    """One vector of one asset in one model's space.

    ``id`` grows with every write and is never reused, so an index can catch up by
    asking for rows newer than the last one it saw.
    """

    __tablename__ = "embeddings"
    __table_args__ = (
        UniqueConstraint("asset_id", "model_id", "space", name="uq_embedding_asset_model_space"),
        Index("ix_embedding_model_space", "model_id", "space", "id"),
        # Ids are never reused (migration 0008): an index tells a rewritten vector by its new id.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), nullable=False)
    model_id: Mapped[str] = mapped_column(String(200), nullable=False)
    space: Mapped[str] = mapped_column(String(32), nullable=False)
    dim: Mapped[int] = mapped_column(Integer, nullable=False)
    #: float32 little-endian bytes.
    vector: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
