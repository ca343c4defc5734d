"""Health, readiness and library statistics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ..deps import ServerDep
from ..schemas import AUTH_ERRORS, HealthOut, IndexStats, ModelChangeOut, StatsOut
from ..security import require_read

router = APIRouter(tags=["system"])


@router.get(
    "/healthz", response_model=HealthOut, response_model_exclude_none=True, summary="Liveness: the process answers"
)
def healthz() -> HealthOut:
    return HealthOut(status="ok")


@router.get(
    "/readyz",
    response_model=HealthOut,
    response_model_exclude_none=True,
    summary="Readiness: catalog reachable and model loaded",
    responses={503: {"model": HealthOut, "description": "Still loading the model, or broken."}},
)
def readyz(server: ServerDep) -> Any:
    try:
        server.library.catalog.ping()
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "detail": f"catalog: {exc}"}, status_code=503)
    server.retry_warmup()  # a start-up failure such as a full disk heals once the cause is gone
    if server.model_error:
        return JSONResponse({"status": "unavailable", "detail": f"model: {server.model_error}"}, status_code=503)
    if not server.ready:
        return JSONResponse({"status": "starting", "detail": "loading the model and indexes"}, status_code=503)
    return HealthOut(status="ready")


@router.get(
    "/api/stats",
    response_model=StatsOut,
    summary="Library statistics",
    responses=AUTH_ERRORS,
    dependencies=[require_read],
)
def stats(server: ServerDep) -> StatsOut:
    library = server.library
    counts = library.catalog.counts()
    indexes = []
    for space in library.embedder.spaces:
        index = library.indexes(space).index()
        indexes.append(IndexStats(space=space, type=index.kind, vectors=len(index)))
    change = library.model_change()
    return StatsOut(
        assets=sum(counts.values()),
        indexed=counts.get("indexed", 0),
        failed=counts.get("failed", 0),
        model_id=library.embedder.model_id,
        indexes=indexes,
        jobs_active=server.jobs.active_count(),
        model_change=None if change is None else ModelChangeOut.model_validate(change),
    )
