"""Index a folder: walk -> decode -> embed -> store, in committed batches.

Each batch is one transaction, so Ctrl-C (or a crash) loses at most the two
batches in flight (one in the model, one being written); the next run skips
every file whose size and modification time match what the catalog holds, and
carries on where the last one stopped. Reading, decoding, fingerprinting and
resampling run in worker processes ahead of the model (see :mod:`.pipeline`),
and each batch is written while the model runs the next, so the model, not
Python glue, file reading or the catalog, sets the pace.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar, cast

import numpy as np
from PIL import Image

from ..catalog import FAILED, INDEXED, Catalog, ImageRecord
from ..config import Settings
from ..errors import VisualSearchError
from ..models import Embedder
from ..models.ocr import reader_options
from .pipeline import Prepared, prepared_stream
from .scan import FoundFile, scan_folder

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass
class IndexReport:
    scanned: int = 0
    unchanged: int = 0
    indexed: int = 0
    failed: int = 0
    pruned: int = 0
    #: Files given the vectors of identical content already embedded by the model (Ray indexing).
    reused: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    #: Wall-clock seconds spent decoding, embedding and storing (not scanning or planning).
    seconds: float = 0.0
    #: Seconds per stage; see :func:`index_files`.
    timings: dict[str, float] = field(default_factory=dict)


#: progress(done, total) after every batch.
Progress = Callable[[int, int], None]


def plan(
    catalog: Catalog, found: list[FoundFile], model_id: str, spaces: Iterable[str], retry_failed: bool = False
) -> tuple[list[FoundFile], int]:
    """Which files need work: new, changed, or not yet embedded by this model."""
    states = catalog.file_states()
    missing = set()
    for space in spaces:
        missing.update(catalog.assets_missing_embeddings(model_id, space))
    todo, unchanged = [], 0
    for f in found:
        state = states.get(str(f.path))
        same = state is not None and state.byte_size == f.byte_size and state.mtime == f.mtime
        status = state.status if state is not None and same else None  # None: new or changed
        if status == INDEXED and str(f.path) not in missing:
            unchanged += 1
        elif status == FAILED and not retry_failed:
            unchanged += 1
        else:
            todo.append(f)
    return todo, unchanged


def _batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def model_inputs(good: list[Prepared]) -> np.ndarray | list[Image.Image]:
    """A batch of decoded files as the model takes it: stacked model inputs, or the pictures.

    One preprocessor (or none) for the whole stream: every decoded file has a model
    input, or every one has an image; the first file says which.
    """
    if good[0].model_input is not None:
        return np.stack(cast(list[np.ndarray], [p.model_input for p in good]))
    return cast(list[Image.Image], [p.image for p in good])


def encode_inputs(embedder: Embedder, inputs: np.ndarray | list[Image.Image]) -> dict[str, np.ndarray]:
    """Run the model on what :func:`model_inputs` made (here, or in a Ray actor)."""
    if isinstance(inputs, np.ndarray):
        return embedder.encode_prepared(inputs)
    return embedder.encode_images(inputs)


def _add(timings: dict[str, float], stage: str, seconds: float) -> None:
    timings[stage] = timings.get(stage, 0.0) + seconds


@dataclass
class EmbeddedBatch:
    """One batch of files after decoding and the model: what worked, with vectors, and what failed."""

    #: Every file of the batch, in the order they were given.
    batch: list[Prepared]
    #: The files that decoded and were embedded; row ``n`` of each ``vectors`` matrix is ``good[n]``.
    good: list[Prepared]
    vectors: dict[str, np.ndarray]
    #: (file, reason) for files that could not be read, decoded or embedded.
    failed: list[tuple[Prepared, str]]


def embed_batches(
    embedder: Embedder,
    files: list[FoundFile],
    settings: Settings,
    *,
    fingerprints: bool = True,
    processes: bool | None = None,
    timings: dict[str, float] | None = None,
    thumbnails: Path | None = None,
) -> Iterator[EmbeddedBatch]:
    """The one decode -> embed loop of the library (folder indexing and re-embedding both use it).

    Files are read, decoded and resampled in worker processes ahead of the model
    (:mod:`.pipeline`); batches of ``settings.batch_size`` go through the model in
    input order. A batch the model fails on fails its files, never the run.
    With ``fingerprints`` off (re-embedding for another model) the pictures' text is not read again
    either: neither depends on the model. ``timings`` collects seconds per stage: worker stages (decode, fingerprint,
    thumbnail, preprocess) summed over workers, and the main process's model and wait
    times. ``thumbnails``: write each picture's preview there in the same decode pass.
    """
    stream = prepared_stream(
        files,
        max_bytes=settings.max_image_bytes,
        max_pixels=settings.max_image_pixels,
        max_decoded_bytes=settings.max_decoded_bytes,
        preprocessor=embedder.image_preprocessor(),
        workers=settings.decode_workers,
        batch_size=settings.batch_size,
        processes=processes,
        fingerprints=fingerprints,
        thumbnails=thumbnails,
        ocr=reader_options(settings) if fingerprints else None,  # re-embedding: pictures already read
    )
    timings = {} if timings is None else timings
    try:
        for batch in _batched(stream, settings.batch_size):
            for p in batch:
                for stage, seconds in p.timings.items():
                    _add(timings, stage, seconds)
            good = [p for p in batch if p.error is None]
            failed = [(p, p.error) for p in batch if p.error is not None]
            vectors: dict[str, np.ndarray] = {}
            if good:
                t = time.perf_counter()
                try:
                    vectors = encode_inputs(embedder, model_inputs(good))
                except Exception as exc:  # one bad batch must not lose the run
                    failed += [(p, f"embedding failed: {exc}") for p in good]
                    good = []
                _add(timings, "model", time.perf_counter() - t)
            yield EmbeddedBatch(batch, good, vectors, failed)
    finally:
        _add(timings, "wait", stream.wait)


def index_files(
    catalog: Catalog,
    embedder: Embedder,
    files: list[FoundFile],
    settings: Settings,
    report: IndexReport,
    progress: Progress | None = None,
    *,
    processes: bool | None = None,
    thumbnails: Path | None = None,
) -> None:
    """Decode, embed and store ``files`` in batches of ``settings.batch_size``, one transaction each.

    Adds the seconds spent in each stage to ``report.timings`` (see :func:`embed_batches`),
    plus the catalog write time.
    """
    started = time.perf_counter()
    done = 0

    def count(written: int) -> None:  # files of a batch now in the catalog
        nonlocal done
        done += written
        if written and progress:
            progress(done, len(files))

    writer = BatchWriter(catalog, embedder.model_id, report)
    try:
        for step in embed_batches(
            embedder, files, settings, processes=processes, timings=report.timings, thumbnails=thumbnails
        ):
            count(writer.put(step))
        count(writer.flush())
    finally:
        writer.close()
        report.seconds += time.perf_counter() - started


class BatchWriter:
    """Writes embedded batches to the catalog in a thread of its own, one batch behind the model.

    The model's forward pass releases the GIL, so the catalog transaction of batch n runs
    while batch n+1 is in the model instead of after it (0.4-0.9 ms an image of writing;
    interleaved runs on 2 cores: 84.1-86.9 against 83.3-85.5 images/s). At most one batch waits
    to be written, so memory stays flat, and a write that fails stops the run at the next
    batch with its own error.
    """

    def __init__(self, catalog: Catalog, model_id: str, report: IndexReport):
        self.catalog, self.model_id, self.report = catalog, model_id, report
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="catalog-write")
        self._pending: tuple[Future[None], int] | None = None

    def put(self, step: EmbeddedBatch) -> int:
        """Queue ``step``, after the previous batch is written; returns that batch's size (0: none)."""
        written = self.flush()
        future = self._pool.submit(write_step, self.catalog, self.model_id, step, self.report)
        self._pending = (future, len(step.batch))
        return written

    def flush(self) -> int:
        """Wait for the batch being written (raising its error); returns its size (0: none)."""
        if self._pending is None:
            return 0
        (future, size), self._pending = self._pending, None
        future.result()
        return size

    def close(self) -> None:
        """Let the batch being written finish (a run that stops keeps it), without raising.

        Called when the run stops for another reason; a failed write is then logged, not lost.
        """
        if self._pending is not None:
            error = self._pending[0].exception()
            if error is not None:
                log.warning("a catalog write failed while the run was stopping: %s", error)
            self._pending = None
        self._pool.shutdown(wait=True)


def write_step(catalog: Catalog, model_id: str, step: EmbeddedBatch, report: IndexReport) -> None:
    """Store one embedded batch in one transaction and count it in ``report``.

    The one write path of folder indexing, local or on a cluster (:mod:`.distributed`), so
    both leave the same rows. The catalog write is an upsert keyed by the file's path that
    replaces the model's vectors of that asset: writing a batch again (a retry) changes
    nothing, it never adds a second row or a second vector.
    """
    failed: list[tuple[str, str, int | None, float | None]] = [
        (str(p.found.path), reason, p.found.byte_size, p.found.mtime) for p, reason in step.failed
    ]
    records: list[tuple[ImageRecord, dict[str, np.ndarray]]] = []
    for n, p in enumerate(step.good):
        record = ImageRecord(
            str(p.found.path),
            p.sha256,
            p.width,
            p.height,
            p.format,
            p.byte_size,
            p.found.mtime,
            pixel_sha256=p.pixel_sha256,
            phash=p.phash,
            text=p.text,
            reader=p.reader,
        )
        records.append((record, {space: v[n] for space, v in step.vectors.items()}))
    t = time.perf_counter()
    catalog.write_batch(records, failed, model_id)
    _add(report.timings, "write", time.perf_counter() - t)
    report.indexed += len(records)
    report.failed += len(failed)
    report.failures.extend((src, reason) for src, reason, _, _ in failed)


def prune_missing(catalog: Catalog, root: Path, present: set[str]) -> int:
    """Remove catalog entries under ``root`` whose files no longer exist."""
    prefix = str(Path(root).resolve()).rstrip(os.sep) + os.sep
    gone = [s.asset_id for src, s in catalog.file_states(prefix).items() if src not in present]
    return catalog.remove(gone)


def index_folder(
    catalog: Catalog,
    embedder: Embedder,
    root: Path,
    settings: Settings,
    *,
    prune: bool = False,
    retry_failed: bool = False,
    progress: Progress | None = None,
    on_plan: Callable[[int, int], None] | None = None,
    thumbnails: Path | None = None,
) -> IndexReport:
    """Index every image under ``root``. Safe to re-run; safe to interrupt.

    ``thumbnails``: the media store's preview folder, filled in the same decode pass.
    """
    report, todo = plan_folder(catalog, embedder, root, prune=prune, retry_failed=retry_failed)
    if on_plan:
        on_plan(len(todo), report.unchanged)
    index_files(catalog, embedder, todo, settings, report, progress, thumbnails=thumbnails)
    return report


def plan_folder(
    catalog: Catalog, embedder: Embedder, root: Path, *, prune: bool = False, retry_failed: bool = False
) -> tuple[IndexReport, list[FoundFile]]:
    """Scan ``root`` (pruning vanished files if asked) and plan: the report so far, and the files to do.

    Shared by the local indexer and the Ray one, so both skip exactly the same files.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise VisualSearchError(f"not a folder: {root}")
    report = IndexReport()
    found = list(scan_folder(root))
    report.scanned = len(found)
    if prune:
        report.pruned = prune_missing(catalog, root, {str(f.path) for f in found})
    todo, report.unchanged = plan(catalog, found, embedder.model_id, embedder.spaces, retry_failed)
    return report, todo
