"""Duplicates and look-alikes of a library, checking one image against it, and the trash.

Finding groups walks every vector of the library, so results are cached until
the similarity index changes (its generation) or another threshold is asked for.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Literal

import numpy as np

from ..duplicates import (
    DEFAULT_GROUP_THRESHOLD,
    DEFAULT_THRESHOLD,
    DuplicateGroup,
    Match,
    TrashedFile,
    TrashFolder,
    find_duplicates,
    find_lookalikes,
    matches_for,
)
from ..errors import NotFound
from ..ingest.decode import DecodedImage
from ..ingest.indexer import IndexReport, index_files
from ..ingest.scan import FoundFile
from .adding import Incoming, add_incoming
from .library import Library

GroupKind = Literal["duplicates", "groups"]


class DuplicatesService:
    def __init__(self, library: Library):
        self.library = library
        self.trash_folder = TrashFolder(Path(library.settings.library_dir) / "trash")
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, float, str], list[DuplicateGroup]] = {}

    # -- groups ----------------------------------------------------------------------
    def duplicates(self, threshold: float = DEFAULT_THRESHOLD) -> list[DuplicateGroup]:
        """Groups of copies (same bytes, same pixels, near-duplicates), largest first."""
        return self._groups("duplicates", threshold)

    def lookalikes(self, threshold: float = DEFAULT_GROUP_THRESHOLD, min_size: int = 2) -> list[DuplicateGroup]:
        """Clusters of similar images that are not necessarily copies."""
        return [g for g in self._groups("groups", threshold) if g.size >= min_size]

    def _groups(self, kind: GroupKind, threshold: float) -> list[DuplicateGroup]:
        index = self.library.similarity_index
        key = (kind, round(threshold, 4), index.generation())
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        finder = find_duplicates if kind == "duplicates" else find_lookalikes
        groups = finder(self.library.catalog, index, threshold=threshold)
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if k[2] == key[2]}
            self._cache[key] = groups
        return groups

    def check(self, image: DecodedImage, threshold: float = DEFAULT_THRESHOLD) -> list[Match]:
        """Images in the library that ``image`` (not added) copies."""
        embedder = self.library.embedder
        vector = embedder.encode_images([image.image])[embedder.similarity_space][0]
        return matches_for(
            self.library.catalog,
            self.library.similarity_index,
            image.sha256,
            image.pixel_sha256,
            image.phash,
            np.asarray(vector),
            threshold=threshold,
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

        return self.trash_folder.move([assets[i] for i in asset_ids], forget)

    def trash_entries(self, batch: str | None = None) -> list[TrashedFile]:
        return self.trash_folder.entries(batch)

    def restore(self, batch: str) -> list[TrashedFile]:
        """Move a batch's files back where they were and index them again."""
        library = self.library
        entries = self.trash_folder.restorable(batch)
        folder_files: list[FoundFile] = []
        uploads: list[Incoming] = []
        for e in entries:
            if e.origin in ("upload", "url"):  # the library's own copies come back as uploads
                staged = library.media.stage([Path(e.trashed).read_bytes()])
                Path(e.trashed).unlink()
                uploads.append(Incoming(staged, e.name, origin="upload"))
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
        if uploads:
            add_incoming(library, uploads, allow_duplicates=True)
        library.sync_indexes()
        return entries
