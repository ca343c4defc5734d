"""Which embedding model the library uses: the curated list (read) and switching (admin)."""

from __future__ import annotations

from fastapi import APIRouter

from ...errors import VisualSearchError
from ...services.jobs import MODEL, REEMBED
from ..deps import JobsDep, LibraryDep, ModelsDep
from ..schemas import AUTH_ERRORS, ErrorOut, JobOut, ModelChangeOut, ModelOut, ModelsOut, ModelUseIn
from ..security import require_admin, require_read

router = APIRouter(prefix="/api", tags=["models"])


@router.get(
    "/models",
    response_model=ModelsOut,
    responses=AUTH_ERRORS,
    dependencies=[require_read],
    summary="The curated models, which one is in use, and any switch in progress",
)
def list_models(models: ModelsDep, library: LibraryDep, jobs: JobsDep) -> ModelsOut:
    # The list must load even when the requested model cannot: the page's Use button is the way out.
    change, model_error = None, None
    try:
        change = library.model_change()
    except VisualSearchError as exc:
        model_error = str(exc)
    job = jobs.active_of_kind(MODEL) or jobs.active_of_kind(REEMBED)
    return ModelsOut(
        models=[ModelOut.model_validate(m) for m in models.list()],
        active=library.active_model_name,
        requested=library.settings.model,
        pinned=library.model_pinned,
        model_change=None if change is None else ModelChangeOut.model_validate(change),
        job=None if job is None else JobOut.model_validate(job),
        downloading=job.params.get("name") if job is not None and job.kind == MODEL else None,
        model_error=model_error,
    )


@router.post(
    "/models/use",
    response_model=JobOut,
    status_code=202,
    responses=AUTH_ERRORS | {404: {"model": ErrorOut}, 409: {"model": ErrorOut}, 503: {"model": ErrorOut}},
    dependencies=[require_admin],
    summary="Download a model (resumable) and move the library onto it in the background",
    description="Returns the download job (`kind` `model`, progress in bytes). When it is done the library "
    "re-embeds (a `reembed` job); searches keep using the current model until every image has a new vector. "
    "409 when VISUALSEARCH_MODEL pins the model (`model_pinned`) or the model needs an optional extra that is "
    "not installed (`model_unavailable`); 503 while another model is downloading.",
)
def use_model(body: ModelUseIn, jobs: JobsDep) -> JobOut:
    return JobOut.model_validate(jobs.use_model(body.name))
