"""Approximate nearest neighbours with hnswlib (HNSW), persisted beside the catalog.

Chosen by measurement (100,000 clustered 384-d vectors, M=32, ef=64, 2 cores):
hnswlib built in 33 s with 0.42 ms p50 per query, FAISS HNSW in 38 s / 0.47 ms,
USearch in 65 s / 0.88 ms, all at the same recall. hnswlib also updates a
vector in place and deletes by label, so the index follows the catalog
incrementally; FAISS's HNSW cannot remove vectors.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .base import SearchHits, VectorIndex, rank

#: Graph degree and build breadth (the 100k measurement above; 1M figures in the README).
DEFAULT_M = 32
DEFAULT_EF_CONSTRUCTION = 128


def default_ef_search(n: int) -> int:
    """Search breadth for an index of ``n`` vectors.

    Recall at a fixed breadth falls as the graph grows, so the breadth grows with it.
    On 1M clustered 512-d vectors (benchmarks/index_scale.py, M=32, ef_construction=128)
    ef=128 found 92.7% of the true top-10, ef=256 97.8% and ef=512 99.4%, at a median of
    1.3, 1.6 and 2.0 ms per query on 2 cores; at 100k vectors ef=128 is already enough.
    """
    if n <= 100_000:
        return 128
    if n <= 400_000:
        return 256
    return 512


def allowed_test(allow: np.ndarray) -> Callable[[int], bool]:
    """The membership test hnswlib calls for each candidate: one byte per id up to the largest.

    A Python set of the ids cost more than the search it filtered (7 ms for 100,000 ids,
    28 ms for 300,000, per query); the byte table takes about a millisecond for a million.
    """
    table = np.zeros(int(allow.max()) + 1, np.uint8)
    table[allow] = 1
    flags = table.tobytes()
    size = len(flags)
    return lambda label: label < size and flags[label] != 0


class HnswIndex(VectorIndex):
    kind = "hnsw"

    def __init__(
        self,
        ndim: int,
        path: Path | None = None,
        M: int = DEFAULT_M,
        ef_construction: int = DEFAULT_EF_CONSTRUCTION,
        ef_search: int | None = None,
        threads: int = 0,
        live: int | None = None,
    ):
        import hnswlib

        self.ndim = ndim
        #: Live (not deleted) vectors; hnswlib counts deleted ones too, the catalog knows better.
        self.live = live
        #: None = :func:`default_ef_search` for the index's size.
        self.ef_search = ef_search
        self._index = hnswlib.Index(space="ip", dim=ndim)
        if path is not None and Path(path).exists():
            self._index.load_index(str(path))
        else:
            self._index.init_index(max_elements=1024, M=M, ef_construction=ef_construction)
        # Never -1: hnswlib 0.8 compares ``rows <= num_threads * 4`` with an unsigned row count,
        # so a negative thread count turns every add_items / batched knn_query single-threaded.
        self._index.set_num_threads(threads or os.cpu_count() or 1)

    @property
    def breadth(self) -> int:
        return self.ef_search or default_ef_search(len(self))

    def __len__(self) -> int:
        return self.live if self.live is not None else self._index.get_current_count()

    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors; an id already present gets its vector replaced in place."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return
        needed = self._index.get_current_count() + len(ids)
        if needed > self._index.get_max_elements():
            self._index.resize_index(max(needed, int(self._index.get_max_elements() * 1.5)))
        for i in ids.tolist():
            try:
                self._index.unmark_deleted(i)  # re-added after a removal
            except RuntimeError:  # not present or not deleted: the common case
                pass
        self._index.add_items(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        self.live = None

    def remove(self, ids: np.ndarray) -> None:
        for i in np.asarray(ids, dtype=np.int64).tolist():
            try:
                self._index.mark_deleted(i)
            except RuntimeError:  # not present, or already deleted
                pass
        self.live = None

    def save(self, path: Path) -> None:
        """Write the graph; a short write (full disk) raises ENOSPC instead of publishing a broken file.

        hnswlib writes through a C++ stream that does not report write errors, so the
        size on disk is compared with the size it should have.
        """
        tmp = Path(path).with_suffix(".tmp")
        self._index.save_index(str(tmp))
        expected = self._index.index_file_size()
        if tmp.stat().st_size != expected:
            tmp.unlink(missing_ok=True)
            raise OSError(errno.ENOSPC, "short write (is the disk full?)", str(path))
        tmp.replace(path)

    def search(
        self, query: np.ndarray, k: int, exclude: set[int] | None = None, allow: np.ndarray | None = None
    ) -> SearchHits:
        if len(self) == 0 or k <= 0:
            return SearchHits(np.empty(0, np.int64), np.empty(0, np.float32))
        want = min(len(self), k + (len(exclude) if exclude else 0))
        filter_fn = None
        breadth = self.breadth
        if allow is not None:
            allow = np.asarray(allow, dtype=np.int64)  # the catalog's ids: unique (np.unique costs 20+ ms at 100k)
            want = min(want, len(allow))
            if want == 0:
                return SearchHits(np.empty(0, np.int64), np.empty(0, np.float32))
            filter_fn = allowed_test(allow)  # checked while walking the graph, not afterwards
            # The walk keeps going until it holds ``ef`` allowed vectors, so it is in effect a
            # search of the allowed subset: size the breadth for that subset, not the library.
            breadth = self.ef_search or default_ef_search(len(allow))
        self._index.set_ef(max(breadth, want))
        # Raises RuntimeError when the graph walk finds fewer than ``want`` matches;
        # search_filtered (index.manager) then answers exactly instead.
        labels, distances = self._index.knn_query(
            np.asarray(query, dtype=np.float32)[None, :], k=want, filter=filter_fn
        )
        ids = labels[0].astype(np.int64)
        scores = (1.0 - distances[0]).astype(np.float32)  # hnswlib "ip" distance = 1 - dot
        if exclude:
            keep = ~np.isin(ids, np.fromiter(exclude, dtype=np.int64))
            ids, scores = ids[keep], scores[keep]
        return rank(ids, scores, k)

    def search_many(
        self, queries: np.ndarray, k: int, ef: int | None = None, block: int = 4096
    ) -> tuple[np.ndarray, np.ndarray]:
        """``ef``: search breadth; near neighbours (duplicates) are found with a small one."""
        n = len(queries)
        out_ids = np.full((n, k), -1, np.int64)
        out_scores = np.full((n, k), -np.inf, np.float32)
        want = min(k, len(self))
        if want == 0 or n == 0:
            return out_ids, out_scores
        self._index.set_ef(max(ef or self.breadth, want))
        for start in range(0, n, block):
            rows = np.ascontiguousarray(queries[start : start + block], dtype=np.float32)
            try:
                labels, distances = self._index.knn_query(rows, k=want)
            except RuntimeError:  # some query found fewer than ``want`` live vectors: row by row
                for r, row in enumerate(rows):
                    ids, scores = self._fewer(row, want)
                    out_ids[start + r, : len(ids)], out_scores[start + r, : len(ids)] = ids, scores
                continue
            out_ids[start : start + block, :want] = labels.astype(np.int64)
            out_scores[start : start + block, :want] = 1.0 - distances
        return out_ids, out_scores

    def _fewer(self, query: np.ndarray, want: int) -> tuple[np.ndarray, np.ndarray]:
        """As many of the ``want`` nearest as the graph walk finds.

        hnswlib raises instead of returning a short row when deleted vectors crowd the query's
        neighbourhood (an island of removed look-alikes); halving ``k`` finds what is there.
        """
        k = want
        while k >= 1:
            try:
                labels, distances = self._index.knn_query(query[None, :], k=k)
                return labels[0].astype(np.int64), (1.0 - distances[0]).astype(np.float32)
            except RuntimeError:
                k //= 2
        return np.empty(0, np.int64), np.empty(0, np.float32)
