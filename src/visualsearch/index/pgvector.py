"""Vector search inside PostgreSQL (pgvector), for libraries whose catalog is a PostgreSQL database.

Several API server processes on several hosts then share one library with no
index files to keep in step: every vector lives in the catalog's ``embeddings``
table, with one partial HNSW index per (model, space). The SQL is in
:mod:`visualsearch.catalog.pgvector`; this module is the :class:`IndexBackend`
around it. Filters are conditions of the same query, so a narrow filter still
fills the page.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..catalog import Catalog
from .ann import default_ef_search
from .base import SearchHits, VectorIndex, rank
from .exact import ExactIndex


def _empty() -> SearchHits:
    return SearchHits(np.empty(0, np.int64), np.empty(0, np.float32))


class PgVectorIndex(VectorIndex):
    kind = "pgvector-hnsw"

    def __init__(self, catalog: Catalog, model_id: str, space: str, dim: int, count: int, ef_search: int | None = None):
        self.catalog = catalog
        self.model_id = model_id
        self.space = space
        self.dim = dim
        self.count = count
        #: None = grow with the index, as the embedded HNSW index does (see ann.default_ef_search).
        self.ef_search = ef_search or default_ef_search(count)

    def __len__(self) -> int:
        return self.count

    def search(
        self, query: np.ndarray, k: int, exclude: set[int] | None = None, allow: np.ndarray | None = None
    ) -> SearchHits:
        if self.count == 0 or k <= 0 or self.dim == 0 or (allow is not None and len(allow) == 0):
            return _empty()
        want = int(k + (len(exclude) if exclude else 0))
        rows = self.catalog.pgvector.nearest(
            self.model_id, self.space, self.dim, query, want, self.ef_search, allow=allow
        )
        if not rows:
            return _empty()
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
            out_ids[row, : len(hits.ids)] = hits.ids
            out_scores[row, : len(hits.ids)] = hits.scores
        return out_ids, out_scores


class PgVectorManager:
    """The :class:`IndexBackend` for vectors searched inside PostgreSQL."""

    def __init__(self, catalog: Catalog, model_id: str, space: str):
        self.catalog = catalog
        self.model_id = model_id
        self.space = space
        self._indexed_dim: int | None = None

    def sync(self, progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
        """Make sure the HNSW index for this model and space exists (PostgreSQL keeps it current)."""
        count, dim, _ = self.catalog.pgvector.stats(self.model_id, self.space)
        if dim and self._indexed_dim != dim:
            self.catalog.pgvector.ensure_hnsw_index(self.model_id, self.space, dim)
            self._indexed_dim = dim
        return {"added": 0, "removed": 0, "total": count}

    def index(self) -> PgVectorIndex:
        count, dim, _ = self.catalog.pgvector.stats(self.model_id, self.space)
        return PgVectorIndex(self.catalog, self.model_id, self.space, dim, count)

    def search(
        self, query: np.ndarray, k: int, exclude: set[int] | None = None, allow: np.ndarray | None = None
    ) -> SearchHits:
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
        count, _, newest = self.catalog.pgvector.stats(self.model_id, self.space)
        return f"pg-{count}-{newest}"
