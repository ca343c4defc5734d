"""Background indexing jobs and API keys (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam

from ..schemas import ErrorOut, KeyId, JobOut, KeyCreated, KeyIn, KeyOut
from ..security import require_admin

router = APIRouter(prefix="/api", tags=["admin"])
_AUTH = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 429: {"model": ErrorOut}}


@router.get("/jobs", response_model=list[JobOut], responses=_AUTH, dependencies=[require_admin],
            summary="Recent jobs, newest first")
def list_jobs(request: Request, limit: int = Query(50, ge=1, le=200)) -> list[JobOut]:
    server = request.app.state.server
    return [server.job_out(j) for j in server.jobs.list(limit)]


@router.get("/jobs/{job_id}", response_model=JobOut, dependencies=[require_admin],
            responses=_AUTH | {404: {"model": ErrorOut}}, summary="A job's status and progress")
def get_job(request: Request, job_id: Annotated[str, PathParam(max_length=64)]) -> JobOut:
    server = request.app.state.server
    return server.job_out(server.jobs.get(job_id))


def _key_out(info) -> KeyOut:
    return KeyOut(id=info.id, name=info.name, role=info.role, prefix=info.prefix, created_at=info.created_at,
                  last_used_at=info.last_used_at, revoked=info.revoked)


@router.get("/keys", response_model=list[KeyOut], responses=_AUTH, dependencies=[require_admin],
            summary="API keys (without their secrets)")
def list_keys(request: Request) -> list[KeyOut]:
    return [_key_out(k) for k in request.app.state.server.keys.list()]


@router.post("/keys", response_model=KeyCreated, status_code=201, responses=_AUTH, dependencies=[require_admin],
             summary="Create an API key (the secret is returned once)")
def create_key(request: Request, body: KeyIn) -> KeyCreated:
    info, secret = request.app.state.server.keys.create(body.name, body.role)
    return KeyCreated(**_key_out(info).model_dump(), key=secret)


@router.delete("/keys/{key_id}", response_model=KeyOut, dependencies=[require_admin],
               responses=_AUTH | {404: {"model": ErrorOut}}, summary="Revoke an API key")
def revoke_key(request: Request, key_id: KeyId) -> KeyOut:
    return _key_out(request.app.state.server.keys.revoke(key_id))
