"""Every kind of query, ranked the same way.

Scores are cosine similarities between L2-normalised vectors, in [-1, 1]
(higher is more similar). Results are ordered by score, most similar first;
equal scores are ordered by ascending asset id, so the same query always
gives the same order. Filters are applied inside the vector search, so a narrow
filter still fills the page: evaluated by the backend itself when it can
(:class:`~visualsearch.index.base.FilteringBackend`, Milvus), otherwise resolved by
the catalog into allowed ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..catalog import Asset, AssetFilter, Catalog
from ..index import IndexBackend, SearchHits
from ..index.base import FilteringBackend


@dataclass(frozen=True)
class SearchResult:
    rank: int
    asset_id: int
    score: float
    source: str
    width: int | None
    height: int | None
    format: str | None
    #: The catalog record, for callers that show more than the basics (the API).
    asset: Asset | None = field(default=None, repr=False, compare=False)
    #: Words of a text query that the picture's read text (OCR) has, in the query's order.
    words: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "asset_id": self.asset_id,
            "score": self.score,
            "source": self.source,
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "words": list(self.words),
        }


def ranked(
    catalog: Catalog,
    index: IndexBackend,
    vector: np.ndarray,
    *,
    limit: int = 20,
    min_score: float | None = None,
    offset: int = 0,
    filters: AssetFilter | None = None,
    exclude: set[int] | None = None,
) -> list[SearchResult]:
    """The page ``offset .. offset + limit`` of assets nearest to ``vector``, best first."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if offset < 0:
        raise ValueError("offset cannot be negative")
    hits = filtered_search(catalog, index, vector, offset + limit, exclude=exclude, filters=filters)
    return page_of(catalog, hits.ids, hits.scores, limit, min_score, offset)


def filtered_search(
    catalog: Catalog,
    index: IndexBackend,
    vector: np.ndarray,
    k: int,
    *,
    exclude: set[int] | None = None,
    filters: AssetFilter | None = None,
    allow: np.ndarray | None = None,
) -> SearchHits:
    """The ``k`` nearest assets matching ``filters``: filtered by the backend itself when it can, else
    through the allowed ids (``allow`` when the caller resolved them already, for several indexes)."""
    if filters is None or filters.is_empty():
        return index.search(vector, k, exclude=exclude)
    if isinstance(index, FilteringBackend):
        return index.search_where(vector, k, exclude=exclude, filters=filters)
    return index.search(vector, k, exclude=exclude, allow=catalog.filter_ids(filters) if allow is None else allow)


def page_of(
    catalog: Catalog, ids: np.ndarray, scores: np.ndarray, limit: int, min_score: float | None, offset: int
) -> list[SearchResult]:
    """Results ``offset .. offset + limit`` of ids already ranked best first (their scores beside them)."""
    keep = np.ones(len(ids), dtype=bool) if min_score is None else scores >= min_score
    ids, scores = ids[keep][offset : offset + limit], scores[keep][offset : offset + limit]
    assets = catalog.get_many(ids.tolist())
    results: list[SearchResult] = []
    for asset_id, score in zip(ids.tolist(), scores.tolist(), strict=True):
        asset = assets.get(asset_id)
        if asset is None:  # removed since the index was last synced
            continue
        results.append(
            SearchResult(
                offset + len(results) + 1,
                asset_id,
                round(float(score), 6),
                asset.source,
                asset.width,
                asset.height,
                asset.format,
                asset,
            )
        )
    return results
