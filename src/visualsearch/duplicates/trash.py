"""Moving extras out of the library into a trash folder, with a log so it can be undone.

Nothing is ever unlinked: each file is moved to ``<library>/trash/<batch>/`` and
a line per file is appended to ``<library>/trash/log.jsonl`` (batch, asset id,
where the file was, where it is now, its sha256). ``restore(batch)`` moves the
files back; :class:`~visualsearch.services.duplicates.DuplicatesService`
indexes them again.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from ..catalog import Asset
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


class TrashFolder:
    """``<library>/trash``: batches of moved files and the log that lets them be restored."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.log_path = self.root / "log.jsonl"

    def move(self, assets: list[Asset], forget: Callable[[list[int]], None]) -> tuple[str, list[TrashedFile]]:
        """Move the files of ``assets`` into a new batch; returns (batch, files).

        ``forget`` is called with the ids of the files that were moved, also when a
        later file fails, so the catalog never points into the trash.
        """
        batch = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        folder = self.root / batch
        folder.mkdir(parents=True, exist_ok=True)
        done: list[TrashedFile] = []
        try:
            for asset in assets:
                source = Path(asset.path or asset.source)
                if not source.is_file():
                    raise VisualSearchError(f"the file of asset {asset.id} is not on disk: {source}")
                target = folder / f"{asset.id}-{source.name}"
                shutil.move(source, target)
                entry = TrashedFile(
                    batch,
                    asset.id,
                    asset.name or source.name,
                    str(source),
                    str(target),
                    asset.sha256,
                    asset.origin,
                    time.time(),
                )
                self._log(entry)
                done.append(entry)
        finally:
            if done:
                forget([e.asset_id for e in done])
        return batch, done

    def _log(self, entry: TrashedFile) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(entry)) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def entries(self, batch: str | None = None) -> list[TrashedFile]:
        if not self.log_path.exists():
            return []
        out = [TrashedFile(**json.loads(line)) for line in self.log_path.read_text().splitlines() if line.strip()]
        return [e for e in out if batch is None or e.batch == batch]

    def restorable(self, batch: str) -> list[TrashedFile]:
        """The batch's files that are still in the trash."""
        entries = [e for e in self.entries(batch) if Path(e.trashed).exists()]
        if not entries:
            raise NotFound(f"nothing to restore in trash batch {batch!r}")
        return entries

    @staticmethod
    def put_back(entry: TrashedFile) -> Path:
        """Move a file that was indexed in place back where it was."""
        original = Path(entry.original)
        if original.exists():
            raise VisualSearchError(f"cannot restore {original}: a file is there again")
        original.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(entry.trashed, original)
        return original
