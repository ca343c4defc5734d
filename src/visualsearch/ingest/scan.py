"""Walk a folder for image files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

IMAGE_EXTENSIONS = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".webp", ".bmp", ".dib", ".tif", ".tiff",
    ".heic", ".heif", ".avif",
})


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
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            path = Path(dirpath) / name
            try:
                st = path.stat()
            except OSError:
                continue
            if not path.is_file():
                continue
            yield FoundFile(path.resolve(), st.st_size, st.st_mtime)
