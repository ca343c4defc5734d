"""Index a folder: walk -> decode -> embed -> store, in committed batches.

Each batch is one transaction, so Ctrl-C (or a crash) loses at most the batch
in flight; the next run skips every file whose size and modification time
match what the catalog holds, and carries on where the last one stopped.
Decoding runs in a thread pool ahead of the model (Pillow releases the GIL
while decoding), so the model, not file reading, sets the pace.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..catalog import FAILED, INDEXED, Catalog, ImageRecord
from ..config import Settings
from ..errors import VisualSearchError
from ..models import Embedder
from .decode import DecodedImage, decode_file
from .scan import FoundFile, scan_folder


@dataclass
class IndexReport:
    scanned: int = 0
    unchanged: int = 0
    indexed: int = 0
    failed: int = 0
    pruned: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)


#: progress(done, total) after every batch.
Progress = Callable[[int, int], None]


def plan(catalog: Catalog, found: list[FoundFile], model_id: str, spaces: Iterable[str],
         retry_failed: bool = False) -> tuple[list[FoundFile], int]:
    """Which files need work: new, changed, or not yet embedded by this model."""
    states = catalog.file_states()
    missing = set()
    for space in spaces:
        missing.update(catalog.assets_missing_embeddings(model_id, space))
    todo, unchanged = [], 0
    for f in found:
        state = states.get(str(f.path))
        same = state is not None and state.byte_size == f.byte_size and state.mtime == f.mtime
        if same and state.status == INDEXED and str(f.path) not in missing:
            unchanged += 1
        elif same and state.status == FAILED and not retry_failed:
            unchanged += 1
        else:
            todo.append(f)
    return todo, unchanged


def _decode(f: FoundFile, settings: Settings) -> tuple[FoundFile, DecodedImage | None, str | None]:
    try:
        return f, decode_file(f.path, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels), None
    except VisualSearchError as exc:
        return f, None, str(exc)
    except Exception as exc:  # a decoder bug must not stop a long run
        return f, None, f"unexpected decoding error: {type(exc).__name__}: {exc}"


def _batched(items: Iterator, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def index_files(catalog: Catalog, embedder: Embedder, files: list[FoundFile], settings: Settings,
                report: IndexReport, progress: Progress | None = None) -> None:
    """Decode, embed and store ``files`` in batches of ``settings.batch_size``."""
    workers = max(1, settings.decode_workers)
    done = 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        decoded = pool.map(lambda f: _decode(f, settings), files)
        for batch in _batched(decoded, settings.batch_size):
            good = [(f, d) for f, d, err in batch if d is not None]
            failed = [(str(f.path), err, f.byte_size, f.mtime) for f, d, err in batch if d is None]
            records: list[tuple[ImageRecord, dict]] = []
            if good:
                try:
                    vectors = embedder.encode_images([d.image for _, d in good])
                except Exception as exc:  # one bad batch must not lose the run
                    vectors = None
                    failed += [(str(f.path), f"embedding failed: {exc}", f.byte_size, f.mtime) for f, _ in good]
                if vectors is not None:
                    for n, (f, d) in enumerate(good):
                        record = ImageRecord(str(f.path), d.sha256, d.width, d.height, d.format, d.byte_size, f.mtime,
                                             pixel_sha256=d.pixel_sha256, phash=d.phash)
                        records.append((record, {space: vectors[space][n] for space in vectors}))
            catalog.write_batch(records, failed, embedder.model_id)
            report.indexed += len(records)
            report.failed += len(failed)
            report.failures.extend((src, reason) for src, reason, _, _ in failed)
            done += len(batch)
            if progress:
                progress(done, len(files))


def prune_missing(catalog: Catalog, root: Path, present: set[str]) -> int:
    """Remove catalog entries under ``root`` whose files no longer exist."""
    prefix = str(Path(root).resolve()).rstrip(os.sep) + os.sep
    gone = [s.asset_id for src, s in catalog.file_states(prefix).items() if src not in present]
    return catalog.remove(gone)


def index_folder(catalog: Catalog, embedder: Embedder, root: Path, settings: Settings, *,
                 prune: bool = False, retry_failed: bool = False, progress: Progress | None = None,
                 on_plan: Callable[[int, int], None] | None = None) -> IndexReport:
    """Index every image under ``root``. Safe to re-run; safe to interrupt."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise VisualSearchError(f"not a folder: {root}")
    report = IndexReport()
    found = list(scan_folder(root))
    report.scanned = len(found)
    if prune:
        report.pruned = prune_missing(catalog, root, {str(f.path) for f in found})
    todo, report.unchanged = plan(catalog, found, embedder.model_id, embedder.spaces, retry_failed)
    if on_plan:
        on_plan(len(todo), report.unchanged)
    index_files(catalog, embedder, todo, settings, report, progress)
    return report
