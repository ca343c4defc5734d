"""Reading words in pictures (OCR): signs, posters, slides, screenshots, receipts.

The reader is RapidOCR (``pip install visualsearch[ocr]``) with the PP-OCRv6 "small" text
finder and reader its wheel ships (ONNX, about 30 MB): it works offline straight after
install and never downloads anything, because the models it is given are the bundled files
and it is only ever handed decoded pictures, never a path or a URL (which it would fetch).

It is an index-time option (``VISUALSEARCH_OCR=true``), off by default: on 2 cores it reads
a few pictures a second (docs/benchmarks.md), far under the 20 images/s indexing must keep
with everything that is on by default.

A reader object is cheap to make and loads its models on first use, so it can be handed to
worker processes (pickled as its options) and load there once per process.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
from PIL import Image

from ..config import Settings
from ..errors import ModelUnavailable

log = logging.getLogger(__name__)

__all__ = [
    "MIN_LINE_SCORE",
    "RapidOcrReader",
    "ReaderOptions",
    "TextReader",
    "check_available",
    "load_reader",
    "reader_options",
]

#: A read line is kept when the reader is at least this sure of it. Lines on the real text set
#: (benchmarks/data/text_real) score 0.9-1.0; the strays found in textures without text (a coin's
#: rim read as "OCOOO", a leaf's veins as "2") score 0.5-0.75.
MIN_LINE_SCORE = 0.8
#: Longest side, in pixels, the text finder looks at. Larger finds smaller text and costs more:
#: at 960 a 640x480 photo costs 0.3 s of CPU, a real wallpaper or a 1200x800 sign about 0.45-0.6 s
#: (benchmarks/ocr.py).
DEFAULT_SIZE = 960
#: Most text lines read in one picture: those in the biggest letters (the biggest text is what a
#: picture is about). Each line found goes through the recogniser, so a page of small words cost 13-18 s of CPU
#: before this cap (a reviewer's 960x960 grid of 576 words) and one upload could hold the reader for
#: everyone; with 60 a 960x960 page of about 500 small words costs 2.4-2.6 s of CPU (finding the
#: lines is 1.2 s of it).
#: Keeping the first lines the finder reports instead lost a desktop screenshot's title and a
#: poster's heading: the real text set's S@1 fell from 0.877 to 0.762 (benchmarks/ocr.py).
MAX_LINES = 60
#: A picture whose short side would be under this many pixels at the reader's size (a 1-pixel rule,
#: a gradient strip) has no readable text, and the reader refuses it: it is read as having none.
MIN_SIDE = 16


@dataclass(frozen=True)
class ReaderOptions:
    """How pictures are read; small and picklable (sent to decoding worker processes)."""

    size: int = DEFAULT_SIZE
    min_score: float = MIN_LINE_SCORE
    #: CPU threads of one reader; 1 in each decoding worker, which run side by side.
    threads: int = 1

    def on_every_core(self) -> ReaderOptions:
        """These options for a reader that does the only reading going on (read-text, uploads, threads
        sharing one reader): every core, where each decoding worker process gets one."""
        return replace(self, threads=os.cpu_count() or 1)

    @property
    def reader_id(self) -> str:
        """Stored with each read text: a picture read with other settings can be told and read again."""
        return f"rapidocr-ppocrv6-small-{self.size}"


class TextReader(Protocol):
    """Reads the text in a decoded picture."""

    options: ReaderOptions

    def read(self, image: Image.Image) -> str:
        """The text lines found in ``image``, one per line, best-read only ("" when there is none)."""
        ...


class RapidOcrReader:
    """:class:`TextReader` on RapidOCR's bundled ONNX models."""

    def __init__(self, options: ReaderOptions | None = None):
        self.options = options or ReaderOptions()
        self._engine: Any = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:  # only the options travel to other processes
        return {"options": self.options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["options"])  # type: ignore[misc]

    def _load(self) -> Any:
        with self._lock:
            if self._engine is None:
                self._engine = _engine(self.options)
            return self._engine

    def read(self, image: Image.Image) -> str:
        w, h = image.size
        if min(w, h) * min(1.0, self.options.size / max(w, h)) < MIN_SIDE:
            return ""
        engine = self._load()
        try:
            with self._lock:  # one engine, one picture at a time (it keeps per-call settings on itself)
                result = engine(image if image.mode == "RGB" else image.convert("RGB"))
        except Exception as exc:  # the reader's own errors: the picture is read as having no text
            log.warning("the text reader could not read a %dx%d picture (%s: %s)", w, h, type(exc).__name__, exc)
            return ""
        texts = result.txts or ()
        scores = result.scores or ()
        lines = [" ".join(t.split()) for t, score in zip(texts, scores, strict=True) if score >= self.options.min_score]
        return "\n".join(line for line in lines if line)


def _keep_largest_lines(engine: Any, limit: int) -> None:
    """Make ``engine`` recognise only the ``limit`` text lines in the biggest letters, in reading order.

    RapidOCR finds every line, crops each, then recognises them all; this wraps its
    ``detect_and_crop`` step (RapidOCR 3.10, pinned) to drop the smaller crops and their boxes
    before the recogniser sees them.
    """
    detect_and_crop = engine.detect_and_crop

    def largest(img: Any, op_record: Any) -> Any:
        crops, found = detect_and_crop(img, op_record)
        if len(crops) > limit:
            # Crops come upright, so a crop's height is its letters' size: the biggest text first (a
            # row of small words can be wider than a headline, so area would not do).
            heights = np.asarray([min(c.shape[0], c.shape[1]) for c in crops])
            keep = np.sort(np.argsort(-heights, kind="stable")[:limit])
            crops = [crops[i] for i in keep]
            found.boxes = found.boxes[keep]
            if found.scores is not None:
                found.scores = [found.scores[i] for i in keep]
        return crops, found

    engine.detect_and_crop = largest


def _engine(options: ReaderOptions) -> Any:
    try:
        from rapidocr import RapidOCR
    except ImportError as exc:
        raise ModelUnavailable(
            "reading text in pictures needs the OCR extra: pip install 'visualsearch[ocr]' "
            "(or set VISUALSEARCH_OCR=false)"
        ) from exc
    engine = RapidOCR(
        params={
            "Global.log_level": "error",
            "Global.use_cls": False,  # upside-down lines are rare in photos; the classifier costs a pass
            "Det.limit_type": "max",  # shrink to `size` on the long side (the default enlarges small pictures)
            "Det.limit_side_len": options.size,
            "EngineConfig.onnxruntime.intra_op_num_threads": options.threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
    )
    _keep_largest_lines(engine, MAX_LINES)
    return engine


def reader_options(settings: Settings) -> ReaderOptions | None:
    """How a library reads pictures while indexing (``VISUALSEARCH_OCR``, ``VISUALSEARCH_OCR_SIZE``); None: off."""
    return ReaderOptions(size=settings.ocr_size) if settings.ocr else None


_READERS: dict[ReaderOptions, RapidOcrReader] = {}
_READERS_LOCK = threading.Lock()


def load_reader(options: ReaderOptions) -> TextReader:
    """The process's reader for ``options`` (its models load once per process, on first use)."""
    with _READERS_LOCK:
        reader = _READERS.get(options)
        if reader is None:
            reader = _READERS[options] = RapidOcrReader(options)
        return reader


def check_available() -> None:
    """Raise :class:`ModelUnavailable` now (at start-up) when the OCR extra is not installed."""
    try:
        import rapidocr  # noqa: F401
    except ImportError as exc:
        raise ModelUnavailable("VISUALSEARCH_OCR=true needs the OCR extra: pip install 'visualsearch[ocr]'") from exc
