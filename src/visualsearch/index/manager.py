"""Keeps the on-disk indexes in step with the catalog, incrementally.

Layout, per model and space: ``<index_dir>/<model_id>/<space>/gen-<n>/`` holds
``ids.npy``, ``seqs.npy`` (the catalog row id of each vector, which changes
whenever a vector is rewritten), ``vectors.npy`` and, for large libraries,
``hnsw.bin``. A ``CURRENT`` file names the live generation and is replaced
atomically, so a crash mid-update leaves the previous index intact.

A sync reads only the vectors that are new or changed since the live
generation; the approximate index gets the same difference applied in place.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..catalog import Catalog
from .ann import HnswIndex
from .base import SearchHits, VectorIndex
from .exact import ExactIndex

ProgressFn = Callable[[int, int], None]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


#: Below this share of the library, a filtered search scans the allowed rows exactly; above it
#: the HNSW walk checks the filter as it goes. Measured on 1M 384-d vectors, 2 cores
#: (benchmarks/index_scale.py): the exact scan took 15 ms at 1%, 21 ms at 2%, 38 ms at 3%;
#: the walk 29 ms at 2%, 18 ms at 3%, 4 ms at 10%, 3 ms at 30%, with recall@10 >= 0.999.
EXACT_FILTER_SHARE = 0.025


def allocated_npy(path: Path, shape: tuple[int, ...], dtype: npt.DTypeLike) -> np.memmap[Any, Any]:
    """A writable memory-mapped ``.npy`` whose disk blocks are reserved before any write.

    Writing through a memory map into a sparse file kills the process with SIGBUS
    when the disk fills up. ``posix_fallocate`` reserves the blocks first, so a
    full disk is an ``OSError`` (ENOSPC) here, before anything is written.
    """
    dtype = np.dtype(dtype)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
        )
        size = f.tell() + int(np.prod(shape)) * dtype.itemsize
        try:
            os.posix_fallocate(f.fileno(), 0, size)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(path)) from None
    mapped: np.memmap[Any, Any] = np.load(path, mmap_mode="r+")
    return mapped


def search_filtered(
    index: VectorIndex,
    exact: Callable[[], ExactIndex],
    query: np.ndarray,
    k: int,
    exclude: set[int] | None = None,
    allow: np.ndarray | None = None,
) -> SearchHits:
    """Search ``index``; with a filter, pick the exact scan or the filtered walk by its share.

    ``exact`` opens the exact index only when it is needed. Either way the page holds the true
    best matches among the allowed ids, never "the top k, then filtered".
    """
    if allow is not None and isinstance(index, HnswIndex) and len(allow) < EXACT_FILTER_SHARE * len(index):
        index = exact()
    try:
        return index.search(query, k, exclude=exclude, allow=allow)
    except RuntimeError:
        if allow is None:
            raise
        # The filtered graph walk found fewer matches than asked for: answer exactly.
        return exact().search(query, k, exclude=exclude, allow=allow)


class IndexManager:
    def __init__(self, catalog: Catalog, index_dir: Path, model_id: str, space: str, ann_threshold: int = 20_000):
        self.catalog = catalog
        self.folder = Path(index_dir) / _safe(model_id) / _safe(space)
        self.model_id = model_id
        self.space = space
        self.ann_threshold = ann_threshold
        self._loaded: tuple[str, VectorIndex] | None = None

    # -- generations ---------------------------------------------------------------
    def _current(self) -> Path | None:
        pointer = self.folder / "CURRENT"
        for _ in range(5):
            try:
                name = pointer.read_text().strip()
            except FileNotFoundError:
                return None
            gen = self.folder / name
            if (gen / "ids.npy").exists():
                return gen
            if pointer.read_text().strip() == name:
                return None  # a broken generation: the next sync rebuilds it
            # Otherwise a sync replaced the generation after we read the pointer: read it again.
        return None

    def _publish(self, gen: Path) -> None:
        pointer = self.folder / "CURRENT"
        tmp = self.folder / f"CURRENT.{os.getpid()}.tmp"
        tmp.write_text(gen.name)
        previous = self._current()
        tmp.replace(pointer)
        # Keep the generation just replaced: a reader that read CURRENT a moment ago
        # may still be opening it. Older ones go.
        for old in self.folder.glob("gen-*"):
            if old != gen and old != previous:
                shutil.rmtree(old, ignore_errors=True)

    # -- sync ------------------------------------------------------------------------
    def sync(self, progress: ProgressFn | None = None) -> dict[str, int]:
        """Bring the index up to date with the catalog. Returns counts of changes."""
        ids, seqs = self.catalog.embedding_ids(self.model_id, self.space)
        current = self._current()
        if current is not None:
            old_ids, old_seqs = np.load(current / "ids.npy"), np.load(current / "seqs.npy")
        else:
            old_ids, old_seqs = np.empty(0, np.int64), np.empty(0, np.int64)
        if np.array_equal(ids, old_ids) and np.array_equal(seqs, old_seqs) and current is not None:
            return {"added": 0, "removed": 0, "total": len(ids)}

        old_pos = {int(i): p for p, i in enumerate(old_ids)}
        keep_src = np.full(len(ids), -1, dtype=np.int64)  # row in the old matrix, or -1 to fetch
        for p, (i, s) in enumerate(zip(ids.tolist(), seqs.tolist(), strict=True)):
            q = old_pos.get(i)
            if q is not None and old_seqs[q] == s:
                keep_src[p] = q
        fetch = ids[keep_src < 0]
        removed = np.setdiff1d(old_ids, ids) if len(old_ids) else np.empty(0, np.int64)
        changed_old = np.intersect1d(old_ids, fetch) if len(old_ids) else np.empty(0, np.int64)

        self.folder.mkdir(parents=True, exist_ok=True)
        gen = self.folder / f"gen-{os.getpid()}-{np.random.default_rng().integers(1 << 40):x}"
        gen.mkdir()
        dim = self._dim(current, fetch)
        vectors = allocated_npy(gen / "vectors.npy", (len(ids), dim), np.float32)
        if current is not None and (keep_src >= 0).any():
            old_vectors = np.load(current / "vectors.npy", mmap_mode="r")
            rows = np.nonzero(keep_src >= 0)[0]
            for start in range(0, len(rows), 65536):
                chunk = rows[start : start + 65536]
                vectors[chunk] = old_vectors[keep_src[chunk]]
        position = {int(i): p for p, i in enumerate(ids)}
        fetched_ids, fetched_vecs = [], []
        done = 0
        for chunk_ids, chunk_vecs in self.catalog.vectors(self.model_id, self.space, fetch.tolist()):
            rows = np.array([position[int(i)] for i in chunk_ids], dtype=np.int64)
            vectors[rows] = chunk_vecs
            fetched_ids.append(chunk_ids)
            fetched_vecs.append(chunk_vecs)
            done += len(chunk_ids)
            if progress:
                progress(done, len(fetch))
        vectors.flush()
        del vectors
        np.save(gen / "ids.npy", ids)
        np.save(gen / "seqs.npy", seqs)

        if len(ids) >= self.ann_threshold:
            ann_path = gen / "hnsw.bin"
            if current is not None and (current / "hnsw.bin").exists():
                shutil.copyfile(current / "hnsw.bin", ann_path)
                ann = HnswIndex(dim, ann_path)
                ann.remove(np.concatenate([removed, changed_old]))
                if fetched_ids:
                    ann.upsert(np.concatenate(fetched_ids), np.concatenate(fetched_vecs))
            else:  # first time over the threshold: build from the full matrix
                ann = HnswIndex(dim, None)
                matrix = np.load(gen / "vectors.npy", mmap_mode="r")
                for start in range(0, len(ids), 65536):
                    ann.upsert(ids[start : start + 65536], np.asarray(matrix[start : start + 65536]))
            ann.save(ann_path)
        self._publish(gen)
        self._loaded = None
        return {"added": int(len(fetch)), "removed": int(len(removed)), "total": int(len(ids))}

    def _dim(self, current: Path | None, fetch: np.ndarray) -> int:
        if current is not None:
            old = np.load(current / "vectors.npy", mmap_mode="r")
            if len(old):  # an empty generation only holds a placeholder width
                return int(old.shape[1])
        if len(fetch):
            vec = self.catalog.vector(int(fetch[0]), self.model_id, self.space)
            if vec is not None:
                return int(vec.shape[0])
        return 1

    # -- searching -------------------------------------------------------------------
    def search(
        self, query: np.ndarray, k: int, exclude: set[int] | None = None, allow: np.ndarray | None = None
    ) -> SearchHits:
        return search_filtered(self.index(), self._exact, query, k, exclude=exclude, allow=allow)

    def generation(self) -> str:
        """Changes whenever the indexed vectors change (for caches of derived results)."""
        current = self._current()
        return current.name if current is not None else "empty"

    def exact(self) -> ExactIndex:
        """The live generation as an exact index (every id and vector, memory-mapped)."""
        return self._exact()

    def _exact(self) -> ExactIndex:
        current = self._current()
        if current is None:
            return ExactIndex(np.empty(0, np.int64), np.empty((0, 1), np.float32))
        return ExactIndex.load(current)

    def index(self) -> VectorIndex:
        """The index to search: approximate above the threshold, exact below."""
        for _ in range(5):
            try:
                return self._open_current()
            except FileNotFoundError:  # a sync replaced the generation while we opened it
                continue
        return self._open_current()

    def _open_current(self) -> VectorIndex:
        current = self._current()
        if current is None:
            return ExactIndex(np.empty(0, np.int64), np.empty((0, 1), np.float32))
        loaded = self._loaded
        if loaded is not None and loaded[0] == current.name:
            return loaded[1]
        exact = ExactIndex.load(current)
        chosen: VectorIndex = exact
        ann_path = current / "hnsw.bin"
        if len(exact) >= self.ann_threshold and ann_path.exists():
            chosen = HnswIndex(exact.vectors.shape[1], ann_path, live=len(exact))
        self._loaded = (current.name, chosen)
        return chosen
