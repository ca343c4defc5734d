"""A published generation seen as a base segment plus a small delta: updates without a full rewrite.

At a million vectors, rewriting the whole matrix and the HNSW file on every sync costs
gigabytes of writes and a minute of work for a thousand new images. Instead a sync writes
a *delta generation*: the vectors that are new or changed since a *base* generation (a
full one, with ``vectors.npy`` and ``hnsw.bin``), plus the base ids that are no longer
live (removed, or superseded by a newer vector in the delta). Searching one searches the
base graph with those ids hidden and the delta exactly, and merges the two. Compaction
(:meth:`~.manager.IndexManager.compact`) folds the delta back into a new base, in the
background, and publishes it like any other generation.

Files of a delta generation: ``ids.npy`` / ``seqs.npy`` (every live id, sorted, and its
catalog row id, as in a full generation), ``BASE`` (the base generation's folder name),
``delta_ids.npy`` (sorted), ``delta_seqs.npy``, ``delta_vectors.npy`` and ``hidden.npy``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .ann import HnswIndex
from .base import SearchHits, VectorIndex, rank
from .exact import ExactIndex

BASE_FILE = "BASE"


def matches(ids: np.ndarray, seqs: np.ndarray, other_ids: np.ndarray, other_seqs: np.ndarray) -> np.ndarray:
    """For each (id, seq), whether ``other`` holds the same id with the same seq (both sorted by id).

    A vector is identified by its asset id *and* its catalog row id (seq): a rewritten
    vector gets a new seq, so "same id, same seq" means "the same vector".
    """
    if len(other_ids) == 0 or len(ids) == 0:
        return np.zeros(len(ids), bool)
    pos = np.minimum(np.searchsorted(other_ids, ids), len(other_ids) - 1)
    same: np.ndarray = (other_ids[pos] == ids) & (other_seqs[pos] == seqs)
    return same


def positions(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Row of each of ``ids`` in ``sorted_ids`` (every one must be present)."""
    return np.asarray(np.searchsorted(sorted_ids, ids), dtype=np.int64)


@dataclass
class Snapshot:
    """What one published generation holds (read from its folder; nothing loaded eagerly)."""

    folder: Path
    ids: np.ndarray
    seqs: np.ndarray
    #: The generation holding the full matrix and graph: ``folder`` itself for a full generation.
    base: Path
    delta_ids: np.ndarray
    delta_seqs: np.ndarray
    hidden: np.ndarray

    @property
    def layered(self) -> bool:
        return self.base != self.folder

    @classmethod
    def read(cls, folder: Path) -> Snapshot:
        ids, seqs = np.load(folder / "ids.npy"), np.load(folder / "seqs.npy")
        pointer = folder / BASE_FILE
        if not pointer.exists():
            empty = np.empty(0, np.int64)
            return cls(folder, ids, seqs, folder, empty, empty, empty)
        base = folder.parent / pointer.read_text().strip()
        if not (base / "ids.npy").exists():
            raise FileNotFoundError(base / "ids.npy")
        return cls(
            folder,
            ids,
            seqs,
            base,
            np.load(folder / "delta_ids.npy"),
            np.load(folder / "delta_seqs.npy"),
            np.load(folder / "hidden.npy"),
        )

    @cached_property
    def _base_lists(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.layered:
            return self.ids, self.seqs
        return np.load(self.base / "ids.npy"), np.load(self.base / "seqs.npy")

    def base_ids_seqs(self) -> tuple[np.ndarray, np.ndarray]:
        """The base generation's ids and seqs, read once per snapshot (16 MB at a million vectors,
        needed several times by one sync)."""
        return self._base_lists

    def base_snapshot(self) -> Snapshot:
        """The base generation as a snapshot of its own, from the lists already read."""
        if not self.layered:
            return self
        ids, seqs = self.base_ids_seqs()
        empty = np.empty(0, np.int64)
        return Snapshot(self.base, ids, seqs, self.base, empty, empty, empty)

    def base_vectors(self) -> np.ndarray:
        mapped: np.ndarray = np.load(self.base / "vectors.npy", mmap_mode="r")
        return mapped

    def delta_vectors(self) -> np.ndarray:
        if not self.layered:
            return np.empty((0, self.dim()), np.float32)
        mapped: np.ndarray = np.load(self.folder / "delta_vectors.npy", mmap_mode="r")
        return mapped

    def dim(self) -> int:
        return int(self.base_vectors().shape[1])

    def vectors_for(self, ids: np.ndarray, seqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which of (ids, seqs) this snapshot holds, and where: (mask, source) per row.

        ``source`` >= 0 is a row of the base matrix, < 0 is ``-1 - row`` of the delta matrix.
        """
        source = np.zeros(len(ids), np.int64)
        found = np.zeros(len(ids), bool)
        if self.layered and len(self.delta_ids):
            in_delta = matches(ids, seqs, self.delta_ids, self.delta_seqs)
            source[in_delta] = -1 - positions(self.delta_ids, ids[in_delta])
            found |= in_delta
        base_ids, base_seqs = self.base_ids_seqs()
        in_base = ~found & matches(ids, seqs, base_ids, base_seqs)
        if self.layered and len(self.hidden):
            in_base &= ~np.isin(ids, self.hidden)
        source[in_base] = positions(base_ids, ids[in_base])
        return found | in_base, source

    def gather(self, source: np.ndarray, out: np.ndarray, rows: np.ndarray, chunk: int = 65536) -> None:
        """Copy the vectors named by ``source`` (see :meth:`vectors_for`) into ``out[rows]``."""
        base, delta = self.base_vectors(), self.delta_vectors()
        for start in range(0, len(rows), chunk):
            src, dst = source[start : start + chunk], rows[start : start + chunk]
            from_base = src >= 0
            if from_base.any():
                out[dst[from_base]] = base[src[from_base]]
            if (~from_base).any():
                out[dst[~from_base]] = delta[-1 - src[~from_base]]


class LayeredIndex(VectorIndex):
    """A base index with some ids hidden, plus an exact delta: searched as one."""

    def __init__(self, base: VectorIndex, base_exact: ExactIndex, delta: ExactIndex, hidden: np.ndarray, live: int):
        self.base = base
        self.base_exact = base_exact
        self.delta = delta
        self.hidden = hidden
        self.live = live
        self.kind = f"{base.kind}+delta"

    def __len__(self) -> int:
        return self.live

    def search(
        self, query: np.ndarray, k: int, exclude: set[int] | None = None, allow: np.ndarray | None = None
    ) -> SearchHits:
        from .manager import search_filtered  # the share rule for filters lives with the manager

        base_allow = allow
        if allow is not None and len(self.hidden):
            base_allow = allow[~np.isin(allow, self.hidden)]
        if base_allow is None and not isinstance(self.base, HnswIndex) and len(self.hidden):
            # An exact base cannot hide ids by itself: allow every live one instead.
            base_allow = self.base_exact.ids[~np.isin(self.base_exact.ids, self.hidden)]
        from_base = search_filtered(
            self.base, lambda: self.base_exact, query, k, exclude=exclude, allow=base_allow, live=self._live_base
        )
        from_delta = self.delta.search(query, k, exclude=exclude, allow=allow)
        keep = ~np.isin(from_base.ids, self.delta.ids)  # a delta vector supersedes the base one
        return rank(
            np.concatenate([from_base.ids[keep], from_delta.ids]),
            np.concatenate([from_base.scores[keep], from_delta.scores]),
            k,
        )

    def _live_base(self) -> np.ndarray:
        ids = self.base_exact.ids
        return ids[~np.isin(ids, self.hidden)] if len(self.hidden) else ids

    def search_many(self, queries: np.ndarray, k: int, ef: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        base_ids, base_scores = self.base.search_many(queries, k, ef=ef)
        delta_ids, delta_scores = self.delta.search_many(queries, k, ef=ef)
        # A delta vector supersedes the base one; hidden ids are gone (a graph base has them marked
        # deleted already, an exact base does not).
        stale = np.isin(base_ids, self.delta.ids) | np.isin(base_ids, self.hidden)
        base_scores = np.where(stale, -np.inf, base_scores)
        ids = np.concatenate([base_ids, delta_ids], axis=1)
        scores = np.concatenate([base_scores, delta_scores], axis=1)
        order = np.lexsort((np.where(ids < 0, np.iinfo(np.int64).max, ids), -scores), axis=-1)[:, :k]
        ids, scores = np.take_along_axis(ids, order, axis=1), np.take_along_axis(scores, order, axis=1)
        ids[~np.isfinite(scores)] = -1
        return ids, scores.astype(np.float32)


def merged_exact(snapshot: Snapshot) -> ExactIndex:
    """Every live id and vector of a layered snapshot, in one in-memory matrix (for all-pairs work)."""
    found, source = snapshot.vectors_for(snapshot.ids, snapshot.seqs)
    vectors = np.empty((len(snapshot.ids), snapshot.dim()), np.float32)
    rows = np.nonzero(found)[0]
    snapshot.gather(source[rows], vectors, rows)
    if found.all():  # always, for a consistent snapshot: no second copy of the matrix
        return ExactIndex(snapshot.ids, vectors)
    return ExactIndex(snapshot.ids[found], vectors[found])
