"""Search a library: by text, by an asset in it, by an image file, bytes or URL.

Every search takes ``limit``, ``offset`` (results to skip, for paging),
``min_score`` and ``filters`` (an :class:`~visualsearch.catalog.AssetFilter`);
ranking is :func:`visualsearch.search.ranked`. "Similar to asset N" leaves
asset N out of its results. Text queries follow :mod:`visualsearch.search.query`
(``beach -people``, ``red car + night^0.5``), and a text query may start from an
asset: "like asset 42, but at night".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from ..errors import NotFound
from ..index import IndexBackend
from ..ingest.decode import DecodedImage, decode_bytes, decode_file
from ..ingest.fetch import ImageFetcher
from ..models import SEMANTIC
from ..search import SearchResult, TextQuery, combine, parse, ranked
from ..search.relevance import MatchCalibration, MatchVerdict, judge
from .library import Library

__all__ = ["PartScore", "SearchResult", "SearchService", "Why"]


@dataclass(frozen=True)
class PartScore:
    """How close an image is to one part of a text query (cosine similarity)."""

    text: str
    negative: bool
    score: float


@dataclass(frozen=True)
class Why:
    """Why a text result matched: its closeness to each query part, and what the model sees in it."""

    parts: list[PartScore]
    concepts: list[str] | None


class SearchService:
    def __init__(self, library: Library):
        self.library = library

    # -- queries ---------------------------------------------------------------------
    def understand(self, query: str) -> TextQuery:
        """The query's clauses (raises InvalidInput for a query with nothing to look for)."""
        return parse(query)

    def text(self, query: str, asset_id: int | None = None, **options: Any) -> list[SearchResult]:
        """Images matching ``query``; with ``asset_id``, images like that asset changed by the words.

        A plain query ("dog on a beach") is one sentence, embedded as it is. Clauses
        (``-people``, ``+ night``, ``^2``) are embedded one by one and combined.
        """
        return self.text_with_verdict(query, asset_id, **options)[0]

    def text_with_verdict(
        self, query: str, asset_id: int | None = None, **options: Any
    ) -> tuple[list[SearchResult], MatchVerdict | None]:
        """:meth:`text`, and whether the query has close matches at all (None: the model cannot tell,
        or the query starts from an image; see :mod:`visualsearch.search.relevance`)."""
        parsed = parse(query)
        embedder = self.library.embedder
        vectors = embedder.embed_texts([c.text for c in parsed.clauses])
        base = None
        if asset_id is not None:
            base = self.library.catalog.vector(asset_id, embedder.model_id, SEMANTIC)
            if base is None:
                self._missing_vector(asset_id)
            options["exclude"] = {asset_id, *options.get("exclude", ())}
        vector = vectors[0] if parsed.plain and base is None else combine(parsed, vectors, base)
        index = self.library.text_index
        results = self._run(index, vector, **options)
        verdict = None
        if embedder.match_thresholds is not None and base is None:
            calibration = MatchCalibration(*embedder.match_thresholds)
            verdict = judge(index.search(vector, calibration.probe).scores, calibration)  # unfiltered: the library
        return results, verdict

    def explain(self, query: str, results: list[SearchResult]) -> dict[int, Why]:
        """Why each text result matched: how close it is to each part of the query, and what the
        model sees in it (when the model can say). Parts left out are listed too: a low score there
        is why an image stayed."""
        parsed = parse(query)
        embedder = self.library.embedder
        ids = [r.asset_id for r in results]
        vectors: dict[int, np.ndarray] = {}
        for chunk_ids, chunk in self.library.catalog.vectors(embedder.model_id, SEMANTIC, ids):
            vectors.update(zip(chunk_ids.tolist(), chunk, strict=True))
        found = [i for i in ids if i in vectors]
        if not found:
            return {}
        matrix = np.stack([vectors[i] for i in found])
        parts = embedder.embed_texts([c.text for c in parsed.clauses])
        scores = matrix @ parts.T
        concepts = embedder.concepts(matrix)
        return {
            asset_id: Why(
                parts=[
                    PartScore(c.text, c.negative, round(float(scores[n, j]), 4)) for j, c in enumerate(parsed.clauses)
                ],
                concepts=concepts[n] if concepts is not None else None,
            )
            for n, asset_id in enumerate(found)
        }

    def _missing_vector(self, asset_id: int) -> NoReturn:
        model_id = self.library.embedder.model_id
        if self.library.catalog.get(asset_id) is None:
            raise NotFound(f"no asset with id {asset_id}")
        raise NotFound(f"asset {asset_id} has no vector for model {model_id} (failed, or not re-indexed)")

    def similar_to_asset(self, asset_id: int, **options: Any) -> list[SearchResult]:
        embedder = self.library.embedder
        vector = self.library.catalog.vector(asset_id, embedder.model_id, embedder.similarity_space)
        if vector is None:
            self._missing_vector(asset_id)
        return self._run(self.library.similarity_index, vector, exclude={asset_id}, **options)

    def similar_to_image(self, image: DecodedImage, **options: Any) -> list[SearchResult]:
        embedder = self.library.embedder
        vector = embedder.encode_images([image.image])[embedder.similarity_space][0]
        return self._run(self.library.similarity_index, vector, **options)

    def similar_to_bytes(self, data: bytes, **options: Any) -> list[SearchResult]:
        image = decode_bytes(data, **self.library.settings.decode_limits)
        return self.similar_to_image(image, **options)

    def similar_to_file(self, path: Path, **options: Any) -> list[SearchResult]:
        path = Path(path).expanduser().resolve()  # the user's own links are fine; the reader opens no link
        if not path.is_file():
            raise NotFound(f"no such file: {path}")
        image = decode_file(path, **self.library.settings.decode_limits)
        return self.similar_to_image(image, **options)

    def fetch(self, url: str) -> bytes:
        """The image bytes at ``url``, fetched with the library's safety rules (no decoding yet)."""
        s = self.library.settings
        return (
            ImageFetcher(
                max_bytes=s.max_image_bytes,
                allow_private=s.allow_private_urls,
                timeout=s.fetch_timeout,
                max_redirects=s.max_redirects,
            )
            .fetch(url)
            .data
        )

    def similar_to_url(self, url: str, **options: Any) -> list[SearchResult]:
        return self.similar_to_bytes(self.fetch(url), **options)

    def _run(self, index: IndexBackend, vector: np.ndarray, **options: Any) -> list[SearchResult]:
        return ranked(self.library.catalog, index, vector, **options)
