"""The catalog: what is in the library, and every asset's vectors.

SQLite through SQLAlchemy by default (WAL mode, so readers never block the
indexer). The schema is versioned with Alembic; opening a catalog brings it
up to date. The catalog is the source of truth: vector indexes are derived
from it and can always be rebuilt.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from alembic import command
from alembic.config import Config
from sqlalchemy import (
    BigInteger,
    cast,
    create_engine,
    delete,
    event,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.selectable import Select

from .collation import bytewise as _bytewise
from .jobs import JobRepository
from .keys import KeyRepository
from .pgvector import PgVectorQueries, pg_literal
from .records import Asset, FileState, ImageRecord
from .schema import FAILED, INDEXED, AssetRow, AssetTag, Embedding, LibraryState, utcnow
from .texts import TextRepository, delete_texts, put_texts
from .verdicts import VerdictRepository

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

SelectT = TypeVar("SelectT", bound=Select[Any])


@dataclass(frozen=True)
class AssetFilter:
    """Conditions shared by listing and filtered search. Empty means everything."""

    #: Source starts with this (a folder path or URL prefix).
    prefix: str | None = None
    format: str | None = None
    added_after: datetime | None = None
    added_before: datetime | None = None
    tag: str | None = None
    #: Case-insensitive substring of the name, source or a tag.
    q: str | None = None
    status: str | None = INDEXED

    def is_empty(self) -> bool:
        return not any((self.prefix, self.format, self.added_after, self.added_before, self.tag, self.q))

    def apply(self, query: SelectT) -> SelectT:
        if self.status:
            query = query.where(AssetRow.status == self.status)
        if self.prefix:
            # The range lets the (status, source) index find the folder; LIKE states the meaning.
            source = _bytewise(AssetRow.source)
            query = query.where(
                source >= self.prefix,
                source < self.prefix + "\U0010ffff",
                AssetRow.source.startswith(self.prefix, autoescape=True),
            )
        if self.format:
            query = query.where(func.upper(AssetRow.format) == self.format.upper())
        if self.added_after:
            query = query.where(AssetRow.added_at >= _utc(self.added_after))
        if self.added_before:
            query = query.where(AssetRow.added_at < _utc(self.added_before))
        if self.tag:
            query = query.where(
                AssetRow.id.in_(select(AssetTag.asset_id).where(AssetTag.tag == normalise_tag(self.tag)))
            )
        if self.q:
            needle = self.q.strip().lower()
            query = query.where(
                or_(
                    func.lower(AssetRow.name).contains(needle, autoescape=True),
                    func.lower(AssetRow.source).contains(needle, autoescape=True),
                    AssetRow.id.in_(select(AssetTag.asset_id).where(AssetTag.tag.contains(needle, autoescape=True))),
                )
            )
        return query


def _utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC; stored times are UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def normalise_tag(tag: str) -> str:
    return " ".join(tag.strip().lower().split())[:64]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_manual_transactions(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (see _sqlite_begin).
    dbapi_conn.isolation_level = None


def _sqlite_begin(conn: Connection) -> None:
    # Writers take the write lock up front (BEGIN IMMEDIATE), so a transaction that
    # reads and then writes never fails with "database is locked" when another writer
    # committed in between; busy_timeout then simply queues concurrent writers.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("sqlite_write") else "BEGIN")


def make_engine(url: str) -> Engine:
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "connect", _sqlite_manual_transactions)
        event.listen(engine, "begin", _sqlite_begin)
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
        self._write_sessions = sessionmaker(self.engine.execution_options(sqlite_write=True), expire_on_commit=False)
        #: Repositories of the other tables; all SQL of the library lives in this package.
        self.keys = KeyRepository(self)
        self.jobs = JobRepository(self)
        self.verdicts = VerdictRepository(self)
        self.texts = TextRepository(self)
        self.pgvector = PgVectorQueries(self)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def in_database_vectors(self) -> bool:
        """True when vectors are also stored as pgvector values and searched in the database."""
        return self.dialect == "postgresql"

    def session(self) -> Session:
        """A session for reading (and small single-statement writes)."""
        return self._sessions()

    def write_session(self) -> Session:
        """A session whose transactions hold the write lock from their first statement."""
        return self._write_sessions()

    def close(self) -> None:
        self.engine.dispose()

    # -- reading -------------------------------------------------------------------
    def ping(self) -> None:
        """Raises when the database cannot be reached (readiness checks)."""
        with self.session() as s:
            s.execute(text("select 1"))

    def get(self, asset_id: int) -> Asset | None:
        with self.session() as s:
            row = s.get(AssetRow, asset_id)
            return None if row is None else Asset.from_row(row)

    def get_many(self, asset_ids: Iterable[int]) -> dict[int, Asset]:
        ids = list(asset_ids)
        out: dict[int, Asset] = {}
        with self.session() as s:
            for start in range(0, len(ids), 500):
                rows = s.scalars(select(AssetRow).where(AssetRow.id.in_(ids[start : start + 500])))
                out.update({a.id: Asset.from_row(a) for a in rows})
        return out

    def indexed_assets(self) -> dict[int, Asset]:
        """Every indexed asset by id (for whole-library work such as finding duplicates)."""
        with self.session() as s:
            return {a.id: Asset.from_row(a) for a in s.scalars(select(AssetRow).where(AssetRow.status == INDEXED))}

    def with_tags(self, assets: Iterable[Asset]) -> list[Asset]:
        """The same assets with their tags filled in (one query for all of them)."""
        assets = list(assets)
        tags = self.tags_of([a.id for a in assets])
        return [replace(a, tags=tuple(tags.get(a.id, ()))) for a in assets]

    def file_states(self, prefix: str | None = None) -> dict[str, FileState]:
        """source -> state for every asset (under ``prefix`` when given)."""
        query = select(AssetRow.source, AssetRow.id, AssetRow.byte_size, AssetRow.mtime, AssetRow.status)
        if prefix:
            query = query.where(AssetRow.source.startswith(prefix, autoescape=True))
        with self.session() as s:
            return {src: FileState(i, size, mtime, status) for src, i, size, mtime, status in s.execute(query)}

    def counts(self) -> dict[str, int]:
        with self.session() as s:
            rows = s.execute(select(AssetRow.status, func.count()).group_by(AssetRow.status)).all()
        return {status: n for status, n in rows}

    def failures(self, limit: int = 100) -> list[Asset]:
        with self.session() as s:
            return [
                Asset.from_row(a)
                for a in s.scalars(select(AssetRow).where(AssetRow.status == FAILED).order_by(AssetRow.id).limit(limit))
            ]

    def _int_pairs(self, statement: Any) -> np.ndarray:
        """The rows of a two-integer query as an [n, 2] int64 array.

        Read on a plain connection and converted with ``fromiter``: ``np.asarray`` over
        SQLAlchemy rows took 8 µs a row (8 s for a million-vector index's id list), this 1.
        """
        with self.engine.connect() as conn:
            rows = conn.execute(statement).all()
        flat = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=2 * len(rows))
        return flat.reshape(-1, 2)

    def embedding_ids(self, model_id: str, space: str) -> tuple[np.ndarray, np.ndarray]:
        """(asset ids, embedding row ids) of every vector of one model and space, by asset id."""
        pairs = self._int_pairs(
            select(Embedding.asset_id, Embedding.id).where(Embedding.model_id == model_id, Embedding.space == space)
        )
        pairs = pairs[np.argsort(pairs[:, 0], kind="stable")]  # numpy sorts faster than the database's temp tree
        return pairs[:, 0].copy(), pairs[:, 1].copy()

    def embedding_changes(self, model_id: str, space: str, after: int) -> tuple[int, int, np.ndarray, np.ndarray]:
        """(count, sum of row ids, asset ids, row ids) of one model and space: the rows written after ``after``.

        One statement, so every part sees the same moment. An index that knew every row up to
        ``after`` learns each addition and rewrite from it, in time proportional to the change;
        the count and the sum of the row ids tell it whether the rest is still what it holds (a
        deleted row, or one committed late with a smaller id, as PostgreSQL's sequences allow under
        concurrent writers, changes the sum). When it is not, the index reads :meth:`embedding_ids`.
        """
        where = (Embedding.model_id == model_id, Embedding.space == space)
        pairs = self._int_pairs(
            union_all(
                select(Embedding.asset_id, Embedding.id).where(*where, Embedding.id > after),
                select(literal(-1, BigInteger), func.count()).select_from(Embedding).where(*where),
                select(literal(-2, BigInteger), func.coalesce(func.sum(Embedding.id), 0)).where(*where),
            )
        )
        count = int(pairs[pairs[:, 0] == -1, 1][0])
        total = int(pairs[pairs[:, 0] == -2, 1][0])
        changed = pairs[pairs[:, 0] >= 0]
        changed = changed[np.argsort(changed[:, 0], kind="stable")]
        return count, total, changed[:, 0].copy(), changed[:, 1].copy()

    def vectors(
        self, model_id: str, space: str, asset_ids: Iterable[int] | None = None, chunk: int = 500
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (asset ids, float32 matrix) chunks of stored vectors."""
        base = select(Embedding.asset_id, Embedding.vector).where(
            Embedding.model_id == model_id, Embedding.space == space
        )
        with self.session() as s:
            if asset_ids is None:
                batches: Iterable[Any] = [s.execute(base.order_by(Embedding.asset_id)).yield_per(chunk)]
            else:
                ids = list(asset_ids)
                batches = (
                    s.execute(base.where(Embedding.asset_id.in_(ids[i : i + chunk]))) for i in range(0, len(ids), chunk)
                )
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
            blob = s.scalar(
                select(Embedding.vector).where(
                    Embedding.asset_id == asset_id, Embedding.model_id == model_id, Embedding.space == space
                )
            )
        return None if blob is None else np.frombuffer(blob, dtype="<f4").copy()

    def assets_missing_embeddings(self, model_id: str, space: str) -> list[str]:
        """Sources of indexed assets that have no vector in this model yet (model switch)."""
        has = select(Embedding.asset_id).where(Embedding.model_id == model_id, Embedding.space == space)
        with self.session() as s:
            return list(s.scalars(select(AssetRow.source).where(AssetRow.status == INDEXED, AssetRow.id.not_in(has))))

    # -- writing -------------------------------------------------------------------
    def get_by_sources(self, sources: Iterable[str]) -> dict[str, Asset]:
        wanted = list(sources)
        with self.session() as s:
            return {a.source: Asset.from_row(a) for a in s.scalars(select(AssetRow).where(AssetRow.source.in_(wanted)))}

    def known_sha256(self, digests: list[str]) -> set[str]:
        """Which of these content digests belong to an asset (any status)."""
        known: set[str] = set()
        with self.session() as s:
            for start in range(0, len(digests), 500):
                chunk = digests[start : start + 500]
                known.update(d for d in s.scalars(select(AssetRow.sha256).where(AssetRow.sha256.in_(chunk))) if d)
        return known

    def find_by_sha256(self, sha256: str) -> Asset | None:
        with self.session() as s:
            row = s.scalars(
                select(AssetRow)
                .where(AssetRow.sha256 == sha256, AssetRow.status == INDEXED)
                .order_by(AssetRow.id)
                .limit(1)
            ).first()
            return None if row is None else Asset.from_row(row)

    def find_by_pixels(self, pixel_sha256: str) -> list[Asset]:
        with self.session() as s:
            return [
                Asset.from_row(a)
                for a in s.scalars(
                    select(AssetRow)
                    .where(AssetRow.pixel_sha256 == pixel_sha256, AssetRow.status == INDEXED)
                    .order_by(AssetRow.id)
                    .limit(20)
                )
            ]

    def list_assets(
        self, filters: AssetFilter, limit: int, offset: int = 0, before_id: int | None = None
    ) -> list[Asset]:
        """Assets matching ``filters``, newest first (by id); keyset paging with ``before_id``."""
        query = filters.apply(select(AssetRow))
        if before_id is not None:
            query = query.where(AssetRow.id < before_id)
        with self.session() as s:
            return [
                Asset.from_row(a) for a in s.scalars(query.order_by(AssetRow.id.desc()).offset(offset).limit(limit))
            ]

    def count_assets(self, filters: AssetFilter) -> int:
        with self.session() as s:
            return int(s.scalar(filters.apply(select(func.count()).select_from(AssetRow))) or 0)

    def filter_ids(self, filters: AssetFilter) -> np.ndarray:
        """Sorted ids of every asset matching ``filters`` (for filtered vector search)."""
        with self.session() as s:
            ids = s.scalars(filters.apply(select(AssetRow.id)).order_by(AssetRow.id)).all()
        return np.asarray(ids, dtype=np.int64)

    def tags_of(self, asset_ids: Iterable[int]) -> dict[int, list[str]]:
        ids = list(asset_ids)
        out: dict[int, list[str]] = {i: [] for i in ids}
        with self.session() as s:
            for start in range(0, len(ids), 500):
                rows = s.execute(
                    select(AssetTag.asset_id, AssetTag.tag)
                    .where(AssetTag.asset_id.in_(ids[start : start + 500]))
                    .order_by(AssetTag.tag)
                )
                for asset_id, tag in rows:
                    out[asset_id].append(tag)
        return out

    # -- the filter fields, for vector engines that keep a copy of them (Milvus) -------
    #: :meth:`tag_digest` scrambles ids as (id x factor) mod modulus (a prime under 2^32): the
    #: products fit in 64 bits for 31-bit ids, and so do the sums.
    TAG_DIGEST_FACTOR = 2654435761
    TAG_DIGEST_MODULUS = 4294967291

    def filter_fields(self, asset_ids: Iterable[int]) -> dict[int, tuple[str, str | None, datetime]]:
        """(source, format, added at) by asset id: what :class:`AssetFilter` looks at besides tags.

        A vector engine that evaluates filters itself stores these beside each vector.
        """
        ids = list(asset_ids)
        out: dict[int, tuple[str, str | None, datetime]] = {}
        with self.session() as s:
            for start in range(0, len(ids), 500):
                rows = s.execute(
                    select(AssetRow.id, AssetRow.source, AssetRow.format, AssetRow.added_at).where(
                        AssetRow.id.in_(ids[start : start + 500])
                    )
                )
                out.update({i: (source, fmt, added) for i, source, fmt, added in rows})
        return out

    def tag_snapshot(self) -> dict[int, tuple[str, ...]]:
        """Every tagged asset's tags, sorted, read in one query so that they are one consistent state."""
        out: dict[int, list[str]] = {}
        seen: dict[str, str] = {}  # one string object per distinct tag: a library has few of them
        with self.session() as s:
            for asset_id, tag in s.execute(
                select(AssetTag.asset_id, AssetTag.tag).order_by(AssetTag.asset_id, AssetTag.tag)
            ):
                out.setdefault(asset_id, []).append(seen.setdefault(tag, tag))
        return {i: tuple(tags) for i, tags in out.items()}

    def tag_digest(self, tag: str) -> tuple[int, int, int]:
        """A fingerprint of which assets carry ``tag``: (count, sum of ids, sum of scrambled ids).

        One aggregate over the tag's index entries. An engine that keeps its own copy of the tags
        compares it with :meth:`tag_digests` of the copy it stored, to tell whether the copy is
        still current: a tag edit changes no vector, so no index sync follows it.
        """
        scrambled = (
            cast(AssetTag.asset_id, BigInteger) * literal_column(str(self.TAG_DIGEST_FACTOR))
        ) % literal_column(str(self.TAG_DIGEST_MODULUS))
        query = select(
            func.count(), func.coalesce(func.sum(AssetTag.asset_id), 0), func.coalesce(func.sum(scrambled), 0)
        ).where(AssetTag.tag == tag)
        with self.session() as s:
            count, total, mixed = s.execute(query).one()
        return int(count), int(total), int(mixed)

    @classmethod
    def tag_digests(cls, snapshot: dict[int, tuple[str, ...]]) -> dict[str, tuple[int, int, int]]:
        """:meth:`tag_digest` of every tag in a :meth:`tag_snapshot`, computed the same way in Python."""
        sums: dict[str, list[int]] = {}
        for asset_id, tags in snapshot.items():
            mixed = asset_id * cls.TAG_DIGEST_FACTOR % cls.TAG_DIGEST_MODULUS
            for tag in tags:
                acc = sums.setdefault(tag, [0, 0, 0])
                acc[0] += 1
                acc[1] += asset_id
                acc[2] += mixed
        return {tag: (a, b, c) for tag, (a, b, c) in sums.items()}

    def set_tags(self, asset_id: int, tags: Iterable[str]) -> list[str]:
        """Replace an asset's tags; returns them normalised, sorted, without repeats."""
        clean = sorted({t for t in (normalise_tag(t) for t in tags) if t})
        with self.write_session() as s, s.begin():
            s.execute(delete(AssetTag).where(AssetTag.asset_id == asset_id))
            s.add_all(AssetTag(asset_id=asset_id, tag=t) for t in clean)
        return clean

    def write_batch(
        self,
        indexed: list[tuple[ImageRecord, dict[str, np.ndarray]]],
        failed: list[tuple[str, str, int | None, float | None]],
        model_id: str,
    ) -> None:
        """Store one batch in a single transaction: all of it lands, or none of it.

        ``indexed``: (record, {space: vector}) per image. ``failed``: (source,
        reason, byte size, mtime) per file that could not be used.
        """
        pg_rows: list[tuple[Embedding, np.ndarray]] = []
        with self.write_session() as s, s.begin():
            sources = [r.source for r, _ in indexed] + [f[0] for f in failed]
            existing = {a.source: a for a in s.scalars(select(AssetRow).where(AssetRow.source.in_(sources)))}
            assets: list[AssetRow] = []
            changed: list[AssetRow] = []  # other bytes than before: text read from the old ones is stale
            for record, _ in indexed:
                asset = existing.get(record.source)
                if asset is None:
                    asset = existing[record.source] = AssetRow(source=record.source, status=INDEXED)
                    s.add(asset)
                elif asset.sha256 != record.sha256 and record.text is None:
                    changed.append(asset)
                asset.sha256, asset.width, asset.height = record.sha256, record.width, record.height
                asset.format, asset.byte_size, asset.mtime = record.format, record.byte_size, record.mtime
                asset.status, asset.error, asset.updated_at = INDEXED, None, utcnow()
                asset.name = record.name or asset.name or Path(record.source).name
                asset.origin, asset.path = record.origin, record.path
                asset.pixel_sha256, asset.phash = record.pixel_sha256, record.phash
                assets.append(asset)
            # One flush for the whole batch (one multi-row INSERT gives the new rows their ids), then
            # set-wise deletes: a flush and a DELETE per image cost 1.5 of the 1.9 ms an image took.
            s.flush()
            ids = [a.id for a in assets]
            tagged = [(a.id, r.tags) for a, (r, _) in zip(assets, indexed, strict=True) if r.tags]
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                s.execute(delete(Embedding).where(Embedding.asset_id.in_(chunk), Embedding.model_id == model_id))
            for start in range(0, len(tagged), 500):
                s.execute(delete(AssetTag).where(AssetTag.asset_id.in_([i for i, _ in tagged[start : start + 500]])))
            for asset_id, tags in tagged:
                s.add_all(AssetTag(asset_id=asset_id, tag=t) for t in sorted({normalise_tag(t) for t in tags} - {""}))
            if changed:
                delete_texts(s, [a.id for a in changed])
            put_texts(
                s,
                [
                    (a.id, r.reader or "", r.text)
                    for a, (r, _) in zip(assets, indexed, strict=True)
                    if r.text is not None
                ],
            )
            for asset, (_, spaces) in zip(assets, indexed, strict=True):
                self._add_embeddings(s, asset.id, model_id, spaces, pg_rows)
            self._fill_pg_vectors(s, pg_rows)
            for source, reason, size, mtime in failed:
                asset = existing.get(source)
                if asset is None:
                    asset = AssetRow(source=source, status=FAILED, name=Path(source).name, origin="folder")
                    s.add(asset)
                else:
                    s.execute(delete(Embedding).where(Embedding.asset_id == asset.id))
                asset.status, asset.error = FAILED, reason
                asset.byte_size, asset.mtime, asset.updated_at = size, mtime, utcnow()

    def write_embeddings(self, model_id: str, vectors: list[tuple[int, dict[str, np.ndarray]]]) -> int:
        """Store (or replace) one model's vectors for existing assets, in one transaction.

        Re-embedding writes through here: it adds a second model's vectors beside
        the first one's and never touches the assets themselves. Assets deleted in
        the meantime are skipped. Returns how many assets were written.
        """
        pg_rows: list[tuple[Embedding, np.ndarray]] = []
        with self.write_session() as s, s.begin():
            alive = set(
                s.scalars(
                    select(AssetRow.id).where(AssetRow.id.in_([a for a, _ in vectors]), AssetRow.status == INDEXED)
                )
            )
            for asset_id, spaces in vectors:
                if asset_id in alive:
                    self._put_embeddings(s, asset_id, model_id, spaces, pg_rows)
            self._fill_pg_vectors(s, pg_rows)
        return len(alive)

    def _put_embeddings(
        self,
        s: Session,
        asset_id: int,
        model_id: str,
        spaces: dict[str, np.ndarray],
        pg_rows: list[tuple[Embedding, np.ndarray]],
    ) -> None:
        s.execute(delete(Embedding).where(Embedding.asset_id == asset_id, Embedding.model_id == model_id))
        self._add_embeddings(s, asset_id, model_id, spaces, pg_rows)

    def _add_embeddings(
        self,
        s: Session,
        asset_id: int,
        model_id: str,
        spaces: dict[str, np.ndarray],
        pg_rows: list[tuple[Embedding, np.ndarray]],
    ) -> None:
        for space, vec in spaces.items():
            vec = np.ascontiguousarray(vec, dtype="<f4")
            row = Embedding(asset_id=asset_id, model_id=model_id, space=space, dim=vec.shape[0], vector=vec.tobytes())
            s.add(row)
            if self.in_database_vectors:
                pg_rows.append((row, vec))

    @staticmethod
    def _fill_pg_vectors(s: Session, pg_rows: list[tuple[Embedding, np.ndarray]]) -> None:
        if pg_rows:
            s.flush()
            s.execute(
                text("UPDATE embeddings SET vec = CAST(:v AS vector) WHERE id = :id"),
                [{"id": row.id, "v": pg_literal(vec)} for row, vec in pg_rows],
            )

    def assets_to_embed(
        self, model_id: str, spaces: Iterable[str], *, exclude: Iterable[int] = (), limit: int | None = None
    ) -> list[tuple[int, str]]:
        """(asset id, file to read) of indexed assets lacking a vector in any of ``spaces``, oldest first."""
        spaces = list(spaces)
        complete = (
            select(Embedding.asset_id)
            .where(Embedding.model_id == model_id, Embedding.space.in_(spaces))
            .group_by(Embedding.asset_id)
            .having(func.count() >= len(spaces))
        )
        query = (
            select(AssetRow.id, func.coalesce(AssetRow.path, AssetRow.source))
            .where(AssetRow.status == INDEXED, AssetRow.id.not_in(complete))
            .order_by(AssetRow.id)
        )
        skip = list(exclude)
        if skip:
            query = query.where(AssetRow.id.not_in(skip))
        if limit:
            query = query.limit(limit)
        with self.session() as s:
            return [(int(i), str(p)) for i, p in s.execute(query)]

    def count_with_embeddings(self, model_id: str, space: str) -> int:
        with self.session() as s:
            return (
                s.scalar(
                    select(func.count())
                    .select_from(Embedding)
                    .join(AssetRow, AssetRow.id == Embedding.asset_id)
                    .where(Embedding.model_id == model_id, Embedding.space == space, AssetRow.status == INDEXED)
                )
                or 0
            )

    # -- library-wide state --------------------------------------------------------
    def get_state(self, key: str) -> Any:
        """The JSON value stored under ``key``, or None."""
        with self.session() as s:
            value = s.scalar(select(LibraryState.value).where(LibraryState.key == key))
        return None if value is None else json.loads(value)

    def set_state(self, key: str, value: Any) -> None:
        with self.write_session() as s, s.begin():
            row = s.get(LibraryState, key)
            if row is None:
                s.add(LibraryState(key=key, value=json.dumps(value)))
            else:
                row.value = json.dumps(value)

    def remove(self, asset_ids: Iterable[int]) -> int:
        ids = list(asset_ids)
        with self.write_session() as s, s.begin():
            for i in range(0, len(ids), 500):
                s.execute(delete(AssetTag).where(AssetTag.asset_id.in_(ids[i : i + 500])))
                delete_texts(s, ids[i : i + 500])
                s.execute(delete(Embedding).where(Embedding.asset_id.in_(ids[i : i + 500])))
                s.execute(delete(AssetRow).where(AssetRow.id.in_(ids[i : i + 500])))
        return len(ids)


def _to_arrays(rows: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    matrix = np.stack([np.frombuffer(r[1], dtype="<f4") for r in rows]).astype(np.float32, copy=False)
    return ids, matrix
