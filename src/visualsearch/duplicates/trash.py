"""Moving extras out of the library into a trash folder, with a log so it can be undone.

Nothing is ever unlinked: each file is moved to ``<library>/trash/<batch>/`` and
a line per file is appended to ``<library>/trash/log.jsonl`` (batch, asset id,
where the file was, where it is now, its sha256). ``restore(batch)`` moves the
files back and indexes them again.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..errors import NotFound, VisualSearchError


@dataclass
class TrashedFile:
    batch: str
    asset_id: int
    name: str
    original: str
    trashed: str
    sha256: str | None
    origin: str | None
    at: float


class Trash:
    def __init__(self, library):
        self.library = library
        self.root = Path(library.settings.library_dir) / "trash"
        self.log_path = self.root / "log.jsonl"

    def move(self, asset_ids: list[int]) -> tuple[str, list[TrashedFile]]:
        """Move the files of these assets to a new trash batch and forget the assets. Returns (batch, files)."""
        catalog = self.library.catalog
        assets = catalog.get_many(asset_ids)
        missing = [i for i in asset_ids if i not in assets]
        if missing:
            raise NotFound(f"no asset with id {', '.join(map(str, missing))}")
        batch = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        folder = self.root / batch
        folder.mkdir(parents=True, exist_ok=True)
        done: list[TrashedFile] = []
        try:
            for asset_id in asset_ids:
                asset = assets[asset_id]
                source = Path(asset.path or asset.source)
                if not source.is_file():
                    raise VisualSearchError(f"the file of asset {asset_id} is not on disk: {source}")
                target = folder / f"{asset_id}-{source.name}"
                shutil.move(source, target)
                entry = TrashedFile(batch, asset_id, asset.name or source.name, str(source), str(target),
                                    asset.sha256, asset.origin, time.time())
                self._log(entry)
                done.append(entry)
        finally:
            if done:
                catalog.remove([e.asset_id for e in done])
                self.library.sync_indexes()
        return batch, done

    def _log(self, entry: TrashedFile) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry.__dict__) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def entries(self, batch: str | None = None) -> list[TrashedFile]:
        if not self.log_path.exists():
            return []
        out = [TrashedFile(**json.loads(line)) for line in self.log_path.read_text().splitlines() if line.strip()]
        return [e for e in out if batch is None or e.batch == batch]

    def restore(self, batch: str) -> list[TrashedFile]:
        """Move a batch's files back where they were and index them again."""
        from ..ingest.add import Incoming, add_incoming
        from ..ingest.indexer import IndexReport, index_files
        from ..ingest.scan import FoundFile

        entries = [e for e in self.entries(batch) if Path(e.trashed).exists()]
        if not entries:
            raise NotFound(f"nothing to restore in trash batch {batch!r}")
        folder_files, uploads = [], []
        for e in entries:
            original = Path(e.original)
            if e.origin in ("upload", "url"):
                staged = self.library.media.stage([Path(e.trashed).read_bytes()])
                Path(e.trashed).unlink()
                uploads.append(Incoming(staged, e.name, origin=e.origin if e.origin == "upload" else "upload"))
            else:
                if original.exists():
                    raise VisualSearchError(f"cannot restore {original}: a file is there again")
                original.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(e.trashed, original)
                stat = original.stat()
                folder_files.append(FoundFile(original, stat.st_size, stat.st_mtime))
        if folder_files:
            index_files(self.library.catalog, self.library.embedder, folder_files, self.library.settings, IndexReport())
        if uploads:
            add_incoming(self.library, uploads, allow_duplicates=True)
        self.library.sync_indexes()
        return entries
