"""Re-embed the library with a new model while searches keep using the old vectors.

The new model's vectors are written beside the old ones (the catalog keys
vectors by model id), in committed batches, so an interrupted run resumes where
it stopped. When every readable image has a new vector, the new model's
indexes are built, and only then does the library's active model switch (one
catalog write that every process picks up). Images added while this runs are
embedded with the old model so they are searchable at once; the loop below
gives them new vectors too before the switch, and a last pass after the switch
catches any that arrived in between.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .indexer import _batched, _encode
from .pipeline import prepared_stream
from .scan import FoundFile


@dataclass
class ReembedReport:
    model_id: str
    embedded: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    switched: bool = False
    seconds: float = 0.0


#: progress(done, total) after every batch.
Progress = Callable[[int, int], None]


def embed_assets(library, embedder, todo: list[tuple[int, str]], report: ReembedReport,
                 progress: Callable[[int], None] | None = None) -> set[int]:
    """Give ``todo`` (asset id, file) vectors from ``embedder``; returns the ids that failed."""
    settings = library.settings
    get_preprocessor = getattr(embedder, "image_preprocessor", None)
    files = [FoundFile(Path(path), 0, 0.0) for _, path in todo]
    stream = prepared_stream(files, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels,
                             max_decoded_bytes=settings.max_decoded_bytes,
                             preprocessor=get_preprocessor() if get_preprocessor else None,
                             workers=settings.decode_workers, batch_size=settings.batch_size, fingerprints=False)
    failed_ids: set[int] = set()
    ids = iter(todo)
    for batch in _batched(stream, settings.batch_size):
        pairs = [(next(ids)[0], p) for p in batch]
        good = [(asset_id, p) for asset_id, p in pairs if p.error is None]
        bad = [(asset_id, p.found.path, p.error) for asset_id, p in pairs if p.error is not None]
        if good:
            try:
                vectors = _encode(embedder, [p for _, p in good])
            except Exception as exc:  # one bad batch must not lose the run
                bad += [(asset_id, p.found.path, f"embedding failed: {exc}") for asset_id, p in good]
                good, vectors = [], {}
            rows = [(asset_id, {space: np.asarray(v[n]) for space, v in vectors.items()})
                    for n, (asset_id, _) in enumerate(good)]
            library.catalog.write_embeddings(embedder.model_id, rows)
        report.embedded += len(good)
        report.failed += len(bad)
        report.failures.extend((str(path), reason) for _, path, reason in bad)
        failed_ids.update(asset_id for asset_id, _, _ in bad)
        if progress:
            progress(len(batch))
    return failed_ids


def reembed_library(library, *, progress: Progress | None = None) -> ReembedReport:
    """Bring every image onto the requested model, then switch to it. Safe to interrupt and re-run.

    With no model change pending this still embeds images that lack a vector
    (for example after a crash between writing an image and its vectors).
    """
    started = time.perf_counter()
    target = library.requested_embedder
    report = ReembedReport(target.model_id)
    failed_ids: set[int] = set()
    done = 0

    def one_pass() -> None:
        nonlocal done
        while True:
            todo = library.catalog.assets_to_embed(target.model_id, target.spaces, exclude=failed_ids)
            if not todo:
                return
            total = done + len(todo)
            if progress:
                progress(done, total)

            def advance(n: int) -> None:
                nonlocal done
                done += n
                if progress:
                    progress(done, total)

            failed_ids.update(embed_assets(library, target, todo, report, advance))

    one_pass()
    # Build the new model's indexes before anyone searches them (an HNSW build can take minutes).
    library.sync_indexes(target)
    if library.model_change() is not None:
        library.switch_model()
        report.switched = True
        one_pass()  # images added with the old model between the last pass and the switch
        library.sync_indexes()
    report.seconds = time.perf_counter() - started
    return report
