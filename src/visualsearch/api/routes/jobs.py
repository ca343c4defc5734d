"""Background indexing jobs and API keys (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi import Path as PathParam

from ..deps import JobsDep, KeysDep
from ..schemas import AUTH_ERRORS, ErrorOut, JobOut, KeyCreated, KeyId, KeyIn, KeyOut
from ..security import require_admin

router = APIRouter(prefix="/api", tags=["admin"])


@router.get(
    "/jobs",
    response_model=list[JobOut],
    responses=AUTH_ERRORS,
    dependencies=[require_admin],
    summary="Recent jobs, newest first",
)
def list_jobs(jobs: JobsDep, limit: int = Query(50, ge=1, le=200)) -> list[JobOut]:
    return [JobOut.model_validate(j) for j in jobs.list(limit)]


@router.get(
    "/jobs/{job_id}",
    response_model=JobOut,
    dependencies=[require_admin],
    responses=AUTH_ERRORS | {404: {"model": ErrorOut}},
    summary="A job's status and progress",
)
def get_job(jobs: JobsDep, job_id: Annotated[str, PathParam(max_length=64)]) -> JobOut:
    return JobOut.model_validate(jobs.get(job_id))


@router.get(
    "/keys",
    response_model=list[KeyOut],
    responses=AUTH_ERRORS,
    dependencies=[require_admin],
    summary="API keys (without their secrets)",
)
def list_keys(keys: KeysDep) -> list[KeyOut]:
    return [KeyOut.model_validate(k) for k in keys.list()]


@router.post(
    "/keys",
    response_model=KeyCreated,
    status_code=201,
    responses=AUTH_ERRORS,
    dependencies=[require_admin],
    summary="Create an API key (the secret is returned once)",
)
def create_key(keys: KeysDep, body: KeyIn) -> KeyCreated:
    record, secret = keys.create(body.name, body.role)
    return KeyCreated(**KeyOut.model_validate(record).model_dump(), key=secret)


@router.delete(
    "/keys/{key_id}",
    response_model=KeyOut,
    dependencies=[require_admin],
    responses=AUTH_ERRORS | {404: {"model": ErrorOut}},
    summary="Revoke an API key",
)
def revoke_key(keys: KeysDep, key_id: KeyId) -> KeyOut:
    return KeyOut.model_validate(keys.revoke(key_id))
