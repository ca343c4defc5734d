"""Background jobs as stored: what to do, status, progress and failures (JSON in text columns)."""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from .records import JobRecord
from .schema import JobRow, utcnow

if TYPE_CHECKING:
    from .store import Catalog

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


def _record(row: JobRow) -> JobRecord:
    return JobRecord(
        row.id,
        row.kind,
        row.status,
        row.total,
        row.done,
        row.failed,
        json.loads(row.failures),
        row.error,
        row.created_at,
        row.started_at,
        row.finished_at,
        json.loads(row.params),
    )


class JobRepository:
    def __init__(self, catalog: Catalog):
        self._catalog = catalog

    def add(self, job_id: str, kind: str, params: dict[str, Any], total: int = 0) -> JobRecord:
        with self._catalog.write_session() as s, s.begin():
            row = JobRow(
                id=job_id,
                kind=kind,
                status=QUEUED,
                params=json.dumps(params),
                total=total,
                done=0,
                failed=0,
                failures="[]",
            )
            s.add(row)
            s.flush()
            return _record(row)

    def get(self, job_id: str) -> JobRecord | None:
        with self._catalog.session() as s:
            row = s.get(JobRow, job_id)
            return None if row is None else _record(row)

    def list(self, limit: int = 50) -> list[JobRecord]:
        with self._catalog.session() as s:
            return [_record(r) for r in s.scalars(select(JobRow).order_by(JobRow.created_at.desc()).limit(limit))]

    def count_active(self) -> int:
        return len(self.active_ids())

    def active_ids(self) -> builtins.list[str]:
        with self._catalog.session() as s:
            return list(s.scalars(select(JobRow.id).where(JobRow.status.in_((QUEUED, RUNNING)))).all())

    def active_of_kind(self, kind: str) -> JobRecord | None:
        with self._catalog.session() as s:
            row = s.scalars(select(JobRow).where(JobRow.kind == kind, JobRow.status.in_((QUEUED, RUNNING)))).first()
            return None if row is None else _record(row)

    def requeue_running(self) -> None:
        """Jobs a stopped server left running go back to the queue (indexing is idempotent)."""
        with self._catalog.write_session() as s, s.begin():
            s.execute(update(JobRow).where(JobRow.status == RUNNING).values(status=QUEUED))

    def claim_next(self) -> str | None:
        """The oldest queued job, marked running for the caller; None when the queue is empty.

        The conditional update makes the claim atomic: two workers never run the same job.
        """
        while True:
            with self._catalog.write_session() as s, s.begin():
                job_id = s.scalars(
                    select(JobRow.id).where(JobRow.status == QUEUED).order_by(JobRow.created_at).limit(1)
                ).first()
                if job_id is None:
                    return None
                claimed = s.execute(  # type: ignore[attr-defined]  # an UPDATE's CursorResult has rowcount
                    update(JobRow)
                    .where(JobRow.id == job_id, JobRow.status == QUEUED)
                    .values(status=RUNNING, started_at=utcnow(), error=None)
                ).rowcount
            if claimed:
                return job_id

    def update(
        self, job_id: str, *, failures: Iterable[dict[str, Any]] | None = None, finished: bool = False, **values: Any
    ) -> None:
        """Set progress columns (status, total, done, failed, error); ``failures`` replaces the list."""
        if failures is not None:
            values["failures"] = json.dumps(list(failures))
        if finished:
            values["finished_at"] = utcnow()
        with self._catalog.write_session() as s, s.begin():
            s.execute(update(JobRow).where(JobRow.id == job_id).values(**values))
