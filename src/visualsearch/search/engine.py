"""Every kind of query, ranked the same way.

Scores are cosine similarities between L2-normalised vectors, in [-1, 1]
(higher is more similar). Results are ordered by score, most similar first;
equal scores are ordered by ascending asset id, so the same query always
gives the same order. "Similar to asset N" leaves asset N out of its results.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

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

    def to_dict(self) -> dict:
        return asdict(self)


class SearchEngine:
    def __init__(self, library: Library):
        self.library = library

    # -- queries ---------------------------------------------------------------------
    def text(self, query: str, limit: int = 20, min_score: float | None = None) -> list[SearchResult]:
        query = query.strip()
        if not query:
            raise ValueError("the text query is empty")
        vector = self.library.embedder.embed_texts([query])[0]
        return self._run(self.library.text_index.index(), vector, limit, min_score)

    def similar_to_asset(self, asset_id: int, limit: int = 20, min_score: float | None = None) -> list[SearchResult]:
        embedder = self.library.embedder
        vector = self.library.catalog.vector(asset_id, embedder.model_id, embedder.similarity_space)
        if vector is None:
            if self.library.catalog.get(asset_id) is None:
                raise NotFound(f"no asset with id {asset_id}")
            raise NotFound(f"asset {asset_id} has no vector for model {embedder.model_id} (failed, or not re-indexed)")
        return self._run(self.library.similarity_index.index(), vector, limit, min_score, exclude={asset_id})

    def similar_to_image(self, image: DecodedImage, limit: int = 20, min_score: float | None = None) -> list[SearchResult]:
        embedder = self.library.embedder
        vector = embedder.encode_images([image.image])[embedder.similarity_space][0]
        return self._run(self.library.similarity_index.index(), vector, limit, min_score)

    def similar_to_file(self, path: Path, **kwargs) -> list[SearchResult]:
        path = Path(path).expanduser()
        if not path.is_file():
            raise NotFound(f"no such file: {path}")
        settings = self.library.settings
        image = decode_file(path, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)
        return self.similar_to_image(image, **kwargs)

    def similar_to_url(self, url: str, **kwargs) -> list[SearchResult]:
        s = self.library.settings
        fetched = ImageFetcher(max_bytes=s.max_image_bytes, allow_private=s.allow_private_urls,
                               timeout=s.fetch_timeout, max_redirects=s.max_redirects).fetch(url)
        image = decode_bytes(fetched.data, max_bytes=s.max_image_bytes, max_pixels=s.max_image_pixels)
        return self.similar_to_image(image, **kwargs)

    # -- ranking ---------------------------------------------------------------------
    def _run(self, index, vector: np.ndarray, limit: int, min_score: float | None,
             exclude: set[int] | None = None) -> list[SearchResult]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        hits = index.search(vector, limit, exclude=exclude)
        keep = np.ones(len(hits.ids), dtype=bool) if min_score is None else hits.scores >= min_score
        ids, scores = hits.ids[keep], hits.scores[keep]
        assets = self.library.catalog.get_many(ids.tolist())
        results = []
        for asset_id, score in zip(ids.tolist(), scores.tolist()):
            asset = assets.get(asset_id)
            if asset is None:  # removed since the index was last synced
                continue
            results.append(SearchResult(len(results) + 1, asset_id, round(float(score), 6), asset.source,
                                        asset.width, asset.height, asset.format))
        return results
