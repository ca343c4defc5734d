"""Read the text in the pictures of a library indexed before text reading (OCR) was on.

Indexing reads each new picture's text when ``VISUALSEARCH_OCR`` is on; pictures indexed
before (or read with other reader settings) are read by :func:`read_library_text`, which
``visualsearch read-text`` runs. It is resumable: text is stored every few pictures and when
the run is interrupted, and a picture already read by this reader is not read again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..ingest.decode import decode_bytes, read_file
from ..ingest.text import fit_for_reader
from ..models.ocr import ReaderOptions, check_available, load_reader, reader_options
from .library import Library

#: Read text is stored after this many pictures or this many seconds, whichever comes first
#: (what an interruption the process cannot catch, a kill, can lose).
BATCH = 16
BATCH_SECONDS = 10.0


@dataclass
class ReadReport:
    #: Pictures this run had to read (not read before by this reader).
    todo: int = 0
    read: int = 0
    #: Pictures in which some text was found.
    with_text: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)


def unread_count(library: Library) -> int:
    """Indexed pictures the library's reader settings have not read (0 with text reading off)."""
    options = reader_options(library.settings)
    return 0 if options is None else library.catalog.texts.count_unread(options.reader_id)


def text_status(library: Library) -> dict[str, int | bool]:
    """What was read: pictures read, pictures with words, and whether reading while indexing is on."""
    read, worded = library.catalog.texts.count()
    return {"pictures": read, "with_words": worded, "reading_on": library.settings.ocr}


def read_library_text(library: Library, progress: Callable[[int, int], None] | None = None) -> ReadReport:
    """Read the text of every indexed picture that this library's reader has not read yet."""
    check_available()
    settings = library.settings
    # Here the reader is the only work: give it every core (while indexing it runs in each decoder).
    options = ReaderOptions(size=settings.ocr_size).on_every_core()
    texts = library.catalog.texts
    todo = texts.unread(options.reader_id)
    report = ReadReport(todo=len(todo))
    rows: list[tuple[int, str, str]] = []
    digests: dict[int, str] = {}
    saved_at = time.monotonic()

    def save() -> None:
        nonlocal rows, saved_at
        if rows:
            texts.save(rows, digests)
        rows, saved_at = [], time.monotonic()

    try:
        for n, (asset_id, source, kept, sha256) in enumerate(todo, start=1):
            try:
                path = Path(kept or source)
                data = read_file(path, settings.max_image_bytes)
                if hashlib.sha256(data).hexdigest() != sha256:
                    raise ValueError("the file changed since it was indexed; run `visualsearch index` on its folder")
                # One decode, at the reader's size (the model's smaller copy is not needed here).
                decoded = decode_bytes(data, working_size=options.size, **settings.decode_limits)
                text = load_reader(options).read(fit_for_reader(decoded.image, options))
            except FileNotFoundError:
                report.failed += 1
                report.failures.append(
                    (source, "the file is gone; `visualsearch index FOLDER --prune` removes it from the library")
                )
            except Exception as exc:  # one picture must not stop the run (a decoder or reader bug included)
                report.failed += 1
                report.failures.append((source, str(exc) or type(exc).__name__))
            else:
                rows.append((asset_id, options.reader_id, text))
                digests[asset_id] = sha256
                report.read += 1
                report.with_text += bool(text)
            finally:
                if progress:
                    progress(n, len(todo))
            if len(rows) >= BATCH or time.monotonic() - saved_at >= BATCH_SECONDS:
                save()
    finally:  # Ctrl-C included: what was read is kept
        save()
    return report
