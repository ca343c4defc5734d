"""The SQL of vector search inside PostgreSQL (pgvector); :mod:`visualsearch.index.pgvector` drives it.

Every vector lives in ``embeddings.vec`` and each (model, space) gets a partial
HNSW expression index, so one table serves every model and space::

    CREATE INDEX ... ON embeddings USING hnsw ((vec::vector(384)) vector_cosine_ops)
        WHERE model_id = '...' AND space = '...'
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import text

if TYPE_CHECKING:
    from .store import Catalog


def pg_literal(vec: np.ndarray) -> str:
    """pgvector's text form, '[0.1,0.2,...]' (float32 round-trips exactly with repr)."""
    return "[" + ",".join(map(repr, vec.astype(np.float32).tolist())) + "]"


def _quote(value: str) -> str:
    return value.replace("'", "''")


class PgVectorQueries:
    def __init__(self, catalog: Catalog):
        self._catalog = catalog

    def stats(self, model_id: str, space: str) -> tuple[int, int, int]:
        """(vector count, dimension or 0, newest embedding row id) of one model and space."""
        with self._catalog.engine.connect() as conn:
            count, dim, newest = conn.execute(
                text(
                    "SELECT count(*), max(dim), coalesce(max(id), 0) FROM embeddings WHERE model_id = :m AND space = :s"
                ),
                {"m": model_id, "s": space},
            ).one()
        return int(count), int(dim or 0), int(newest)

    @staticmethod
    def index_name(model_id: str, space: str, dim: int) -> str:
        digest = hashlib.sha1(f"{model_id}/{space}/{dim}".encode()).hexdigest()[:16]
        return f"ix_embeddings_hnsw_{digest}"

    def ensure_hnsw_index(self, model_id: str, space: str, dim: int) -> None:
        """Create the partial HNSW index of one model and space (PostgreSQL keeps it current afterwards)."""
        with self._catalog.engine.begin() as conn:
            conn.execute(
                text(
                    f"CREATE INDEX IF NOT EXISTS {self.index_name(model_id, space, dim)} ON embeddings "
                    f"USING hnsw ((vec::vector({int(dim)})) vector_cosine_ops) WITH (m = 16, ef_construction = 64) "
                    f"WHERE model_id = '{_quote(model_id)}' AND space = '{_quote(space)}'"
                )
            )

    def nearest(
        self,
        model_id: str,
        space: str,
        dim: int,
        query: np.ndarray,
        k: int,
        ef_search: int,
        allow: np.ndarray | None = None,
    ) -> list[tuple[int, float]]:
        """(asset id, cosine similarity) of the ``k`` nearest vectors, best first.

        A filter (``allow``) is a condition of the same query; pgvector's iterative
        index scan keeps walking the graph until ``k`` rows pass it.
        """
        conditions = ["model_id = :model", "space = :space", "vec IS NOT NULL"]
        params: dict[str, Any] = {"model": model_id, "space": space, "q": pg_literal(np.asarray(query)), "k": int(k)}
        if allow is not None:
            conditions.append("asset_id = ANY(:allow)")
            params["allow"] = [int(i) for i in allow]
        dim = int(dim)
        distance = f"(vec::vector({dim}) <=> CAST(:q AS vector({dim})))"
        sql = (
            f"SELECT asset_id, 1 - {distance} AS score FROM embeddings WHERE {' AND '.join(conditions)} "
            f"ORDER BY {distance} LIMIT :k"
        )
        with self._catalog.engine.begin() as conn:
            conn.execute(text(f"SET LOCAL hnsw.ef_search = {max(int(ef_search), int(k))}"))
            conn.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
            return [(int(r[0]), float(r[1])) for r in conn.execute(text(sql), params).all()]
