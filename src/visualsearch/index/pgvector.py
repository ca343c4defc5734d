"""Vector search inside PostgreSQL (pgvector), for libraries whose catalog is a PostgreSQL database.

Several API server processes on several hosts then share one library with no
index files to keep in step: every vector lives in ``embeddings.vec`` and each
(model, space) gets a partial HNSW expression index::

    CREATE INDEX ... ON embeddings USING hnsw ((vec::vector(384)) vector_cosine_ops)
        WHERE model_id = '...' AND space = '...'

Filters are SQL conditions in the same query; pgvector's iterative index scan
keeps walking the graph until ``k`` rows pass them, so a narrow filter still
fills the page.
"""

from __future__ import annotations

import hashlib

import numpy as np
from sqlalchemy import text

from ..catalog import Catalog
from ..catalog.store import _pg_literal
from .ann import default_ef_search
from .base import SearchHits, VectorIndex, rank
from .exact import ExactIndex


class PgVectorIndex(VectorIndex):
    kind = "pgvector-hnsw"

    def __init__(self, catalog: Catalog, model_id: str, space: str, dim: int, count: int,
                 ef_search: int | None = None):
        self.catalog = catalog
        self.model_id = model_id
        self.space = space
        self.dim = dim
        self.count = count
        #: None = grow with the index, as the embedded HNSW index does (see ann.default_ef_search).
        self.ef_search = ef_search or default_ef_search(count)

    def __len__(self) -> int:
        return self.count

    def search(self, query: np.ndarray, k: int, exclude: set[int] | None = None,
               allow: np.ndarray | None = None) -> SearchHits:
        if self.count == 0 or k <= 0 or self.dim == 0:
            return SearchHits(np.empty(0, np.int64), np.empty(0, np.float32))
        conditions = ["model_id = :model", "space = :space", "vec IS NOT NULL"]
        params: dict = {"model": self.model_id, "space": self.space, "q": _pg_literal(np.asarray(query)),
                        "k": int(k + (len(exclude) if exclude else 0))}
        if allow is not None:
            if len(allow) == 0:
                return SearchHits(np.empty(0, np.int64), np.empty(0, np.float32))
            conditions.append("asset_id = ANY(:allow)")
            params["allow"] = [int(i) for i in allow]
        distance = f"(vec::vector({self.dim}) <=> CAST(:q AS vector({self.dim})))"
        sql = (f"SELECT asset_id, 1 - {distance} AS score FROM embeddings WHERE {' AND '.join(conditions)} "
               f"ORDER BY {distance} LIMIT :k")
        with self.catalog.engine.begin() as conn:
            conn.execute(text(f"SET LOCAL hnsw.ef_search = {max(self.ef_search, int(params['k']))}"))
            conn.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
            rows = conn.execute(text(sql), params).all()
        if not rows:
            return SearchHits(np.empty(0, np.int64), np.empty(0, np.float32))
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        scores = np.array([r[1] for r in rows], dtype=np.float32)
        if exclude:
            keep = ~np.isin(ids, np.fromiter(exclude, dtype=np.int64))
            ids, scores = ids[keep], scores[keep]
        return rank(ids, scores, k)

    def search_many(self, queries: np.ndarray, k: int, ef: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        out_ids = np.full((len(queries), k), -1, np.int64)
        out_scores = np.full((len(queries), k), -np.inf, np.float32)
        for row, query in enumerate(queries):
            hits = self.search(query, k)
            out_ids[row, :len(hits.ids)] = hits.ids
            out_scores[row, :len(hits.ids)] = hits.scores
        return out_ids, out_scores


class PgVectorManager:
    """Same interface as :class:`IndexManager`, for vectors searched inside PostgreSQL."""

    def __init__(self, catalog: Catalog, model_id: str, space: str):
        self.catalog = catalog
        self.model_id = model_id
        self.space = space
        self._dim: int | None = None
        self._indexed_dim: int | None = None

    def _stats(self) -> tuple[int, int, int]:
        with self.catalog.engine.connect() as conn:
            count, dim, newest = conn.execute(text(
                "SELECT count(*), max(dim), coalesce(max(id), 0) FROM embeddings "
                "WHERE model_id = :m AND space = :s"), {"m": self.model_id, "s": self.space}).one()
        return int(count), int(dim or 0), int(newest)

    def _index_name(self, dim: int) -> str:
        digest = hashlib.sha1(f"{self.model_id}/{self.space}/{dim}".encode()).hexdigest()[:16]
        return f"ix_embeddings_hnsw_{digest}"

    def sync(self, progress=None) -> dict[str, int]:
        """Make sure the HNSW index for this model and space exists (PostgreSQL keeps it current)."""
        count, dim, _ = self._stats()
        if dim and self._indexed_dim != dim:
            with self.catalog.engine.begin() as conn:
                conn.execute(text(
                    f"CREATE INDEX IF NOT EXISTS {self._index_name(dim)} ON embeddings "
                    f"USING hnsw ((vec::vector({dim})) vector_cosine_ops) WITH (m = 16, ef_construction = 64) "
                    f"WHERE model_id = '{_quote(self.model_id)}' AND space = '{_quote(self.space)}'"))
            self._indexed_dim = dim
        return {"added": 0, "removed": 0, "total": count}

    def index(self) -> PgVectorIndex:
        count, dim, _ = self._stats()
        return PgVectorIndex(self.catalog, self.model_id, self.space, dim, count)

    def search(self, query, k, exclude=None, allow=None) -> SearchHits:
        return self.index().search(query, k, exclude=exclude, allow=allow)

    def exact(self) -> ExactIndex:
        """Every vector in memory (for all-pairs work such as duplicates)."""
        ids, mats = [], []
        for chunk_ids, chunk in self.catalog.vectors(self.model_id, self.space):
            ids.append(chunk_ids)
            mats.append(chunk)
        if not ids:
            return ExactIndex(np.empty(0, np.int64), np.empty((0, 1), np.float32))
        ids_all = np.concatenate(ids)
        order = np.argsort(ids_all)
        return ExactIndex(ids_all[order], np.concatenate(mats)[order])

    def generation(self) -> str:
        count, dim, newest = self._stats()
        return f"pg-{count}-{newest}"


def _quote(value: str) -> str:
    return value.replace("'", "''")
