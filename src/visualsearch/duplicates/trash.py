"""Moving extras out of the library into a trash folder, with a log so it can be undone.

Nothing is ever unlinked: each file is moved to ``<library>/trash/<batch>/`` and
a line per file is appended to ``<library>/trash/log.jsonl`` (batch, asset id,
where the file was, where it is now, its sha256). ``restore(batch)`` moves the
files back; :class:`~visualsearch.services.duplicates.DuplicatesService`
indexes them again.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from ..catalog import Asset
from ..errors import NotFound, VisualSearchError

log = logging.getLogger(__name__)


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
        self._parsed: tuple[tuple[int, int], list[TrashedFile]] | None = None

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
        with open(self.log_path, "a+b") as f:
            # A line cut short by a crash must not swallow the next one: start on a line of its own.
            f.seek(0, os.SEEK_END)
            torn = False
            if f.tell():
                f.seek(-1, os.SEEK_END)
                torn = f.read(1) != b"\n"
            f.write((("\n" if torn else "") + json.dumps(asdict(entry)) + "\n").encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())

    def entries(self, batch: str | None = None) -> list[TrashedFile]:
        """The log's entries (of one batch), read again only when the file changed: the Trash tab asks
        for one preview per file shown. A line that does not parse (cut short by a crash) is skipped,
        so that the rest of the trash can still be listed and restored."""
        try:
            stat = self.log_path.stat()
        except FileNotFoundError:
            return []
        key = (stat.st_mtime_ns, stat.st_size)
        cached = self._parsed
        if cached is None or cached[0] != key:
            out: list[TrashedFile] = []
            for n, line in enumerate(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    out.append(TrashedFile(**json.loads(line)))
                except (ValueError, TypeError):
                    log.warning("trash log %s: line %d is not an entry (cut short?); skipped", self.log_path, n)
            cached = self._parsed = (key, out)
        return [e for e in cached[1] if batch is None or e.batch == batch]

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
