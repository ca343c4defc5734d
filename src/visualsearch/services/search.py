"""Search a library: by text, by an asset in it, by an image file, bytes or URL.

Every search takes ``limit``, ``offset`` (results to skip, for paging),
``min_score`` and ``filters`` (an :class:`~visualsearch.catalog.AssetFilter`);
ranking is :func:`visualsearch.search.ranked`. "Similar to asset N" leaves
asset N out of its results. Text queries follow :mod:`visualsearch.search.query`
(``beach -people``, ``red car + night^0.5``), and a text query may start from an
asset: "like asset 42, but at night".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from ..catalog import AssetFilter
from ..errors import NotFound
from ..index import IndexBackend
from ..index.base import FilteringBackend
from ..ingest.decode import DecodedImage, decode_bytes, decode_file
from ..ingest.fetch import ImageFetcher
from ..models import ATTRIBUTES, SEMANTIC
from ..models.attributes import query_target
from ..search import SearchResult, TextQuery, combine, page_of, parse, ranked
from ..search.ranking import filtered_search
from ..search.relevance import MatchCalibration, MatchVerdict, judge
from ..search.words import split_words
from .library import Library

__all__ = ["PartScore", "SearchResult", "SearchService", "Why", "WordScores"]

#: Weight of the colour-and-light score next to the text score, for queries with such words
#: (visualsearch.models.attributes), times the share of the query's words that are such words
#: (to the power ATTRIBUTE_SHARE_POWER). Set on the scenes development set (benchmarks/scenes.py;
#: the sweep is in docs/benchmarks.md): without attributes all 204 queries' R@5 0.441, MRR 0.338,
#: colour queries' R@5 0.242; with weight 0.8 and power 1: 0.549, 0.411 and 0.788. A fixed weight
#: (power 0) of 0.5 gave 0.534, 0.403, 0.788: scaling by the share also keeps a colour word from
#: taking over a long description ("a man in a white shirt riding a horse").
ATTRIBUTE_WEIGHT = 0.8
ATTRIBUTE_SHARE_POWER = 1.0
#: A picture with colour or light words' attributes at this cosine or more is a close match for
#: them. All 63 scenes development queries with such words have a picture at 0.33 or more; on the
#: demo photos, which have nothing purple, pink or teal, those words' best is under 0.09.
ATTRIBUTE_CLOSE = 0.3
#: Candidates taken from each score before both are combined.
CANDIDATES = 300
#: What a picture whose read text (OCR) has every looked-up word of the query adds to its score,
#: times the share of those words it has (visualsearch.search.words); a left-out part's words take
#: it off, times that part's weight. The bundled model's text scores of the pictures a query is
#: about are 0.25-0.45, so a picture that shows the asked-for words comes first unless another
#: matches both ways. Set on the real text set (benchmarks/ocr.py; docs/benchmarks.md).
WORD_WEIGHT = 0.5
#: A query word of at least PREFIX_MIN characters also finds read words that start with it, for
#: PREFIX_CREDIT of a word: printed runs without a space ("debianedu", "TsunamiReady") are common in
#: logos. On the real text set (benchmarks/ocr.py) this and the split of letters|digits runs together
#: took S@1 of the 122 word queries from 0.869 to 0.877 (docs/benchmarks.md); shorter words ("art",
#: "edu") would find too many others.
PREFIX_MIN = 4
PREFIX_CREDIT = 0.5
#: Most characters of a picture's read text an explanation carries.
MAX_TEXT_SHOWN = 500


@dataclass(frozen=True)
class PartScore:
    """How close an image is to one part of a text query (cosine similarity)."""

    text: str
    negative: bool
    score: float


@dataclass(frozen=True)
class WordScores:
    """Pictures whose read text (OCR) has words of a query: what each gains for the asked-for words
    and loses for left-out ones, and which words those are."""

    bonus: dict[int, float]
    penalty: dict[int, float]
    words: dict[int, list[str]]
    left_out: dict[int, list[str]]
    #: Pictures that show every asked-for word, as whole words: what makes a query a close match.
    complete: set[int] = field(default_factory=set)

    def score(self, asset_id: int) -> float:
        return self.bonus.get(asset_id, 0.0) - self.penalty.get(asset_id, 0.0)


@dataclass(frozen=True)
class Why:
    """Why a text result matched: its closeness to each query part, and what the model sees in it."""

    parts: list[PartScore]
    concepts: list[str] | None
    #: The text read in the picture (OCR), when it was read and has any.
    text: str | None = None


def attribute_weight(query: str, found: list[str]) -> float:
    """How much the colour-and-light score counts for this query: more when the query is mostly
    about colour or light ("purple", "dark night sky") than when a colour qualifies one thing among
    many ("a man in a white shirt riding a horse")."""
    words = len(re.findall(r"[\w']+", query)) or 1
    share = min(1.0, sum(len(w.split()) for w in found) / words)
    return float(ATTRIBUTE_WEIGHT * share**ATTRIBUTE_SHARE_POWER)


def attribute_query(parsed: TextQuery, target: np.ndarray | None, weight: float) -> tuple[np.ndarray, float] | None:
    """The colour-and-light direction to rank by, and its weight: the asked-for words' target
    (``target``, ``weight``) minus each left-out part's own, counted as that part counts for the
    text (half unless weighted) and by the share of its words that are colour or light words.

    ``flowers -yellow`` thus pushes yellow pictures down by their pixels, as ``flowers yellow``
    lifts them; before, a left-out colour word only reached the text vector, which for the
    bundled model knows objects, not colours. None when no part has such words.
    """
    direction = None if target is None else weight * target
    for clause in parsed.negative:
        left_out, found = query_target(clause.text)
        if left_out is not None:
            push = clause.weight * attribute_weight(clause.text, found) * left_out
            direction = -push if direction is None else direction - push
    if direction is None:
        return None
    norm = float(np.linalg.norm(direction))
    if norm == 0.0:
        return None
    # text + norm x cos(attributes, direction / norm) = text + the weighted sum of the cosines
    return (direction / norm).astype(np.float32), norm


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
        target, weight, colour = None, 0.0, None
        if ATTRIBUTES in embedder.spaces:
            words = " ".join(c.text for c in parsed.positive)
            target, found = query_target(words)
            weight = attribute_weight(words, found) if target is not None else 0.0
            colour = attribute_query(parsed, target, weight)
        shown = self.word_scores(parsed)
        shows_words = False  # some picture the query may return shows its words
        if colour is not None or shown:
            results, shows_words = self._fused(vector, colour, shown, **options)
        else:
            results = self._run(index, vector, **options)
        verdict = None
        if embedder.match_thresholds is not None and base is None:
            calibration = MatchCalibration(*embedder.match_thresholds)
            verdict = judge(index.search(vector, calibration.probe).scores, calibration)  # unfiltered: the library
            if target is not None:
                # Colour and light words are judged by the picture with the most of them: a query that is
                # all such words ("purple", "night") by that alone; otherwise either kind of match counts.
                best = self.library.indexes(ATTRIBUTES).search(target, 1).scores
                colour_close = bool(len(best)) and float(best[0]) >= ATTRIBUTE_CLOSE
                only_colour = weight >= ATTRIBUTE_WEIGHT
                verdict = MatchVerdict(
                    colour_close if only_colour else (verdict.close or colour_close), verdict.best, verdict.margin
                )
            if verdict is not None and shows_words:  # whatever page was asked for
                verdict = MatchVerdict(True, verdict.best, verdict.margin)
        return results, verdict

    def word_scores(self, parsed: TextQuery) -> WordScores | None:
        """What each picture whose read text has the query's words adds to its score, and those words.

        A picture gains :data:`WORD_WEIGHT` times the weighted share of the query's words it shows
        (a word counts its clause's weight; the start of a longer read word counts
        :data:`PREFIX_CREDIT` of it), and loses the same for a left-out part's words, times that
        part's weight. None when no picture's read text has any of the query's words, asked for
        or left out (or no picture was read): the search is then exactly what it was without.
        """
        wanted, unwanted = split_words(parsed)
        texts = self.library.catalog.texts
        if not (wanted or unwanted) or not texts.any():
            return None
        hits = texts.matching(wanted) if wanted else {}
        credit = {i: sum(wanted[w] for w in found) for i, found in hits.items()}
        complete = {i for i, found in hits.items() if len(found) == len(wanted)}
        long_words = [w for w in wanted if len(w) >= PREFIX_MIN]
        if long_words:  # the start of a longer read word: "debian" in a logo's "debianedu"
            for i, found in texts.matching(long_words, prefix=True).items():
                started = found - hits.get(i, set())
                if started:
                    credit[i] = credit.get(i, 0.0) + PREFIX_CREDIT * sum(wanted[w] for w in started)
                    hits.setdefault(i, set()).update(started)
        total = sum(wanted.values()) or 1.0
        bonus = {i: WORD_WEIGHT * c / total for i, c in credit.items()}
        penalty: dict[int, float] = {}
        left_out: dict[int, list[str]] = {}
        for words, clause_weight in unwanted:
            for i, found in texts.matching(words).items():
                # At most the weight a picture can gain: the score stays within MAX_SCORE however the
                # left-out part is weighted (`-closed^10`).
                taken = penalty.get(i, 0.0) + WORD_WEIGHT * clause_weight * len(found) / len(words)
                penalty[i] = min(WORD_WEIGHT, taken)
                left_out.setdefault(i, []).extend(w for w in words if w in found)
        if not bonus and not penalty:
            return None
        order = list(wanted)
        matched = {i: sorted(found, key=order.index) for i, found in hits.items()}
        return WordScores(bonus, penalty, matched, left_out, complete)

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
        why = {
            asset_id: Why(
                parts=[
                    PartScore(c.text, c.negative, round(float(scores[n, j]), 4)) for j, c in enumerate(parsed.clauses)
                ],
                concepts=concepts[n] if concepts is not None else None,
            )
            for n, asset_id in enumerate(found)
        }
        target, words = query_target(" ".join(c.text for c in parsed.positive))
        if target is not None and ATTRIBUTES in embedder.spaces:  # the colour-and-light part of the score
            label = "colour and light: " + ", ".join(words)
            for chunk_ids, chunk in self.library.catalog.vectors(embedder.model_id, ATTRIBUTES, found):
                for asset_id, value in zip(chunk_ids.tolist(), (chunk @ target).tolist(), strict=True):
                    why[asset_id].parts.append(PartScore(label, False, round(float(value), 4)))
        shown = self.word_scores(parsed)
        texts = self.library.catalog.texts.of(found)
        for asset_id in found:
            if shown is not None and asset_id in shown.bonus:  # the read-text parts of the score
                label = "read in the picture: " + ", ".join(shown.words.get(asset_id, ()))
                why[asset_id].parts.append(PartScore(label, False, round(shown.bonus[asset_id], 4)))
            if shown is not None and asset_id in shown.penalty:
                label = "read in the picture: " + ", ".join(shown.left_out.get(asset_id, ()))
                why[asset_id].parts.append(PartScore(label, True, round(-shown.penalty[asset_id], 4)))
            if texts.get(asset_id):
                why[asset_id] = replace(why[asset_id], text=texts[asset_id][:MAX_TEXT_SHOWN])
        return why

    def _fused(
        self,
        vector: np.ndarray,
        colour: tuple[np.ndarray, float] | None,
        shown: WordScores | None,
        *,
        limit: int = 20,
        offset: int = 0,
        min_score: float | None = None,
        filters: AssetFilter | None = None,
        exclude: set[int] | None = None,
    ) -> tuple[list[SearchResult], bool]:
        """Rank by text score + weight x attribute score (``colour``: direction and weight, for queries with
        colour or light words) + the read-text words' score (``shown``). Also says whether any picture
        the query may return (filters and ``exclude`` applied) shows the asked-for words.

        Candidates are the best :data:`CANDIDATES` by the text and colour scores, plus every picture
        whose read text has the query's words (so an image that only the colour or its words find is
        in), and each candidate gets every score.
        """
        if limit < 1 or offset < 0:
            raise ValueError("limit must be at least 1 and offset cannot be negative")
        library = self.library
        catalog = library.catalog
        text_index = library.text_index
        searches: list[tuple[IndexBackend, np.ndarray, float]] = [(text_index, vector, 1.0)]
        if colour is not None:
            searches.append((library.indexes(ATTRIBUTES), colour[0], colour[1]))
        allow = None  # resolved once for every index, unless they filter by themselves
        wanted = filters if filters is not None and not filters.is_empty() else None
        if wanted is not None and not isinstance(text_index, FilteringBackend):
            allow = catalog.filter_ids(wanted)
        # The candidates depend only on which window of CANDIDATES results a page is in, so pages
        # within a window come from the same ranking (no duplicates or gaps between them). Past the
        # first window the ranking is an approximation: an image outside the lists of the first
        # window could outscore one inside it.
        k = CANDIDATES * -(-(offset + limit) // CANDIDATES)
        scores: list[dict[int, float]] = []
        for index, query, _ in searches:
            hits = filtered_search(catalog, index, query, k, exclude=exclude, filters=filters, allow=allow)
            scores.append(dict(zip(hits.ids.tolist(), hits.scores.tolist(), strict=True)))
        candidates = set().union(*scores)
        if shown is not None:
            worded = set(shown.bonus) - set(exclude or ())
            if wanted is not None:
                worded &= set((allow if allow is not None else catalog.filter_ids(wanted)).tolist())
            # The pictures that gain most, as many as the other lists hold: a common read word must
            # not make every search score thousands of extra candidates.
            candidates |= set(sorted(worded, key=lambda i: (-shown.bonus[i], i))[:k])
        # Each candidate gets all of its real scores: the ones missing from a list come from a
        # search restricted to them (no vector is read back from the catalog). A picture without
        # a vector (not indexed for this model) stays out.
        for found, (index, query, _) in zip(scores, searches, strict=True):
            missing = np.asarray(sorted(candidates - set(found)), dtype=np.int64)
            if len(missing):
                hits = index.search(query, len(missing), allow=missing)
                found.update(zip(hits.ids.tolist(), hits.scores.tolist(), strict=True))
        ids = sorted(i for i in candidates if all(i in found for found in scores))
        fused = np.asarray(
            [
                sum(w * found[i] for found, (_, _, w) in zip(scores, searches, strict=True))
                + (shown.score(i) if shown is not None else 0.0)
                for i in ids
            ],
            dtype=np.float64,
        )
        order = np.lexsort((np.asarray(ids, dtype=np.int64), -fused))  # best first, ties by id
        page = page_of(catalog, np.asarray(ids, dtype=np.int64)[order], fused[order], limit, min_score, offset)
        if shown is None:
            return page, False
        shows = any(i in shown.complete for i in ids)
        return [replace(r, words=tuple(shown.words.get(r.asset_id, ()))) for r in page], shows

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
