"""The two contracts of this package.

- :class:`VectorIndex`: one searchable snapshot of vectors (exact matrix, HNSW graph,
  a pgvector or Milvus query).
- :class:`IndexBackend`: keeps the index of one (model, space) in step with the catalog
  and hands out searchable snapshots. The local files, pgvector and Milvus backends
  implement it; :mod:`.registry` picks one by name (setting ``vector_backend``).
- :class:`FilteringBackend`: optional, for a backend that evaluates filters itself (Milvus).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from ..catalog import AssetFilter
    from .exact import ExactIndex


@dataclass
class SearchHits:
    """Asset ids and cosine similarities, best first."""

    ids: np.ndarray  # int64[k]
    scores: np.ndarray  # float32[k]


class VectorIndex(ABC):
    """Nearest neighbours by inner product over L2-normalised vectors (= cosine)."""

    kind: str

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def search_many(self, queries: np.ndarray, k: int, ef: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest of many queries at once: (ids [n, k], scores [n, k]), best first.

        ``ef`` is a search-breadth hint for approximate indexes (ignored by exact ones).

        Rows may hold fewer real hits than ``k``; missing ones have id -1 and score -inf.
        """

    @abstractmethod
    def search(
        self, query: np.ndarray, k: int, exclude: set[int] | None = None, allow: np.ndarray | None = None
    ) -> SearchHits:
        """The ``k`` most similar vectors, ties broken by smaller asset id.

        ``allow`` (sorted asset ids) restricts the search to those assets: the
        filter is applied during the search, never to a top-k afterwards, so a
        selective filter still returns ``k`` results when ``k`` exist.
        """


#: progress(done, total) while a sync reads vectors.
SyncProgress = Callable[[int, int], None]


@runtime_checkable
class IndexBackend(Protocol):
    """The vector index of one model and space, derived from the catalog (which stays the truth)."""

    model_id: str
    space: str

    def sync(self, progress: SyncProgress | None = None) -> dict[str, int]:
        """Catch up with the catalog; returns counts {"added", "removed", "total"}."""
        ...

    def index(self) -> VectorIndex:
        """The current searchable snapshot (cheap when nothing changed)."""
        ...

    def search(
        self, query: np.ndarray, k: int, exclude: set[int] | None = None, allow: np.ndarray | None = None
    ) -> SearchHits:
        """As :meth:`VectorIndex.search`, choosing the best way to apply a filter."""
        ...

    def exact(self) -> ExactIndex:
        """Every id and vector at once (for all-pairs work such as duplicates)."""
        ...

    def generation(self) -> str:
        """Changes whenever the indexed vectors change (a key for caches of derived results)."""
        ...


@runtime_checkable
class FilteringBackend(Protocol):
    """A backend that evaluates a catalog filter itself, beside its vectors (Milvus scalar fields).

    Callers use it instead of resolving the filter into allowed ids first: with a large library
    and a broad filter, that list is what gets slow. Results are the same as
    ``search(query, k, exclude, allow=catalog.filter_ids(filters))``.
    """

    def search_where(
        self, query: np.ndarray, k: int, exclude: set[int] | None = None, filters: AssetFilter | None = None
    ) -> SearchHits:
        """As :meth:`IndexBackend.search`, restricted to the assets matching ``filters``."""
        ...


def rank(ids: np.ndarray, scores: np.ndarray, k: int) -> SearchHits:
    """Order by score descending, then asset id ascending: deterministic ties."""
    order = np.lexsort((ids, -scores))[:k]
    return SearchHits(ids[order].astype(np.int64), scores[order].astype(np.float32))


def top_k_rows(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a score matrix, the ``k`` best (ids, scores), best first."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    cols = np.take_along_axis(part, order, axis=1)
    return ids[cols], np.take_along_axis(part_scores, order, axis=1)
