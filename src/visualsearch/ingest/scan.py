"""Walk a folder for image files, without ever leaving it.

A symbolic link inside the folder is followed only when its target is inside
the folder too: a link to ``/etc/shadow`` or to another user's pictures must
not turn "index this folder" into "index (and serve) that file". Only regular
files are yielded: FIFOs, sockets and devices could block a reader forever.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".png",
        ".gif",
        ".webp",
        ".bmp",
        ".dib",
        ".tif",
        ".tiff",
        ".heic",
        ".heif",
        ".avif",
    }
)


@dataclass(frozen=True)
class FoundFile:
    path: Path
    byte_size: int
    mtime: float


def scan_folder(root: Path) -> Iterator[FoundFile]:
    """Image files below ``root`` (by extension), in a stable order; hidden folders skipped.

    The extension only selects candidates: decoding sniffs the real format, so
    a PNG named ``.jpg`` still works.
    """
    root = Path(root).resolve()
    seen: set[Path] = set()  # a link inside the folder to a file in it names that file a second time
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            found = _regular_file_inside(Path(dirpath) / name, root)
            if found is not None and found.path not in seen:
                seen.add(found.path)
                yield found


def _regular_file_inside(path: Path, root: Path) -> FoundFile | None:
    """The file (its real path) if it is a regular file inside ``root``, else None."""
    try:
        real = path.resolve(strict=True)
        st = os.stat(real, follow_symlinks=False)
    except (OSError, RuntimeError):  # vanished, dangling link, or a link loop
        return None
    if root not in real.parents:
        log.warning("skipped %s: it links to %s, outside %s", path, real, root)
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return FoundFile(real, st.st_size, st.st_mtime)
