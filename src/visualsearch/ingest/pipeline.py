"""Decode, fingerprint and preprocess images in worker processes, in order, ahead of the model.

Everything before inference is per-image Python and C work (read, JPEG decode,
SHA-256 of bytes and pixels, pHash, resampling to the model's input size). It
runs in a pool of worker processes so that it overlaps with inference in the
main process instead of adding to it; the main process only stacks arrays,
runs the model and writes to the catalog.

Results come back in input order through a bounded window of pending work, so
memory stays flat on a million-file folder. A worker that dies (a decoder
crashing on a hostile file) breaks the pool; the files that were in flight are
then retried one at a time in a fresh pool, and only the file that kills its
worker again is recorded as failed. Workers exit on their own when the process
that started them is gone (see :func:`exit_with_parent`), so a killed server
leaves no decoders behind.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from ..config import MAX_DECODED_BYTES
from ..errors import ModelUnavailable, VisualSearchError
from ..models.ocr import ReaderOptions
from .decode import DecodedImage, decode_bytes, read_file
from .media import write_thumbnail
from .scan import FoundFile
from .text import read_text

log = logging.getLogger(__name__)

#: Below this many files a process pool costs more to start (about a second) than it saves.
PROCESS_POOL_MIN_FILES = 64
#: Stages measured inside the workers, in CPU seconds of the worker thread (not wall time,
#: which would count the time a worker waits for a core the model is using).
#: "ocr" is there only when pictures are read.
WORKER_STAGES = ("decode", "fingerprint", "thumbnail", "preprocess", "ocr")
#: How often a worker process checks that the process that started it is still there.
PARENT_POLL_SECONDS = 0.5


@dataclass
class Prepared:
    """One file after the worker is done with it: metadata, the model input, or why it failed."""

    found: FoundFile
    error: str | None = None
    sha256: str = ""
    width: int = 0
    height: int = 0
    format: str = ""
    byte_size: int = 0
    pixel_sha256: str | None = None
    phash: str | None = None
    #: The decoded RGB picture, when the model has no separate preprocessing step.
    image: Image.Image | None = None
    #: The model's input for this picture (from the model's ``image_preprocessor``).
    model_input: np.ndarray | None = None
    #: Text read in the picture (with OCR on): lines, "" when none was found; None when not read.
    text: str | None = None
    #: The reader of ``text`` (:attr:`~visualsearch.models.ocr.ReaderOptions.reader_id`).
    reader: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


def prepare(
    found: FoundFile,
    max_bytes: int,
    max_pixels: int,
    preprocessor: Callable[[Image.Image], np.ndarray] | None = None,
    fingerprints: bool = True,
    max_decoded_bytes: int = MAX_DECODED_BYTES,
    thumbnails: Path | None = None,
    ocr: ReaderOptions | None = None,
) -> Prepared:
    """Read, decode, fingerprint and preprocess one file. Never raises: failures are data.

    With ``thumbnails`` (the media store's thumbnail folder) the 256 px preview is written
    from the same decoded picture, so a freshly indexed library's grid needs no decoding.
    A preview that cannot be written (full disk) is left to be made on first view.
    With ``ocr``, the words in the picture are read too (:mod:`.text`); a reader that fails
    on a picture leaves its text unread, it does not fail the file.
    """
    t0 = time.thread_time()
    try:
        data = read_file(found.path, max_bytes)
        decoded = decode_bytes(data, max_bytes=max_bytes, max_pixels=max_pixels, max_decoded_bytes=max_decoded_bytes)
        t1 = time.thread_time()
        out = Prepared(
            found,
            sha256=decoded.sha256,
            width=decoded.width,
            height=decoded.height,
            format=decoded.format,
            byte_size=decoded.byte_size,
        )
        if fingerprints:
            out.pixel_sha256, out.phash = decoded.pixel_sha256, decoded.phash
        t2 = time.thread_time()
        if thumbnails is not None:
            try:
                write_thumbnail(thumbnails, decoded.sha256, decoded.image)
            except OSError:
                pass  # made on first view instead
        t_thumb = time.thread_time()
        if preprocessor is None:
            out.image = decoded.image
        else:
            out.model_input = preprocessor(decoded.image)
        t3 = time.thread_time()
        if ocr is not None:
            out.text = read_text_or_none(
                data, decoded, ocr, max_bytes=max_bytes, max_pixels=max_pixels, max_decoded_bytes=max_decoded_bytes
            )
            out.reader = ocr.reader_id if out.text is not None else None
        t4 = time.thread_time()
        out.timings = {
            "decode": t1 - t0,
            "fingerprint": t2 - t1,
            "thumbnail": t_thumb - t2,
            "preprocess": t3 - t_thumb,
            **({"ocr": t4 - t3} if ocr is not None else {}),
        }
        return out
    except VisualSearchError as exc:
        return Prepared(found, error=str(exc), timings={"decode": time.thread_time() - t0})
    except Exception as exc:  # a decoder bug must not stop a long run
        return Prepared(
            found,
            error=f"unexpected decoding error: {type(exc).__name__}: {exc}",
            timings={"decode": time.thread_time() - t0},
        )


def read_text_or_none(data: bytes, decoded: DecodedImage, ocr: ReaderOptions, **limits: int) -> str | None:
    """The picture's text, or None (left unread, one log line) when reading it fails.

    A missing OCR extra is not such a failure: it raises (:class:`ModelUnavailable`), so that a
    Ray worker without it fails its files loudly instead of reading nothing (the driver checks
    its own installation before indexing starts).
    """
    try:
        return read_text(data, decoded, ocr, **limits)
    except ModelUnavailable:
        raise
    except Exception as exc:
        log.warning("could not read the text in a picture (%s: %s)", type(exc).__name__, exc)
        return None


def crashed(found: FoundFile) -> Prepared:
    return Prepared(found, error="the image decoder crashed on this file")


def exit_with_parent(parent_pid: int, interval: float = PARENT_POLL_SECONDS) -> None:
    """Worker initializer: end this worker process soon after ``parent_pid`` is gone.

    Without it a worker outlives a parent killed with SIGKILL (or by the OOM killer):
    it waits forever for work on a queue whose other end it holds itself. A daemon
    thread polls ``os.getppid()``, which changes (to 1 or a subreaper) once the
    parent is gone, and then calls ``os._exit`` right away, even in the middle of
    decoding a file.

    ``prctl(PR_SET_PDEATHSIG)`` is deliberately not used: it fires when the *thread*
    that started the worker exits, not the process. Workers are started on demand
    by whichever thread submits work, i.e. the thread iterating a
    :class:`PreparedStream`; the server runs indexing in job threads, and a thread
    that ends (or hands the stream over) while the pool is still in use would then
    kill healthy workers and turn their files into "crashed" failures. Polling costs
    one wake-up every ``interval`` seconds per worker.
    """

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(0)
            time.sleep(interval)

    if os.getppid() != parent_pid:  # the parent died while this worker was starting
        os._exit(0)
    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def init_worker(parent_pid: int) -> None:
    """Initializer of a decoding worker process: one OpenCV thread, and exit with the parent.

    Each worker is one of several running beside the model; OpenCV's own thread pool (one
    thread per core by default, for the resampling) only made them compete with the model
    for the same cores.
    """
    import cv2

    cv2.setNumThreads(1)
    exit_with_parent(parent_pid)


#: A file whose read and decode take longer than this (a hung network mount, a decoder stuck
#: in a loop) is given up: its worker is killed and the file recorded as failed, so one file
#: cannot hold a job forever. The largest images we accept decode in about 10 s here.
FILE_TIMEOUT = 120.0


def _stop(pool: Executor) -> None:
    """Shut a pool down now, killing worker processes that may be stuck in a read or a decode."""
    # ProcessPoolExecutor has no public way to kill its workers; its _processes maps pid -> Process.
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.kill()
    pool.shutdown(wait=True, cancel_futures=True)


class PreparedStream:
    """Iterate :class:`Prepared` results in input order, ``window`` files ahead of the consumer.

    ``wait`` accumulates the seconds the consumer spent blocked on workers: near
    zero when the model is the bottleneck, large when decoding is.
    """

    def __init__(
        self,
        files: Iterable[FoundFile],
        job: Callable[[FoundFile], Prepared],
        *,
        workers: int,
        processes: bool,
        window: int,
        file_timeout: float = FILE_TIMEOUT,
    ):
        self.file_timeout = file_timeout
        self.files = iter(files)
        self.job = job
        self.workers = max(1, workers)
        self.processes = processes
        self.window = max(1, window)
        self.wait = 0.0
        self.pool_restarts = 0

    def _new_pool(self) -> Executor:
        if self.processes:
            # spawn: a clean interpreter, never a fork of a process that holds
            # ONNX Runtime's or the server's threads (forking those can deadlock).
            return ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=init_worker,
                initargs=(os.getpid(),),
            )
        return ThreadPoolExecutor(self.workers, thread_name_prefix="decode")

    def __iter__(self) -> Iterator[Prepared]:
        pool = self._new_pool()
        pending: deque[tuple[FoundFile, Future[Prepared]]] = deque()
        try:
            while True:
                while len(pending) < self.window:
                    f = next(self.files, None)
                    if f is None:
                        break
                    pending.append((f, pool.submit(self.job, f)))
                if not pending:
                    return
                f, future = pending.popleft()
                t = time.perf_counter()
                try:
                    result = future.result(timeout=self.file_timeout if self.processes else None)
                except (BrokenProcessPool, FutureTimeout):
                    self.wait += time.perf_counter() - t
                    _stop(pool)
                    suspects = [f] + [g for g, _ in pending]
                    pending.clear()
                    pool = yield from self._isolate(suspects)
                    continue
                self.wait += time.perf_counter() - t
                yield result
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _isolate(self, suspects: list[FoundFile]) -> Generator[Prepared, None, Executor]:
        """Retry files one by one in fresh pools; blame only the ones that kill a worker again."""
        pool = self._new_pool()
        self.pool_restarts += 1
        try:
            for f in suspects:
                try:
                    result = pool.submit(self.job, f).result(timeout=self.file_timeout)
                except BrokenProcessPool:
                    _stop(pool)
                    pool = self._new_pool()
                    self.pool_restarts += 1
                    result = crashed(f)
                except FutureTimeout:
                    _stop(pool)
                    pool = self._new_pool()
                    self.pool_restarts += 1
                    result = Prepared(
                        f,
                        error=f"reading or decoding took over {self.file_timeout:.0f} s; "
                        "skipped (a hung disk or network mount?)",
                    )
                yield result
        except BaseException:  # the consumer stopped (Ctrl-C, error): do not leak workers
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        return pool


def prepared_stream(
    files: list[FoundFile],
    *,
    max_bytes: int,
    max_pixels: int,
    preprocessor: Callable[[Image.Image], np.ndarray] | None,
    workers: int,
    batch_size: int,
    processes: bool | None = None,
    fingerprints: bool = True,
    max_decoded_bytes: int = MAX_DECODED_BYTES,
    thumbnails: Path | None = None,
    ocr: ReaderOptions | None = None,
) -> PreparedStream:
    """The stream :func:`~visualsearch.ingest.indexer.index_files` consumes.

    ``workers`` = 0 decodes in one helper thread. Processes are used for runs of
    at least :data:`PROCESS_POOL_MIN_FILES` files unless ``processes`` says otherwise.
    """
    if processes is None:
        processes = workers > 0 and len(files) >= PROCESS_POOL_MIN_FILES
    if ocr is not None and not processes:
        # Threads share one reader, which reads one picture at a time: give it every core.
        ocr = ocr.on_every_core()
    job = partial(
        prepare,
        max_bytes=max_bytes,
        max_pixels=max_pixels,
        max_decoded_bytes=max_decoded_bytes,
        preprocessor=preprocessor,
        fingerprints=fingerprints,
        thumbnails=thumbnails,
        ocr=ocr,
    )
    # Two batches per worker in flight keeps workers busy while the model runs,
    # and bounds memory (a 224 px uint8 input is 150 KB).
    window = max(2 * batch_size, 2 * batch_size * max(1, workers))
    return PreparedStream(files, job, workers=max(1, workers), processes=processes, window=window)
