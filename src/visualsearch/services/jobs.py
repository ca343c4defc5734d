"""Background indexing jobs, recorded in the catalog so their progress outlives a request.

Two worker threads take jobs in order. Indexing is bound by the model on all
cores, so more would only make every job slower; but with a single worker one
stuck or very long job (a folder on a hung network mount, a huge folder) held
every other job back, so a second worker keeps the queue moving. A job is
claimed with a conditional update, so no two workers run the same job. A job
left "running" or "queued" by a server that stopped is picked up again when
the next one starts (indexing is idempotent: finished files are skipped).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any

from ..catalog import DONE, JOB_FAILED, QUEUED, RUNNING, JobRecord
from ..duplicates import CheckStopped
from ..errors import Busy, NotFound, VisualSearchError
from .adding import Incoming, add_incoming
from .duplicates import DuplicatesService
from .library import Library
from .models import ModelService
from .reading import read_library_text
from .reembed import reembed_library

log = logging.getLogger(__name__)

FAILED = JOB_FAILED
FOLDER, UPLOAD, REEMBED, MODEL, READ_TEXT = "folder", "upload", "reembed", "model", "read_text"
#: Checking the library's never-checked candidate copies pixel by pixel after indexing (``Settings.copies_at_index``).
COPIES = "copies"
#: Seconds between progress writes of a model download (its callback fires per MiB).
MODEL_PROGRESS_EVERY = 0.5
#: How often an idle worker looks for a model chosen by another process (`visualsearch models use`).
MODEL_CHECK_EVERY = 10.0
MAX_RECORDED_FAILURES = 1000

__all__ = [
    "COPIES",
    "DONE",
    "FAILED",
    "FOLDER",
    "MODEL",
    "QUEUED",
    "READ_TEXT",
    "REEMBED",
    "RUNNING",
    "UPLOAD",
    "JobQueue",
    "JobRecord",
]


class JobQueue:
    def __init__(self, library: Library, workers: int = 2, duplicates: DuplicatesService | None = None):
        self.library = library
        #: The server's duplicates service (ServerState.duplicates): the copy check after indexing fills
        #: the groups the Duplicates tab then reads.
        self.duplicates = duplicates or DuplicatesService(library)
        #: One copies job at a time: a check asked for while one runs makes that one run again.
        self._copies_lock = threading.Lock()
        self._copies_again = False
        self.jobs = library.catalog.jobs
        self.workers = max(1, workers)
        self._wake = threading.Condition()
        self._signals = 0  # bumped on every submit/stop; a worker sleeps only while it is unchanged
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._checked_model = time.monotonic()
        #: The library's model choices; the server's routes use the same one (ServerState.models).
        self.models = ModelService(library)
        self._use_lock = threading.Lock()

    # -- submitting / reading --------------------------------------------------------
    def staging_folder(self, job_id: str) -> Path:
        return self.library.media.staging / f"job-{job_id}"

    def new_id(self) -> str:
        return uuid.uuid4().hex

    def submit(self, kind: str, params: dict[str, Any], total: int = 0, job_id: str | None = None) -> JobRecord:
        job = self.jobs.add(job_id or self.new_id(), kind, params, total)
        self._signal()
        return job

    def get(self, job_id: str) -> JobRecord:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job with id {job_id}")
        return job

    def list(self, limit: int = 50) -> list[JobRecord]:
        return self.jobs.list(limit)

    def active_of_kind(self, kind: str) -> JobRecord | None:
        return self.jobs.active_of_kind(kind)

    def active_count(self) -> int:
        return self.jobs.count_active()

    # -- running ---------------------------------------------------------------------
    def start(self) -> None:
        self.jobs.requeue_running()
        self._threads = [
            threading.Thread(target=self._loop, name=f"visualsearch-jobs-{n}", daemon=True) for n in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()
        self._signal()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._signal()
        for thread in self._threads:
            thread.join(timeout)

    def active_staging(self) -> set[str]:
        return {f"job-{i}" for i in self.jobs.active_ids()}

    def _signal(self) -> None:
        with self._wake:
            self._signals += 1
            self._wake.notify_all()

    def _changed_since(self, seen: int) -> bool:
        return self._signals != seen

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._wake:
                seen = self._signals
            job_id = self.jobs.claim_next()
            if job_id is None:
                if time.monotonic() - self._checked_model > MODEL_CHECK_EVERY:
                    self._checked_model = time.monotonic()
                    self.check_requested_model()
                with self._wake:  # sleep unless something was submitted since we looked
                    self._wake.wait_for(partial(self._changed_since, seen), timeout=5.0)
                continue
            self._signal()  # another worker may take the next job
            self._run(job_id)

    def _run(self, job_id: str) -> None:
        job = self.get(job_id)
        try:
            if job.kind == FOLDER:
                self._run_folder(job)
            elif job.kind == UPLOAD:
                self._run_upload(job)
            elif job.kind == REEMBED:
                self._run_reembed(job)
            elif job.kind == MODEL:
                self._run_model(job)
            elif job.kind == READ_TEXT:
                self._run_read_text(job)
            elif job.kind == COPIES:
                self._run_copies(job)
            else:
                raise VisualSearchError(f"unknown job kind {job.kind!r}")
            self.jobs.update(job_id, status=DONE, finished=True)
        except CheckStopped:  # the server is stopping: left running, so the next start runs it again
            log.info("job %s stopped with the server; it carries on at the next start", job_id)
        except Exception as exc:  # recorded on the job; the worker carries on with the next one
            log.exception("job %s failed", job_id)
            message = str(exc) if isinstance(exc, VisualSearchError) else f"{type(exc).__name__}: {exc}"
            self.jobs.update(job_id, status=FAILED, error=message, finished=True)
        finally:
            if job.kind == UPLOAD:
                shutil.rmtree(self.staging_folder(job_id), ignore_errors=True)

    def _run_folder(self, job: JobRecord) -> None:
        def on_plan(todo: int, unchanged: int) -> None:
            self.jobs.update(job.id, total=todo)

        def progress(done: int, total: int) -> None:
            self.jobs.update(job.id, done=done, total=total)

        report = self.library.index_folder(
            Path(job.params["path"]), prune=bool(job.params.get("prune")), progress=progress, on_plan=on_plan
        )
        failures = [{"name": src, "error": reason} for src, reason in report.failures[:MAX_RECORDED_FAILURES]]
        self.jobs.update(job.id, failed=report.failed, failures=failures)
        if report.indexed:
            self.ensure_copy_check()

    def _run_reembed(self, job: JobRecord) -> None:
        report = reembed_library(
            self.library, progress=lambda done, total: self.jobs.update(job.id, done=done, total=total)
        )
        failures = [{"name": src, "error": reason} for src, reason in report.failures[:MAX_RECORDED_FAILURES]]
        self.jobs.update(job.id, failed=report.failed, failures=failures)
        self.ensure_copy_check()  # new vectors: other candidate pairs
        change = self.library.model_change()
        if change is not None and change.to_model != report.model_id:
            # Another model was asked for while this ran: it did not switch; move on to the new one.
            self.submit(REEMBED, {"from": change.from_model, "to": change.to_model}, total=change.total)

    def check_requested_model(self) -> None:
        """Start re-embedding if the requested model changed in another process (``models use --no-reembed``)."""
        try:
            self.ensure_reembedding()
        except VisualSearchError as exc:  # the requested model cannot load: say so once per look, keep serving
            log.warning("cannot move to the requested model: %s", exc)

    def _run_model(self, job: JobRecord) -> None:
        """Download a model (progress in bytes), make it the requested one, and queue the re-embedding."""
        last = 0.0

        def progress(done: int, total: int, _file: str) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= MODEL_PROGRESS_EVERY or done == total:
                last = now
                self.jobs.update(job.id, done=done, total=total)

        self.models.use(job.params["name"], progress)
        self.ensure_reembedding()

    def use_model(self, name: str) -> JobRecord:
        """Queue the download of ``name`` and the switch to it (one at a time; the same request joins it)."""
        self.models.check_usable(name)  # an unknown, pinned or unloadable model fails now
        with self._use_lock:  # two quick clicks must not start two downloads
            existing = self.jobs.active_of_kind(MODEL)
            if existing is not None:
                if existing.params.get("name") == name:
                    return existing
                raise Busy(f"model {existing.params.get('name')} is being downloaded; wait for it to finish")
            return self.submit(MODEL, {"name": name})

    def ensure_reembedding(self) -> JobRecord | None:
        """Queue a re-embedding job when the configured model is not the library's active one yet."""
        change = self.library.model_change()
        if change is None:
            return None
        existing = self.jobs.active_of_kind(REEMBED)
        if existing is not None:
            return existing
        log.info(
            "re-embedding %d images: %s -> %s; searches use %s until it is done",
            change.total,
            change.from_model,
            change.to_model,
            change.from_model,
        )
        return self.submit(REEMBED, {"from": change.from_model, "to": change.to_model}, total=change.total)

    def ensure_text_reading(self) -> JobRecord | None:
        """With text reading on, queue a job that reads the pictures not read yet (uploads and URL adds
        leave their pictures to it), unless one is queued already. None with reading off."""
        if not self.library.settings.ocr:
            return None
        queued = next((j for j in self.list(limit=20) if j.kind == READ_TEXT and j.status == QUEUED), None)
        if queued is not None:
            return queued  # it will see the new pictures; a running one may have listed its work already
        return self.submit(READ_TEXT, {})

    def ensure_copy_check(self) -> JobRecord | None:
        """With ``copies_at_index`` on, queue a check of the library's unchecked candidate pairs, unless a
        copies job is queued (it will see the new pictures) or running (it runs once more when it ends,
        rather than a second job waiting for it in the other worker). None with the setting off."""
        if not self.library.settings.copies_at_index:
            return None
        with self._copies_lock:
            active = self.jobs.active_of_kind(COPIES)
            if active is not None:
                if active.status == RUNNING:
                    self._copies_again = True
                return active
            return self.submit(COPIES, {})

    def _run_copies(self, job: JobRecord) -> None:
        """The duplicates run at the default threshold: pairs checked before are read from the catalog,
        so this checks the pairs that were never checked; ``done`` and ``total`` count candidate pairs.
        Stops between chunks of pairs when the server stops (the job is then run again at the next start)."""
        if not self.library.settings.copies_at_index:
            return  # queued before a restart with the setting off
        written = -1

        def progress(done: int, total: int) -> None:  # a catalog write every 200 pairs or so
            nonlocal written
            if done == 0 or done == total or done - written >= 200:
                written = done
                self.jobs.update(job.id, done=done, total=total)

        while True:
            with self._copies_lock:
                self._copies_again = False
            self.duplicates.duplicates(progress=progress, stop=self._stop.is_set)
            with self._copies_lock:
                if not self._copies_again:
                    # Done under the lock: a check asked for from now on queues a job of its own.
                    self.jobs.update(job.id, status=DONE, finished=True)
                    return

    def _run_read_text(self, job: JobRecord) -> None:
        def progress(done: int, total: int) -> None:
            self.jobs.update(job.id, done=done, total=total)

        report = read_library_text(self.library, progress)
        failures = [{"name": source, "error": reason} for source, reason in report.failures][:MAX_RECORDED_FAILURES]
        self.jobs.update(job.id, done=report.todo, total=report.todo, failed=report.failed, failures=failures)

    def _run_upload(self, job: JobRecord) -> None:
        items = [
            Incoming(Path(f["staged"]), f["name"], tags=tuple(job.params.get("tags", ())))
            for f in job.params["files"]
            if Path(f["staged"]).exists()
        ]

        def progress(done: int, total: int, failed: int) -> None:
            self.jobs.update(job.id, done=done, total=total, failed=failed)

        outcomes = add_incoming(self.library, items, progress=progress, near_duplicates=job.params.get("duplicates"))
        if any(o.ok for o in outcomes):
            self.ensure_copy_check()
        failures = [
            {"name": o.name, "error": str(o.error), "code": o.error.code} for o in outcomes if o.error is not None
        ][:MAX_RECORDED_FAILURES]
        self.jobs.update(
            job.id, failed=sum(not o.ok for o in outcomes), done=len(outcomes), total=len(outcomes), failures=failures
        )
