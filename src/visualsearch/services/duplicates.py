"""Duplicates and look-alikes of a library, checking one image against it, and the trash.

Finding groups walks every vector of the library, so results are cached until
the similarity index changes (its generation) or another threshold is asked for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..catalog import Asset
from ..duplicates import (
    DEFAULT_GROUP_THRESHOLD,
    DEFAULT_THRESHOLD,
    CheckStopped,
    DuplicateGroup,
    Match,
    PixelVerifier,
    TrashedFile,
    TrashFolder,
    find_duplicates,
    find_lookalikes,
    matches_for,
)
from ..errors import CheckingCopies, NotFound, VisualSearchError
from ..ingest.decode import DecodedImage
from ..ingest.indexer import IndexReport, index_files
from ..ingest.media import thumbnail_from_file, thumbnail_path
from ..ingest.scan import FoundFile
from .adding import Incoming, add_incoming
from .assets import preview_verifier
from .library import Library

GroupKind = Literal["duplicates", "groups"]


@dataclass
class TrashBatch:
    """One move to the trash: its files, and which of them are still there (not restored yet)."""

    batch: str
    #: When the batch was moved (seconds since the epoch, its first file).
    at: float
    files: list[TrashedFile]
    in_trash: list[bool]

    @property
    def restorable(self) -> bool:
        return any(self.in_trash)


@dataclass
class Restored:
    """A restored trash file and its asset in the library again (None if it could not be added back)."""

    entry: TrashedFile
    asset: Asset | None = None


class DuplicatesService:
    def __init__(self, library: Library):
        self.library = library
        self.trash_folder = TrashFolder(Path(library.settings.library_dir) / "trash")
        self._lock = threading.Lock()
        self._trash_lock = threading.Lock()  # one move into or out of the trash at a time
        #: One computation of groups at a time, so no two check the same pairs (re-entrant: look-alikes
        #: ask for the duplicates first).
        self._computing = threading.RLock()
        #: How far the duplicates computation in progress is (done, total candidate pairs).
        self._progress = (0, 0)
        #: Computations started for requests that do not wait for them (the API), by cache key.
        self._background: dict[tuple[GroupKind, float, str], Future[list[DuplicateGroup]]] = {}
        self._closing = threading.Event()
        self._cache: dict[tuple[str, float, str], list[DuplicateGroup]] = {}
        #: Candidate pairs the pixel check compared in the last duplicates run (for benchmarks).
        self.pairs_checked = 0
        self._verifier: PixelVerifier | None = None

    # -- groups ----------------------------------------------------------------------
    def duplicates(
        self,
        threshold: float = DEFAULT_THRESHOLD,
        progress: Callable[[int, int], None] | None = None,
        stop: Callable[[], bool] | None = None,
        wait: float | None = None,
    ) -> list[DuplicateGroup]:
        """Groups of copies (same bytes, same pixels, near-duplicates), largest first.

        ``progress(done, total)`` follows the pixel check of candidate pairs (a long run on a
        big library the first time; later runs only check pairs they have not seen); ``stop()``
        True ends it with :class:`~visualsearch.duplicates.CheckStopped`, its verdicts kept.
        ``wait`` (seconds; the API): the groups are worked out in a thread of their own, and if
        they are not ready by then (the copy check after indexing, a first run on a big library),
        :class:`~visualsearch.errors.CheckingCopies` says how far the check is; asking again
        picks up the same work. None: work them out here, however long that takes (CLI, jobs)."""
        return self._groups("duplicates", threshold, progress, stop, wait)

    def lookalikes(
        self, threshold: float = DEFAULT_GROUP_THRESHOLD, min_size: int = 2, wait: float | None = None
    ) -> list[DuplicateGroup]:
        """Clusters of similar images that are not necessarily copies (``wait``: as for :meth:`duplicates`)."""
        return [g for g in self._groups("groups", threshold, wait=wait) if g.size >= min_size]

    def close(self) -> None:
        """Stop a computation running in the background (a server shutting down), its verdicts kept."""
        self._closing.set()

    def _groups(
        self,
        kind: GroupKind,
        threshold: float,
        progress: Callable[[int, int], None] | None = None,
        stop: Callable[[], bool] | None = None,
        wait: float | None = None,
    ) -> list[DuplicateGroup]:
        key = (kind, round(threshold, 4), self.library.similarity_index.generation())
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        if wait is None:
            return self._compute(key, progress, stop)
        with self._lock:
            future = self._background.get(key)
            if future is None:
                future = self._background[key] = Future()
                threading.Thread(
                    target=self._compute_into, args=(key, future), name="visualsearch-groups", daemon=True
                ).start()
        try:
            return future.result(timeout=wait)
        except (TimeoutError, CheckStopped):
            raise CheckingCopies(*self._progress) from None

    def _compute_into(self, key: tuple[GroupKind, float, str], future: Future[list[DuplicateGroup]]) -> None:
        try:
            future.set_result(self._compute(key, None, self._closing.is_set))
        except BaseException as exc:  # handed to every request waiting for it
            future.set_exception(exc)
        finally:
            with self._lock:
                self._background.pop(key, None)

    def _compute(
        self,
        key: tuple[GroupKind, float, str],
        progress: Callable[[int, int], None] | None,
        stop: Callable[[], bool] | None,
    ) -> list[DuplicateGroup]:
        """The groups of ``key``, worked out one computation at a time (re-entrant: look-alikes ask
        for the duplicates first), or taken from the cache if another computation made them meanwhile."""
        kind, threshold, generation = key
        with self._computing:
            with self._lock:
                if key in self._cache:
                    return self._cache[key]
            index = self.library.similarity_index
            self._progress = (0, 0)
            if kind == "duplicates":

                def track(done: int, total: int) -> None:
                    self._progress = (done, total)
                    if progress is not None:
                        progress(done, total)

                verifier = self.verifier()
                before = verifier.checked
                groups = find_duplicates(
                    self.library.catalog, index, threshold=threshold, verifier=verifier, progress=track, stop=stop
                )
                self.pairs_checked = verifier.checked - before
            else:
                groups = find_lookalikes(
                    self.library.catalog, index, threshold=threshold, copies=self.duplicates(stop=stop)
                )
            with self._lock:
                self._cache = {k: v for k, v in self._cache.items() if k[2] == generation}
                self._cache[key] = groups
            return groups

    def verifier(self) -> PixelVerifier:
        """The pixel check, one per service so that its verdicts carry over between runs."""
        with self._lock:
            if self._verifier is None:
                self._verifier = preview_verifier(self.library)
            return self._verifier

    def check(self, image: DecodedImage, threshold: float = DEFAULT_THRESHOLD) -> list[Match]:
        """Images in the library that ``image`` (not added) copies."""
        embedder = self.library.embedder
        vector = embedder.encode_images([image.image])[embedder.similarity_space][0]
        return matches_for(
            self.library.catalog,
            self.library.similarity_index,
            image,
            np.asarray(vector),
            threshold=threshold,
            verifier=self.verifier(),
        )

    # -- trash -----------------------------------------------------------------------
    def trash(self, asset_ids: list[int]) -> tuple[str, list[TrashedFile]]:
        """Move the files of these assets to a new trash batch and forget the assets. Returns (batch, files)."""
        asset_ids = list(dict.fromkeys(asset_ids))
        assets = self.library.catalog.get_many(asset_ids)
        missing = [i for i in asset_ids if i not in assets]
        if missing:
            raise NotFound(f"no asset with id {', '.join(map(str, missing))}")

        def forget(ids: list[int]) -> None:
            self.library.catalog.remove(ids)
            self.library.sync_indexes()

        with self._trash_lock:
            return self.trash_folder.move([assets[i] for i in asset_ids], forget)

    def trash_entries(self, batch: str | None = None) -> list[TrashedFile]:
        return self.trash_folder.entries(batch)

    def trash_preview(
        self, batch: str, asset_id: int, slot: Callable[[], AbstractContextManager[object]] = nullcontext
    ) -> Path:
        """The 256 px preview of a file moved to the trash, so the Trash tab shows what it holds.

        The preview made at indexing is kept by content digest until the library's clean-up removes
        previews no asset refers to; then one is made from the file in the trash (inside ``slot()``,
        the server's decode gate) and kept in the batch's folder, not among the library's previews
        (which the pixel check reads: a file changed in the trash must not stand for its digest).
        Only files the trash log names are read, and only inside their batch's folder.
        """
        entry = next((e for e in self.trash_folder.entries(batch) if e.asset_id == asset_id), None)
        if entry is None or not entry.sha256:
            raise NotFound(f"no image {asset_id} in trash batch {batch!r}")
        media = self.library.media
        path = media.thumbnail_path(entry.sha256)
        if path.exists():
            return path
        folder = (self.trash_folder.root / batch).resolve()
        kept = folder / ".previews"
        made = thumbnail_path(kept, entry.sha256)
        if made.exists():
            return made
        file = Path(entry.trashed)
        if file.is_symlink() or not file.is_file() or not file.resolve().is_relative_to(folder):
            raise NotFound(f"image {asset_id} of trash batch {batch!r} is no longer in the trash")
        with slot():
            return thumbnail_from_file(kept, entry.sha256, file, self.library.settings.decode_limits)

    def trash_batches(self) -> list[TrashBatch]:
        """Every batch in the trash log, newest first."""
        batches: dict[str, list[TrashedFile]] = {}
        for e in self.trash_folder.entries():
            batches.setdefault(e.batch, []).append(e)
        out = [
            TrashBatch(name, min(e.at for e in files), files, [Path(e.trashed).exists() for e in files])
            for name, files in batches.items()
        ]
        return sorted(out, key=lambda b: (b.at, b.batch), reverse=True)

    def restore(self, batch: str) -> list[TrashedFile]:
        """Move a batch's files back where they were and index them again."""
        return [r.entry for r in self.restore_batch(batch)]

    def restore_batch(self, batch: str) -> list[Restored]:
        """:meth:`restore`, with the asset each file is in the library again."""
        with self._trash_lock:
            return self._restore(batch)

    def _restore(self, batch: str) -> list[Restored]:
        library = self.library
        entries = self.trash_folder.restorable(batch)
        in_place = [e for e in entries if e.origin not in ("upload", "url")]
        taken = [e.original for e in in_place if Path(e.original).exists()]
        if taken:  # checked before anything moves: a batch comes back whole or not at all
            raise VisualSearchError(f"cannot restore {taken[0]}: a file is there again")
        folder_files: list[FoundFile] = []
        uploads: list[Incoming] = []
        copies: list[TrashedFile] = []
        for e in entries:
            if e.origin in ("upload", "url"):  # the library's own copies come back as uploads
                staged = library.media.stage([Path(e.trashed).read_bytes()])
                uploads.append(Incoming(staged, e.name, origin="upload"))
                copies.append(e)
            else:
                original = self.trash_folder.put_back(e)
                stat = original.stat()
                folder_files.append(FoundFile(original, stat.st_size, stat.st_mtime))
        if folder_files:
            index_files(
                library.catalog,
                library.embedder,
                folder_files,
                library.settings,
                IndexReport(),
                thumbnails=library.index_thumbnails,
            )
        back: dict[str, Asset | None] = {}
        if uploads:
            # Copies of what is in the library are expected here: never refused as (near-)duplicates.
            outcomes = add_incoming(library, uploads, allow_duplicates=True, near_duplicates="allow")
            for e, outcome in zip(copies, outcomes, strict=True):
                back[e.trashed] = outcome.asset
                if outcome.asset is not None:  # the trash keeps a file until it is back in the library
                    Path(e.trashed).unlink(missing_ok=True)
        library.sync_indexes()
        by_source = library.catalog.get_by_sources([e.original for e in in_place])
        for e in in_place:
            back[e.trashed] = by_source.get(e.original)
        return [Restored(e, back.get(e.trashed)) for e in entries]
