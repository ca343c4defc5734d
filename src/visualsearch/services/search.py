"""Every kind of query, ranked the same way.

Scores are cosine similarities between L2-normalised vectors, in [-1, 1]
(higher is more similar). Results are ordered by score, most similar first;
equal scores are ordered by ascending asset id, so the same query always
gives the same order. "Similar to asset N" leaves asset N out of its results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..catalog import Asset, AssetFilter
from ..errors import NotFound
from ..ingest.decode import DecodedImage, decode_bytes, decode_file
from ..ingest.fetch import ImageFetcher
from ..library import Library


@dataclass
class SearchResult:
    rank: int
    asset_id: int
    score: float
    source: str
    width: int | None
    height: int | None
    format: str | None
    #: The catalog row, for callers that show more than the basics (the API).
    asset: Asset | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {"rank": self.rank, "asset_id": self.asset_id, "score": self.score, "source": self.source,
                "width": self.width, "height": self.height, "format": self.format}


class SearchEngine:
    """Every search takes ``limit``, ``offset`` (results to skip, for paging),
    ``min_score`` and ``filters`` (an :class:`AssetFilter`, applied inside the
    vector search so that a narrow filter still fills the page)."""

    def __init__(self, library: Library):
        self.library = library

    # -- queries ---------------------------------------------------------------------
    def text(self, query: str, **options) -> list[SearchResult]:
        query = query.strip()
        if not query:
            raise ValueError("the text query is empty")
        vector = self.library.embedder.embed_texts([query])[0]
        return self._run(self.library.text_index, vector, **options)

    def similar_to_asset(self, asset_id: int, **options) -> list[SearchResult]:
        embedder = self.library.embedder
        vector = self.library.catalog.vector(asset_id, embedder.model_id, embedder.similarity_space)
        if vector is None:
            if self.library.catalog.get(asset_id) is None:
                raise NotFound(f"no asset with id {asset_id}")
            raise NotFound(f"asset {asset_id} has no vector for model {embedder.model_id} (failed, or not re-indexed)")
        return self._run(self.library.similarity_index, vector, exclude={asset_id}, **options)

    def similar_to_image(self, image: DecodedImage, **options) -> list[SearchResult]:
        embedder = self.library.embedder
        vector = embedder.encode_images([image.image])[embedder.similarity_space][0]
        return self._run(self.library.similarity_index, vector, **options)

    def similar_to_bytes(self, data: bytes, **options) -> list[SearchResult]:
        settings = self.library.settings
        image = decode_bytes(data, **settings.decode_limits)
        return self.similar_to_image(image, **options)

    def similar_to_file(self, path: Path, **kwargs) -> list[SearchResult]:
        path = Path(path).expanduser().resolve()  # the user's own links are fine; the reader opens no link
        if not path.is_file():
            raise NotFound(f"no such file: {path}")
        settings = self.library.settings
        image = decode_file(path, **settings.decode_limits)
        return self.similar_to_image(image, **kwargs)

    def fetch(self, url: str) -> bytes:
        """The image bytes at ``url``, fetched with the library's safety rules (no decoding yet)."""
        s = self.library.settings
        return ImageFetcher(max_bytes=s.max_image_bytes, allow_private=s.allow_private_urls,
                            timeout=s.fetch_timeout, max_redirects=s.max_redirects).fetch(url).data

    def similar_to_url(self, url: str, **kwargs) -> list[SearchResult]:
        return self.similar_to_bytes(self.fetch(url), **kwargs)

    # -- ranking ---------------------------------------------------------------------
    def _run(self, index, vector: np.ndarray, limit: int = 20, min_score: float | None = None,
             offset: int = 0, filters: AssetFilter | None = None,
             exclude: set[int] | None = None) -> list[SearchResult]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if offset < 0:
            raise ValueError("offset cannot be negative")
        allow = None
        if filters is not None and not filters.is_empty():
            allow = self.library.catalog.filter_ids(filters)
        hits = index.search(vector, offset + limit, exclude=exclude, allow=allow)
        keep = np.ones(len(hits.ids), dtype=bool) if min_score is None else hits.scores >= min_score
        ids, scores = hits.ids[keep][offset:], hits.scores[keep][offset:]
        assets = self.library.catalog.get_many(ids.tolist())
        results = []
        for asset_id, score in zip(ids.tolist(), scores.tolist()):
            asset = assets.get(asset_id)
            if asset is None:  # removed since the index was last synced
                continue
            results.append(SearchResult(offset + len(results) + 1, asset_id, round(float(score), 6), asset.source,
                                        asset.width, asset.height, asset.format, asset))
        return results
