"""The catalog: what is in the library, and every asset's vectors.

SQLite through SQLAlchemy by default (WAL mode, so readers never block the
indexer). The schema is versioned with Alembic; opening a catalog brings it
up to date. The catalog is the source of truth: vector indexes are derived
from it and can always be rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, delete, event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from .schema import FAILED, INDEXED, Asset, Embedding, utcnow

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


@dataclass(frozen=True)
class FileState:
    """What the catalog remembers of a file, to tell whether it changed."""

    asset_id: int
    byte_size: int | None
    mtime: float | None
    status: str


@dataclass
class ImageRecord:
    """Metadata of one decoded image, ready to be stored."""

    source: str
    sha256: str
    width: int
    height: int
    format: str
    byte_size: int
    mtime: float | None


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str) -> Engine:
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (no-op when already there)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


class Catalog:
    """Assets and embeddings of one library."""

    def __init__(self, url_or_path: str | Path):
        url = str(url_or_path)
        if "://" not in url:
            Path(url).parent.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{url}"
        self.engine = make_engine(url)
        migrate(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self._sessions()

    def close(self) -> None:
        self.engine.dispose()

    # -- reading -------------------------------------------------------------------
    def get(self, asset_id: int) -> Asset | None:
        with self.session() as s:
            return s.get(Asset, asset_id)

    def get_many(self, asset_ids: Iterable[int]) -> dict[int, Asset]:
        ids = list(asset_ids)
        out: dict[int, Asset] = {}
        with self.session() as s:
            for start in range(0, len(ids), 500):
                rows = s.scalars(select(Asset).where(Asset.id.in_(ids[start:start + 500])))
                out.update({a.id: a for a in rows})
        return out

    def file_states(self, prefix: str | None = None) -> dict[str, FileState]:
        """source -> state for every asset (under ``prefix`` when given)."""
        query = select(Asset.source, Asset.id, Asset.byte_size, Asset.mtime, Asset.status)
        if prefix:
            query = query.where(Asset.source.startswith(prefix, autoescape=True))
        with self.session() as s:
            return {src: FileState(i, size, mtime, status) for src, i, size, mtime, status in s.execute(query)}

    def counts(self) -> dict[str, int]:
        with self.session() as s:
            rows = s.execute(select(Asset.status, func.count()).group_by(Asset.status)).all()
        return {status: n for status, n in rows}

    def failures(self, limit: int = 100) -> list[Asset]:
        with self.session() as s:
            return list(s.scalars(select(Asset).where(Asset.status == FAILED).order_by(Asset.id).limit(limit)))

    def embedding_ids(self, model_id: str, space: str) -> tuple[np.ndarray, np.ndarray]:
        """(asset ids, embedding row ids) of every vector of one model and space."""
        with self.session() as s:
            rows = s.execute(
                select(Embedding.asset_id, Embedding.id)
                .where(Embedding.model_id == model_id, Embedding.space == space)
                .order_by(Embedding.asset_id)
            ).all()
        if not rows:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        arr = np.asarray(rows, dtype=np.int64)
        return arr[:, 0], arr[:, 1]

    def vectors(self, model_id: str, space: str, asset_ids: Iterable[int] | None = None,
                chunk: int = 500) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (asset ids, float32 matrix) chunks of stored vectors."""
        base = select(Embedding.asset_id, Embedding.vector).where(
            Embedding.model_id == model_id, Embedding.space == space)
        with self.session() as s:
            if asset_ids is None:
                batches: Iterable = [s.execute(base.order_by(Embedding.asset_id)).yield_per(chunk)]
            else:
                ids = list(asset_ids)
                batches = (s.execute(base.where(Embedding.asset_id.in_(ids[i:i + chunk])))
                           for i in range(0, len(ids), chunk))
            for result in batches:
                rows = []
                for row in result:
                    rows.append(row)
                    if len(rows) == chunk:
                        yield _to_arrays(rows)
                        rows = []
                if rows:
                    yield _to_arrays(rows)

    def vector(self, asset_id: int, model_id: str, space: str) -> np.ndarray | None:
        with self.session() as s:
            blob = s.scalar(select(Embedding.vector).where(
                Embedding.asset_id == asset_id, Embedding.model_id == model_id, Embedding.space == space))
        return None if blob is None else np.frombuffer(blob, dtype="<f4").copy()

    def assets_missing_embeddings(self, model_id: str, space: str) -> list[str]:
        """Sources of indexed assets that have no vector in this model yet (model switch)."""
        has = select(Embedding.asset_id).where(Embedding.model_id == model_id, Embedding.space == space)
        with self.session() as s:
            return list(s.scalars(select(Asset.source).where(Asset.status == INDEXED, Asset.id.not_in(has))))

    # -- writing -------------------------------------------------------------------
    def write_batch(self, indexed: list[tuple[ImageRecord, dict[str, np.ndarray]]], failed: list[tuple[str, str, int | None, float | None]],
                    model_id: str) -> None:
        """Store one batch in a single transaction: all of it lands, or none of it.

        ``indexed``: (record, {space: vector}) per image. ``failed``: (source,
        reason, byte size, mtime) per file that could not be used.
        """
        with self.session() as s, s.begin():
            sources = [r.source for r, _ in indexed] + [f[0] for f in failed]
            existing = {a.source: a for a in s.scalars(select(Asset).where(Asset.source.in_(sources)))}
            for record, spaces in indexed:
                asset = existing.get(record.source)
                if asset is None:
                    asset = Asset(source=record.source, status=INDEXED)
                    s.add(asset)
                asset.sha256, asset.width, asset.height = record.sha256, record.width, record.height
                asset.format, asset.byte_size, asset.mtime = record.format, record.byte_size, record.mtime
                asset.status, asset.error, asset.updated_at = INDEXED, None, utcnow()
                s.flush()
                s.execute(delete(Embedding).where(Embedding.asset_id == asset.id, Embedding.model_id == model_id))
                for space, vec in spaces.items():
                    vec = np.ascontiguousarray(vec, dtype="<f4")
                    s.add(Embedding(asset_id=asset.id, model_id=model_id, space=space, dim=vec.shape[0],
                                    vector=vec.tobytes()))
            for source, reason, size, mtime in failed:
                asset = existing.get(source)
                if asset is None:
                    asset = Asset(source=source, status=FAILED)
                    s.add(asset)
                else:
                    s.execute(delete(Embedding).where(Embedding.asset_id == asset.id))
                asset.status, asset.error = FAILED, reason
                asset.byte_size, asset.mtime, asset.updated_at = size, mtime, utcnow()

    def remove(self, asset_ids: Iterable[int]) -> int:
        ids = list(asset_ids)
        with self.session() as s, s.begin():
            for i in range(0, len(ids), 500):
                s.execute(delete(Embedding).where(Embedding.asset_id.in_(ids[i:i + 500])))
                s.execute(delete(Asset).where(Asset.id.in_(ids[i:i + 500])))
        return len(ids)


def _to_arrays(rows) -> tuple[np.ndarray, np.ndarray]:
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    matrix = np.stack([np.frombuffer(r[1], dtype="<f4") for r in rows]).astype(np.float32, copy=False)
    return ids, matrix
