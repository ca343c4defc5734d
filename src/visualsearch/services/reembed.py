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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..ingest.indexer import embed_batches
from ..ingest.scan import FoundFile
from ..models import Embedder
from .library import Library


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


def embed_assets(
    library: Library,
    embedder: Embedder,
    todo: list[tuple[int, str]],
    report: ReembedReport,
    progress: Callable[[int], None] | None = None,
) -> set[int]:
    """Give ``todo`` (asset id, file) vectors from ``embedder``; returns the ids that failed."""
    files = [FoundFile(Path(path), 0, 0.0) for _, path in todo]
    failed_ids: set[int] = set()
    ids = iter(todo)
    for step in embed_batches(embedder, files, library.settings, fingerprints=False):
        asset_of = {id(p): next(ids)[0] for p in step.batch}
        rows = [
            (asset_of[id(p)], {space: np.asarray(v[n]) for space, v in step.vectors.items()})
            for n, p in enumerate(step.good)
        ]
        if rows:
            library.catalog.write_embeddings(embedder.model_id, rows)
        report.embedded += len(rows)
        report.failed += len(step.failed)
        report.failures.extend((str(p.found.path), reason) for p, reason in step.failed)
        failed_ids.update(asset_of[id(p)] for p, _ in step.failed)
        if progress:
            progress(len(step.batch))
    return failed_ids


def reembed_library(library: Library, *, progress: Progress | None = None) -> ReembedReport:
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

            def advance(n: int, total: int = total) -> None:
                nonlocal done
                done += n
                if progress:
                    progress(done, total)

            failed_ids.update(embed_assets(library, target, todo, report, advance))

    one_pass()
    # Build the new model's indexes before anyone searches them (an HNSW build can take minutes).
    library.sync_indexes(target)
    if library.model_change() is not None and library.switch_model(target):
        report.switched = True
        one_pass()  # images added with the old model between the last pass and the switch
        library.sync_indexes()
    report.seconds = time.perf_counter() - started
    return report
