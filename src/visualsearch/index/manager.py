"""Keeps the on-disk indexes in step with the catalog, with writes proportional to the change.

Layout, per model and space: ``<index_dir>/<model_id>/<space>/gen-<n>/``. A *full*
generation holds ``ids.npy``, ``seqs.npy`` (the catalog row id of each vector, which
changes whenever a vector is rewritten), ``vectors.npy`` and, for large libraries,
``hnsw.bin``. A *delta* generation (see :mod:`.segments`) holds only what changed since a
full one it names as its base. A ``CURRENT`` file names the live generation and is
replaced atomically, so a crash mid-update leaves the previous index intact; folders
being written are named ``tmp-<pid>-...`` until they are complete.

Small libraries (below the HNSW threshold) are rewritten on each sync: it costs
milliseconds. Above it a sync publishes a delta (1,000 new images on a million: about a
second, mostly reading the catalog's id list) and a background compaction later folds
the delta into a new base, off the search path.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..catalog import Catalog
from .ann import HnswIndex
from .base import SearchHits, VectorIndex
from .exact import ExactIndex
from .segments import BASE_FILE, LayeredIndex, Snapshot, matches, merged_exact, positions

ProgressFn = Callable[[int, int], None]
log = logging.getLogger(__name__)

#: A delta is folded into a new base once its changed rows pass this share of the base...
COMPACT_SHARE = 0.05
#: ...but never below this many rows (a small delta costs a search almost nothing)...
COMPACT_MIN_ROWS = 1_000
#: ...and before an exact scan of it would read more than this per query: 32 MiB is about
#: 3 ms on 2 cores, against 1-2 ms for the HNSW walk of a million vectors.
DELTA_MAX_BYTES = 32 << 20
#: A change this many times past the compaction point is written as a full generation at
#: once: publishing it as a delta would make every search slow until compaction caught up.
INLINE_FACTOR = 4
#: Written into every generation this code makes. A generation without it predates migration
#: 0008, after which SQLite could hand out a row id the index had already seen (so a vector
#: could not be told from an older one by its id): such an index is rebuilt from the catalog once.
FORMAT_FILE, FORMAT = "FORMAT", "2"


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
    live: Callable[[], np.ndarray] | None = None,
) -> SearchHits:
    """Search ``index``; with a filter, pick the exact scan or the filtered walk by its share.

    ``exact`` opens the exact index only when it is needed. Either way the page holds the true
    best matches among the allowed ids, never "the top k, then filtered". ``live``, for an exact
    index that also holds vectors the graph has deleted, gives the ids still live.
    """
    if allow is not None and isinstance(index, HnswIndex) and len(allow) < EXACT_FILTER_SHARE * len(index):
        index = exact()
    try:
        return index.search(query, k, exclude=exclude, allow=allow)
    except RuntimeError:
        # The graph walk found fewer matches than asked for: a narrow filter, or deleted vectors
        # crowding the query's neighbourhood (a folder removed and its near copies queried).
        # Answer exactly.
        if allow is None and live is not None:
            allow = live()
        return exact().search(query, k, exclude=exclude, allow=allow)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_all(folders: list[Path]) -> None:
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def _base_name(gen: Path | None) -> str | None:
    if gen is None:
        return None
    try:
        return (gen / BASE_FILE).read_text().strip()
    except FileNotFoundError:
        return None


class IndexManager:
    def __init__(
        self,
        catalog: Catalog,
        index_dir: Path,
        model_id: str,
        space: str,
        ann_threshold: int = 20_000,
        background: bool = True,
    ):
        self.catalog = catalog
        self.folder = Path(index_dir) / _safe(model_id) / _safe(space)
        self.model_id = model_id
        self.space = space
        self.ann_threshold = ann_threshold
        #: Compact in a background thread (a server) or within sync (tests, scripts that exit at once).
        self.background = background
        self._loaded: tuple[str, VectorIndex] | None = None
        #: A generation's index loaded by a compaction just before it published it.
        self._preloaded: tuple[str, VectorIndex] | None = None
        #: The graph the last full generation was written from, and the folder it was written to.
        self._last_graph: tuple[Path, HnswIndex] | None = None
        #: The base graph of the live delta generation, kept across deltas: (base name, graph, hidden ids).
        self._base_graph: tuple[str, HnswIndex, np.ndarray] | None = None
        self._compactor: threading.Thread | None = None
        self._cleaner: threading.Thread | None = None
        self._graph_lock = threading.Lock()

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

    def _snapshot(self) -> Snapshot | None:
        for _ in range(5):
            current = self._current()
            if current is None:
                return None
            try:
                return Snapshot.read(current)
            except FileNotFoundError:  # replaced while we read it
                continue
            except (EOFError, ValueError, OSError) as exc:
                # A live generation that cannot be read (a truncated file after a power cut): treat
                # the index as absent, so the next sync rebuilds it from the catalog.
                log.warning("index generation %s is unreadable (%s); it will be rebuilt", current, exc)
                return None
        current = self._current()
        return Snapshot.read(current) if current is not None else None

    def _new_folder(self) -> Path:
        """A folder to write a generation into; named ``tmp-*`` so no cleanup takes it meanwhile."""
        self.folder.mkdir(parents=True, exist_ok=True)
        gen = self.folder / f"tmp-{os.getpid()}-{np.random.default_rng().integers(1 << 40):x}"
        gen.mkdir()
        return gen

    def _finish(self, tmp: Path) -> Path:
        """Give a completely written folder its generation name (it can then be published)."""
        gen = self.folder / ("gen-" + tmp.name.removeprefix("tmp-"))
        tmp.replace(gen)
        return gen

    @contextmanager
    def _locked(self, name: str, blocking: bool = True) -> Iterator[bool]:
        """An exclusive lock on ``<folder>/<name>`` between processes and threads (flock)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / name, "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _publish(self, gen: Path) -> None:
        pointer = self.folder / "CURRENT"
        tmp = self.folder / f"CURRENT.{os.getpid()}.tmp"
        tmp.write_text(gen.name)
        previous = self._current()
        tmp.replace(pointer)
        # Keep the generation just replaced (a reader that read CURRENT a moment ago may still be
        # opening it) and the bases both stand on. Older ones go, and unfinished folders of
        # processes that are gone.
        keep = {gen.name, previous.name if previous else None, _base_name(gen), _base_name(previous)}
        gone = [old for old in self.folder.glob("gen-*") if old.name not in keep]
        for unfinished in self.folder.glob("tmp-*"):
            pid = unfinished.name.split("-")[1]
            if pid.isdigit() and not _pid_alive(int(pid)):
                gone.append(unfinished)
        # Deleting a million-vector generation takes most of a second: a server lets a thread do it,
        # after the new generation is already live.
        if self.background and gone:
            self._cleaner = threading.Thread(target=_remove_all, args=(gone,), name="index-cleanup", daemon=True)
            self._cleaner.start()
        else:
            _remove_all(gone)

    # -- sync ------------------------------------------------------------------------
    def _delta_limit(self, base_rows: int, dim: int) -> int:
        """Changed rows a delta may hold before it is compacted."""
        return int(min(max(COMPACT_MIN_ROWS, COMPACT_SHARE * base_rows), DELTA_MAX_BYTES // (4 * max(dim, 1))))

    def _changed_rows(self, snapshot: Snapshot) -> int:
        return len(snapshot.delta_ids) + len(snapshot.hidden)

    def sync(self, progress: ProgressFn | None = None) -> dict[str, int]:
        """Bring the index up to date with the catalog. Returns counts of changes."""
        with self._locked(".sync.lock"):
            current = self._snapshot()
            if current is not None and not (current.folder / FORMAT_FILE).exists():
                log.info("rebuilding %s once: it was written by an earlier version", self.folder)
                current = None
            ids, seqs = self._catalog_state(current)
            if current is not None and np.array_equal(ids, current.ids) and np.array_equal(seqs, current.seqs):
                return {"added": 0, "removed": 0, "total": len(ids)}
            known = current.vectors_for(ids, seqs)[0] if current is not None else np.zeros(len(ids), bool)
            removed = 0
            if current is not None and len(current.ids) and len(ids):
                pos = np.minimum(np.searchsorted(ids, current.ids), len(ids) - 1)  # both sorted: no set ops
                removed = int((ids[pos] != current.ids).sum())
            elif current is not None:
                removed = len(current.ids)
            if current is not None and self._can_layer(current, ids, seqs):
                gen = self._write_delta(ids, seqs, current.base_snapshot(), [current], progress)
            else:
                gen = self._write_full(ids, seqs, current, progress)
            self._publish(gen)
            self._loaded = None
        self._maybe_compact()
        return {"added": int((~known).sum()), "removed": removed, "total": int(len(ids))}

    def _catalog_state(self, current: Snapshot | None) -> tuple[np.ndarray, np.ndarray]:
        """Every (asset id, row id) of this model and space in the catalog, read in proportion to the change.

        Rows written since the live generation come from one indexed range read. The result is
        checked against the catalog's count and sum of row ids, read in the same statement: a
        deleted row, or a row committed late with an id below the newest one seen (concurrent
        writers on PostgreSQL), makes them differ, and then the whole id list is read (about two
        seconds per million vectors).
        """
        if current is None or len(current.seqs) == 0:
            return self.catalog.embedding_ids(self.model_id, self.space)
        known = int(current.seqs.max())
        count, total, new_ids, new_seqs = self.catalog.embedding_changes(self.model_id, self.space, known)
        ids, seqs = current.ids, current.seqs
        if len(new_ids):
            ids = np.concatenate([current.ids, new_ids])
            seqs = np.concatenate([current.seqs, new_seqs])
            order = np.lexsort((-seqs, ids))  # by id, the newest row of each first
            ids, seqs = ids[order], seqs[order]
            first = np.concatenate([[True], ids[1:] != ids[:-1]])
            ids, seqs = ids[first], seqs[first]
        # Row ids are unique: equal count and equal sum leave no room for a missed or stale row
        # short of several compensating each other exactly.
        if count != len(ids) or total != int(seqs.sum()):
            return self.catalog.embedding_ids(self.model_id, self.space)
        return ids, seqs

    def _can_layer(self, current: Snapshot, ids: np.ndarray, seqs: np.ndarray) -> bool:
        """Whether this change can be published as a delta over the live generation's base."""
        if len(ids) < self.ann_threshold or not (current.base / "hnsw.bin").exists():
            return False
        base_ids, base_seqs = current.base_ids_seqs()
        changed = int((~matches(ids, seqs, base_ids, base_seqs)).sum())
        changed += int((~matches(base_ids, base_seqs, ids, seqs)).sum())
        return changed <= INLINE_FACTOR * self._delta_limit(len(base_ids), current.dim())

    def _fill(
        self, out: np.ndarray, ids: np.ndarray, seqs: np.ndarray, sources: list[Snapshot], progress: ProgressFn | None
    ) -> None:
        """Write the vectors of (ids, seqs) into ``out``: from ``sources`` when they hold them, else the catalog."""
        missing = np.ones(len(ids), bool)
        for source in sources:
            have, where = source.vectors_for(ids, seqs)
            rows = np.nonzero(have & missing)[0]
            source.gather(where[rows], out, rows)
            missing[rows] = False
        fetch = ids[missing]
        done = 0
        for chunk_ids, chunk_vecs in self.catalog.vectors(self.model_id, self.space, fetch.tolist()):
            out[positions(ids, np.asarray(chunk_ids, np.int64))] = chunk_vecs
            done += len(chunk_ids)
            if progress:
                progress(done, len(fetch))

    @contextmanager
    def _writing(self) -> Iterator[Path]:
        """A new ``tmp-*`` folder, deleted again if writing it fails (it holds space reserved for
        a whole matrix, and only folders of processes that are gone are cleaned up otherwise)."""
        tmp = self._new_folder()
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _write_delta(
        self,
        ids: np.ndarray,
        seqs: np.ndarray,
        base: Snapshot,
        sources: list[Snapshot],
        progress: ProgressFn | None = None,
    ) -> Path:
        """A delta generation over the full generation ``base``: only rows the base lacks are written."""
        base_ids, base_seqs = base.ids, base.seqs
        in_base = matches(ids, seqs, base_ids, base_seqs)
        d_ids, d_seqs = ids[~in_base], seqs[~in_base]
        hidden = base_ids[~matches(base_ids, base_seqs, ids, seqs)]
        with self._writing() as tmp:
            vectors = allocated_npy(tmp / "delta_vectors.npy", (len(d_ids), base.dim()), np.float32)
            self._fill(vectors, d_ids, d_seqs, sources, progress)
            vectors.flush()
            del vectors
            np.save(tmp / "delta_ids.npy", d_ids)
            np.save(tmp / "delta_seqs.npy", d_seqs)
            np.save(tmp / "hidden.npy", hidden)
            (tmp / BASE_FILE).write_text(base.folder.name)
            np.save(tmp / "seqs.npy", seqs)
            (tmp / FORMAT_FILE).write_text(FORMAT)
            np.save(tmp / "ids.npy", ids)  # last: its presence marks a complete generation
            return self._finish(tmp)

    def _write_full(
        self,
        ids: np.ndarray,
        seqs: np.ndarray,
        current: Snapshot | None,
        progress: ProgressFn | None = None,
        finish: bool = True,
        keep_graph: bool = False,
    ) -> Path:
        """A full generation: the whole matrix, and the graph updated from the current base's copy.

        ``finish=False`` leaves it named ``tmp-*`` (safe from other processes' cleanup) for a
        caller that names it under the sync lock; ``keep_graph`` keeps the graph in memory for it
        (:attr:`_last_graph`).
        """
        with self._writing() as tmp:
            sources = [current] if current is not None else []
            dim = self._dim(current, ids, seqs)
            vectors = allocated_npy(tmp / "vectors.npy", (len(ids), dim), np.float32)
            self._fill(vectors, ids, seqs, sources, progress)
            vectors.flush()
            del vectors
            np.save(tmp / "seqs.npy", seqs)
            if len(ids) >= self.ann_threshold:
                ann_path = tmp / "hnsw.bin"
                matrix = np.load(tmp / "vectors.npy", mmap_mode="r")
                if current is not None and (current.base / "hnsw.bin").exists():
                    # Apply the difference to a copy of the base graph instead of rebuilding it.
                    shutil.copyfile(current.base / "hnsw.bin", ann_path)
                    ann = HnswIndex(dim, ann_path)
                    base_ids, base_seqs = current.base_ids_seqs()
                    ann.remove(base_ids[~matches(base_ids, base_seqs, ids, seqs)])
                    rows = np.nonzero(~matches(ids, seqs, base_ids, base_seqs))[0]
                else:  # first time over the threshold: build from the full matrix
                    ann = HnswIndex(dim, None)
                    rows = np.arange(len(ids))
                for start in range(0, len(rows), 65536):
                    chunk = rows[start : start + 65536]
                    ann.upsert(ids[chunk], np.asarray(matrix[chunk]))
                del matrix
                ann.save(ann_path)
                ann.live = len(ids)
                # compact() hands this graph to searches instead of reading the file it just wrote:
                # hnswlib holds the GIL while it loads (0.6 s at a million vectors), and every
                # search waits for that.
                if keep_graph:
                    self._last_graph = (tmp, ann)
            (tmp / FORMAT_FILE).write_text(FORMAT)
            np.save(tmp / "ids.npy", ids)  # last: its presence marks a complete generation
            return self._finish(tmp) if finish else tmp

    def _dim(self, current: Snapshot | None, ids: np.ndarray, seqs: np.ndarray) -> int:
        if current is not None and len(current.ids):  # an empty generation only holds a placeholder width
            return current.dim()
        if len(ids):
            vec = self.catalog.vector(int(ids[0]), self.model_id, self.space)
            if vec is not None:
                return int(vec.shape[0])
        return 1

    # -- compaction --------------------------------------------------------------------
    def compaction_due(self) -> bool:
        snapshot = self._snapshot()
        if snapshot is None or not snapshot.layered:
            return False
        return self._changed_rows(snapshot) > self._delta_limit(len(snapshot.ids), snapshot.dim())

    def _maybe_compact(self) -> None:
        if not self.compaction_due():
            return
        if not self.background:
            self._compact_quietly()  # the delta is live already: a failed compaction must not fail the sync
            return
        if self._compactor is not None and self._compactor.is_alive():
            return
        self._compactor = threading.Thread(target=self._compact_quietly, name="index-compaction", daemon=True)
        self._compactor.start()

    def _compact_quietly(self) -> None:
        try:
            self.compact()
        except Exception:  # a background thread has no caller to tell: log it; the delta stays searchable
            log.exception("index compaction of %s failed; the next sync tries again", self.folder)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a background compaction and clean-up to finish (before a process that synced exits)."""
        for thread in (self._compactor, self._cleaner):
            if thread is not None:
                thread.join(timeout)

    def compact(self) -> bool:
        """Fold the live delta into a new full generation; True when one was published.

        The long part (copying and updating the graph) runs without the sync lock, so syncs
        keep publishing deltas meanwhile; those are then re-expressed over the new base from
        vectors already on disk. Only one compaction runs at a time.
        """
        with self._locked(".compact.lock", blocking=False) as mine:
            if not mine:
                return False
            snapshot = self._snapshot()
            if snapshot is None or not snapshot.layered:
                return False
            built = self._write_full(snapshot.ids, snapshot.seqs, snapshot, finish=False, keep_graph=True)
            with self._locked(".sync.lock"):
                latest = self._snapshot()
                if latest is None or not latest.layered or latest.base != snapshot.base:
                    shutil.rmtree(built, ignore_errors=True)  # someone rewrote the index meanwhile
                    return False
                written, self._last_graph = self._last_graph, None
                unfinished, built = built, self._finish(built)
                # The new graph is in memory before it goes live, so that no search waits for it (a
                # million-vector graph takes most of a second to read: a 0.7 s search before).
                if (built / "hnsw.bin").exists():
                    if written is not None and written[0] == unfinished:
                        graph = written[1]
                    else:
                        graph = HnswIndex(snapshot.dim(), built / "hnsw.bin", live=len(snapshot.ids))
                    # Handed over before CURRENT changes: a search that sees the new name finds the
                    # graph ready (with _loaded set after publishing, one search in the gap loaded
                    # it again: p99 0.7 s during compaction), and a re-based delta marks its hidden
                    # ids on it.
                    self._preloaded = (built.name, graph)
                    with self._graph_lock:
                        self._base_graph = (built.name, graph, np.empty(0, np.int64))
                try:
                    if latest.folder == snapshot.folder:
                        self._publish(built)
                    else:
                        base = Snapshot.read(built)
                        self._publish(self._write_delta(latest.ids, latest.seqs, base, [base, latest]))
                except BaseException:
                    self._preloaded = self._base_graph = None  # not live: let the graph go
                    live = self._current()
                    if live is None or built.name not in (live.name, _base_name(live)):
                        shutil.rmtree(built, ignore_errors=True)  # not live, and no live delta stands on it
                    raise
        self.index()  # a re-based delta marks its hidden ids on the graph loaded above
        return True

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
        """The live generation as an exact index (every id and vector; a delta's are merged in memory)."""
        return self._exact()

    def _exact(self) -> ExactIndex:
        snapshot = self._snapshot()
        if snapshot is None:
            return ExactIndex(np.empty(0, np.int64), np.empty((0, 1), np.float32))
        if snapshot.layered:
            return merged_exact(snapshot)
        return ExactIndex.load(snapshot.folder)

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
            return loaded[1]  # the common case: one small file read per search, nothing loaded
        ready = self._preloaded
        if ready is not None and ready[0] == current.name:  # a compaction loaded it before publishing
            self._loaded, self._preloaded = ready, None
            return ready[1]
        snapshot = Snapshot.read(current)
        base_exact = ExactIndex.load(snapshot.base)
        chosen: VectorIndex = base_exact
        if snapshot.layered:
            base: VectorIndex = base_exact
            if (snapshot.base / "hnsw.bin").exists():
                base = self._graph_of(snapshot)
            delta = ExactIndex(snapshot.delta_ids, snapshot.delta_vectors())
            chosen = LayeredIndex(base, base_exact, delta, snapshot.hidden, live=len(snapshot.ids))
        elif len(base_exact) >= self.ann_threshold and (snapshot.folder / "hnsw.bin").exists():
            self._loaded = self._base_graph = None  # let the old graph go before loading the new one
            graph = HnswIndex(base_exact.vectors.shape[1], snapshot.folder / "hnsw.bin", live=len(base_exact))
            # The next delta stands on this generation: it marks its hidden ids on this same graph
            # instead of loading the file again (a million-vector graph is 1.8 GB).
            with self._graph_lock:
                self._base_graph = (snapshot.folder.name, graph, np.empty(0, np.int64))
            chosen = graph
        self._loaded = (snapshot.folder.name, chosen)
        return chosen

    def _graph_of(self, snapshot: Snapshot) -> HnswIndex:
        """The base graph with the snapshot's hidden ids marked deleted (in memory; the file stays as is).

        Loading a million-vector graph takes a second or two, so one loaded graph serves every
        delta over the same base: each new delta only marks the ids it newly hides. Hidden ids
        only grow over one base (a vector, once replaced or removed, never comes back with the
        same catalog row), so nothing ever needs unmarking.
        """
        with self._graph_lock:
            cached = self._base_graph
            if cached is None or cached[0] != snapshot.base.name or len(np.setdiff1d(cached[2], snapshot.hidden)):
                self._base_graph = None  # let the old graph go before loading the new one
                graph = HnswIndex(snapshot.dim(), snapshot.base / "hnsw.bin")
                marked = np.empty(0, np.int64)
            else:
                _, graph, marked = cached
            graph.remove(np.setdiff1d(snapshot.hidden, marked))
            base_rows = len(np.load(snapshot.base / "ids.npy", mmap_mode="r"))
            graph.live = base_rows - len(snapshot.hidden)
            self._base_graph = (snapshot.base.name, graph, snapshot.hidden)
            return graph
