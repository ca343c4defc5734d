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

import json
import logging
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update

from ..catalog import Job
from ..catalog.schema import utcnow
from ..errors import NotFound, VisualSearchError
from .add import Incoming, add_incoming

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
FOLDER, UPLOAD, REEMBED = "folder", "upload", "reembed"
MAX_RECORDED_FAILURES = 1000


@dataclass
class JobInfo:
    id: str
    kind: str
    status: str
    total: int
    done: int
    failed: int
    failures: list[dict]
    error: str | None
    created_at: object
    started_at: object
    finished_at: object
    params: dict


def _info(row: Job) -> JobInfo:
    return JobInfo(row.id, row.kind, row.status, row.total, row.done, row.failed, json.loads(row.failures),
                   row.error, row.created_at, row.started_at, row.finished_at, json.loads(row.params))


class JobQueue:
    def __init__(self, library, workers: int = 2):
        self.library = library
        self.catalog = library.catalog
        self.workers = max(1, workers)
        self._wake = threading.Condition()
        self._signals = 0  # bumped on every submit/stop; a worker sleeps only while it is unchanged
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- submitting / reading --------------------------------------------------------
    def staging_folder(self, job_id: str) -> Path:
        return self.library.media.staging / f"job-{job_id}"

    def new_id(self) -> str:
        return uuid.uuid4().hex

    def submit(self, kind: str, params: dict, total: int = 0, job_id: str | None = None) -> JobInfo:
        job_id = job_id or self.new_id()
        with self.catalog.write_session() as s, s.begin():
            row = Job(id=job_id, kind=kind, status=QUEUED, params=json.dumps(params), total=total, done=0,
                      failed=0, failures="[]")
            s.add(row)
            s.flush()
            info = _info(row)
        self._signal()
        return info

    def get(self, job_id: str) -> JobInfo:
        with self.catalog.session() as s:
            row = s.get(Job, job_id)
        if row is None:
            raise NotFound(f"no job with id {job_id}")
        return _info(row)

    def list(self, limit: int = 50) -> list[JobInfo]:
        with self.catalog.session() as s:
            return [_info(r) for r in s.scalars(select(Job).order_by(Job.created_at.desc()).limit(limit))]

    # -- running ---------------------------------------------------------------------
    def start(self) -> None:
        with self.catalog.write_session() as s, s.begin():
            s.execute(update(Job).where(Job.status == RUNNING).values(status=QUEUED))
        self._threads = [threading.Thread(target=self._loop, name=f"visualsearch-jobs-{n}", daemon=True)
                         for n in range(self.workers)]
        for thread in self._threads:
            thread.start()
        self._signal()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._signal()
        for thread in self._threads:
            thread.join(timeout)

    def active_staging(self) -> set[str]:
        with self.catalog.session() as s:
            ids = s.scalars(select(Job.id).where(Job.status.in_((QUEUED, RUNNING)))).all()
        return {f"job-{i}" for i in ids}

    def _claim(self) -> str | None:
        """The oldest queued job, marked running by this worker; None when there is none."""
        while True:
            with self.catalog.write_session() as s, s.begin():
                job_id = s.scalars(select(Job.id).where(Job.status == QUEUED)
                                   .order_by(Job.created_at).limit(1)).first()
                if job_id is None:
                    return None
                claimed = s.execute(update(Job).where(Job.id == job_id, Job.status == QUEUED)
                                    .values(status=RUNNING, started_at=utcnow(), error=None)).rowcount
            if claimed:
                return job_id

    def _signal(self) -> None:
        with self._wake:
            self._signals += 1
            self._wake.notify_all()

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._wake:
                seen = self._signals
            job_id = self._claim()
            if job_id is None:
                with self._wake:  # sleep unless something was submitted since we looked
                    self._wake.wait_for(lambda: self._signals != seen, timeout=5.0)
                continue
            self._signal()  # another worker may take the next job
            self._run(job_id)

    def _set(self, job_id: str, **values) -> None:
        with self.catalog.write_session() as s, s.begin():
            s.execute(update(Job).where(Job.id == job_id).values(**values))

    def _run(self, job_id: str) -> None:
        job = self.get(job_id)
        try:
            if job.kind == FOLDER:
                self._run_folder(job)
            elif job.kind == UPLOAD:
                self._run_upload(job)
            elif job.kind == REEMBED:
                self._run_reembed(job)
            else:
                raise VisualSearchError(f"unknown job kind {job.kind!r}")
            self._set(job_id, status=DONE, finished_at=utcnow())
        except Exception as exc:  # recorded on the job; the worker carries on with the next one
            log.exception("job %s failed", job_id)
            message = str(exc) if isinstance(exc, VisualSearchError) else f"{type(exc).__name__}: {exc}"
            self._set(job_id, status=FAILED, error=message, finished_at=utcnow())
        finally:
            if job.kind == UPLOAD:
                shutil.rmtree(self.staging_folder(job_id), ignore_errors=True)

    def _run_folder(self, job: JobInfo) -> None:
        failed = 0

        def on_plan(todo: int, unchanged: int) -> None:
            self._set(job.id, total=todo)

        def progress(done: int, total: int) -> None:
            self._set(job.id, done=done, total=total)

        report = self.library.index_folder(Path(job.params["path"]), prune=bool(job.params.get("prune")),
                                           progress=progress, on_plan=on_plan)
        failed = report.failed
        failures = [{"name": src, "error": reason} for src, reason in report.failures[:MAX_RECORDED_FAILURES]]
        self._set(job.id, failed=failed, failures=json.dumps(failures))

    def _run_reembed(self, job: JobInfo) -> None:
        from .reembed import reembed_library

        report = reembed_library(self.library, progress=lambda done, total: self._set(job.id, done=done, total=total))
        failures = [{"name": src, "error": reason} for src, reason in report.failures[:MAX_RECORDED_FAILURES]]
        self._set(job.id, failed=report.failed, failures=json.dumps(failures))

    def ensure_reembedding(self) -> JobInfo | None:
        """Queue a re-embedding job when the configured model is not the library's active one yet."""
        change = self.library.model_change()
        if change is None:
            return None
        with self.catalog.session() as s:
            existing = s.scalars(select(Job).where(Job.kind == REEMBED, Job.status.in_((QUEUED, RUNNING)))).first()
            if existing is not None:
                return _info(existing)
        log.info("re-embedding %d images: %s -> %s; searches use %s until it is done",
                 change.total, change.from_model, change.to_model, change.from_model)
        return self.submit(REEMBED, {"from": change.from_model, "to": change.to_model}, total=change.total)

    def _run_upload(self, job: JobInfo) -> None:
        items = [Incoming(Path(f["staged"]), f["name"], tags=tuple(job.params.get("tags", ())))
                 for f in job.params["files"] if Path(f["staged"]).exists()]

        def progress(done: int, total: int, failed: int) -> None:
            self._set(job.id, done=done, total=total, failed=failed)

        outcomes = add_incoming(self.library, items, progress=progress, near_duplicates=job.params.get("duplicates"))
        failures = [{"name": o.name, "error": str(o.error), "code": o.error.code}
                    for o in outcomes if o.error is not None][:MAX_RECORDED_FAILURES]
        self._set(job.id, failed=sum(not o.ok for o in outcomes), done=len(outcomes), total=len(outcomes),
                  failures=json.dumps(failures))
