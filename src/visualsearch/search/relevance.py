"""Knowing when nothing matches: a per-model cut-off for text queries.

Cosine scores are not comparable across queries: with the bundled model a nonsense query
("asdfqwer") still scores about 0.2 against every image, and a good query's best match
may score 0.35. What separates them is whether the best results stand out. A text query
has *close matches* when its best score reaches ``absolute``, or when it exceeds the mean
of the next ``probe - 1`` results (an unfiltered look at the whole library) by at least
``margin``. Otherwise the answer says "No close matches; showing the nearest N" instead
of presenting a ranking of the whole library as if it were an answer.

The two thresholds belong to a model (its scores have their own scale); they are set
by ``benchmarks/nomatch.py`` on the development sets (the labelled scenes queries, which
must keep their matches, and queries with no matching image, which should lose them) and
stored on the model as :attr:`visualsearch.models.Embedder.match_calibration`. A model
without one never claims that nothing matches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MatchCalibration:
    absolute: float
    margin: float
    #: How many of the best scores the margin is measured on.
    probe: int = 50


@dataclass(frozen=True)
class MatchVerdict:
    close: bool
    best: float
    margin: float


def judge(scores: np.ndarray, calibration: MatchCalibration) -> MatchVerdict:
    """Whether the best of ``scores`` (best first, unfiltered) is a close match."""
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) == 0:
        return MatchVerdict(False, 0.0, 0.0)
    best = float(scores[0])
    margin = float(best - scores[1:].mean()) if len(scores) > 1 else best
    return MatchVerdict(best >= calibration.absolute or margin >= calibration.margin, best, margin)
