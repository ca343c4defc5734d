"""Read the text in the pictures of a library indexed before text reading (OCR) was on.

Indexing reads each new picture's text when ``VISUALSEARCH_OCR`` is on; pictures indexed
before (or read with other reader settings) are read by :func:`read_library_text`, which
``visualsearch read-text`` runs. It is resumable: each batch's text is stored as it is read,
and a picture already read by this reader is not read again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import VisualSearchError
from ..ingest.decode import decode_bytes, read_file
from ..ingest.text import read_text
from ..models.ocr import ReaderOptions, check_available
from .library import Library

#: Pictures read between two writes to the catalog (what an interruption can lose).
BATCH = 16


@dataclass
class ReadReport:
    read: int = 0
    #: Pictures in which some text was found.
    with_text: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)


def read_library_text(library: Library, progress: Callable[[int, int], None] | None = None) -> ReadReport:
    """Read the text of every indexed picture that this library's reader has not read yet."""
    check_available()
    settings = library.settings
    # Here the reader is the only work: give it every core (while indexing it runs in each decoder).
    options = replace(ReaderOptions(size=settings.ocr_size), threads=os.cpu_count() or 1)
    todo = library.catalog.texts.unread(options.reader_id)
    report = ReadReport()
    rows: list[tuple[int, str, str]] = []
    for n, (asset_id, source, kept) in enumerate(todo, start=1):
        path = Path(kept or source)
        try:
            data = read_file(path, settings.max_image_bytes)
            decoded = decode_bytes(data, **settings.decode_limits)
            text = read_text(data, decoded, options, **settings.decode_limits)
        except (VisualSearchError, OSError) as exc:
            report.failed += 1
            report.failures.append((source, str(exc)))
            continue
        rows.append((asset_id, options.reader_id, text))
        report.read += 1
        report.with_text += bool(text)
        if len(rows) >= BATCH or n == len(todo):
            library.catalog.texts.save(rows)
            rows = []
        if progress:
            progress(n, len(todo))
    if rows:
        library.catalog.texts.save(rows)
    return report
