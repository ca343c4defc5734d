"""Tables of the catalog. Changing them needs a migration in ``migrations/versions``."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (BigInteger, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

INDEXED = "indexed"
FAILED = "failed"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Asset(Base):
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
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow,
                                                 nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    error: Mapped[str | None] = mapped_column(Text)


class Embedding(Base):
    """One vector of one asset in one model's space.

    ``id`` grows with every write, so an index can catch up by asking for
    rows newer than the last one it saw.
    """

    __tablename__ = "embeddings"
    __table_args__ = (
        UniqueConstraint("asset_id", "model_id", "space", name="uq_embedding_asset_model_space"),
        Index("ix_embedding_model_space", "model_id", "space", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), nullable=False)
    model_id: Mapped[str] = mapped_column(String(200), nullable=False)
    space: Mapped[str] = mapped_column(String(32), nullable=False)
    dim: Mapped[int] = mapped_column(Integer, nullable=False)
    #: float32 little-endian bytes.
    vector: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
