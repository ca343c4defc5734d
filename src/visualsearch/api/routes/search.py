"""Visual search: by text, by an asset in the library, by an image URL, by an uploaded image."""

from __future__ import annotations

import time
from datetime import datetime

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from ...catalog import AssetFilter
from ..errors import ApiError
from ..schemas import ErrorOut, QueryOut, SearchFilters, SearchHit, SearchIn, SearchOptions, SearchOut
from ..security import require_read
from ..uploads import receive_files

router = APIRouter(prefix="/api/search", tags=["search"])

_ERRORS = {400: {"model": ErrorOut, "description": "Refused URL (with `details.reason`) or bad request."},
           401: {"model": ErrorOut}, 403: {"model": ErrorOut},
           404: {"model": ErrorOut, "description": "Unknown asset."},
           413: {"model": ErrorOut, "description": "Image over 40 MB."},
           415: {"model": ErrorOut, "description": "Not an image."},
           422: {"model": ErrorOut, "description": "Invalid request or corrupt image."},
           429: {"model": ErrorOut}}


def to_filter(filters: SearchFilters | None) -> AssetFilter | None:
    if filters is None:
        return None
    return AssetFilter(prefix=filters.prefix, format=filters.format, tag=filters.tag, q=filters.q,
                       added_after=filters.added_after, added_before=filters.added_before)


def _run(server, query: QueryOut, options: SearchOptions, search) -> SearchOut:
    if options.limit > server.settings.max_page_size:
        raise ApiError(422, "invalid_request", f"limit: at most {server.settings.max_page_size} results per page")
    started = time.perf_counter()
    try:
        results = search(limit=options.limit, offset=options.offset, min_score=options.min_score,
                         filters=to_filter(options.filters))
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from exc
    took = (time.perf_counter() - started) * 1000
    assets = server.assets_out([r.asset for r in results])
    items = [SearchHit(rank=r.rank, score=r.score, asset_id=r.asset_id, asset=a) for r, a in zip(results, assets)]
    full = len(results) == options.limit
    return SearchOut(query=query, items=items, limit=options.limit, offset=options.offset,
                     next_offset=options.offset + options.limit if full else None,
                     model_id=server.library.embedder.model_id, took_ms=round(took, 2))


def _search(server, body: SearchIn) -> SearchOut:
    engine = server.engine
    if body.text is not None:
        return _run(server, QueryOut(kind="text", text=body.text), body, lambda **o: engine.text(body.text, **o))
    if body.asset_id is not None:
        return _run(server, QueryOut(kind="asset", asset_id=body.asset_id), body,
                    lambda **o: engine.similar_to_asset(body.asset_id, **o))

    def by_url(**options):
        with server.fetches.slot():  # never queued: a slow server holds a fetch for its whole deadline
            data = engine.fetch(body.image_url)
        with server.decodes.slot():
            return engine.similar_to_bytes(data, **options)

    return _run(server, QueryOut(kind="url", image_url=body.image_url), body, by_url)


@router.post("", response_model=SearchOut, responses=_ERRORS, dependencies=[require_read],
             summary="Search by text, by an asset, or by an image URL")
def search(request: Request, body: SearchIn) -> SearchOut:
    """Results are ranked best first; `score` is the cosine similarity.

    - `text`: a plain-language description ("cold night", "gold bracelet on a wrist").
    - `asset_id`: images similar to one already in the library (it is left out of its own results).
    - `image_url`: images similar to the one at this URL (http/https only; private addresses refused).
    """
    return _search(request.app.state.server, body)


@router.get("", response_model=SearchOut, responses=_ERRORS, dependencies=[require_read],
            summary="Search with query parameters (same as POST)")
def search_get(request: Request,
               text: str | None = Query(None, min_length=1, max_length=1000, examples=["cold night"]),
               asset_id: int | None = Query(None, ge=1, le=2**62),
               image_url: str | None = Query(None, max_length=2048),
               limit: int = Query(20, ge=1, le=200), offset: int = Query(0, ge=0, le=10_000),
               min_score: float | None = Query(None, ge=-1.0, le=1.0),
               prefix: str | None = Query(None, max_length=4096), format: str | None = Query(None, max_length=16),
               tag: str | None = Query(None, max_length=64), q: str | None = Query(None, max_length=200),
               added_after: datetime | None = None, added_before: datetime | None = None) -> SearchOut:
    try:
        body = SearchIn(text=text, asset_id=asset_id, image_url=image_url, limit=limit, offset=offset,
                        min_score=min_score, filters=SearchFilters(prefix=prefix, format=format, tag=tag, q=q,
                                                                   added_after=added_after, added_before=added_before))
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", exc.errors()[0]["msg"]) from exc
    return _search(request.app.state.server, body)


_IMAGE_FORM = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "The reference image (at most 40 MB)."},
        "limit": {"type": "integer", "minimum": 1, "maximum": 200, "default": 20},
        "offset": {"type": "integer", "minimum": 0, "maximum": 10000, "default": 0},
        "min_score": {"type": "number", "minimum": -1, "maximum": 1},
        "prefix": {"type": "string"}, "format": {"type": "string"}, "tag": {"type": "string"},
        "q": {"type": "string"}, "added_after": {"type": "string", "format": "date-time"},
        "added_before": {"type": "string", "format": "date-time"}}}}}}}


@router.post("/image", response_model=SearchOut, responses=_ERRORS, dependencies=[require_read],
             openapi_extra=_IMAGE_FORM, summary="Search with an uploaded image")
async def search_image(request: Request) -> SearchOut:
    """Upload a reference image as multipart field `file`; the image is not added to the library.

    Over 40 MB is refused with 413 as soon as the upload passes the limit."""
    server = request.app.state.server
    settings = server.settings
    form = await receive_files(request, server.library.media, file_field="file",
                               max_file_bytes=settings.max_image_bytes, max_files=1, reject_oversize=True)
    try:
        if not form.files:
            raise ApiError(422, "invalid_request", "file: the multipart body has no 'file' field")
        upload = form.files[0]
        fields = form.fields
        try:
            options = SearchOptions(
                limit=fields.get("limit", 20), offset=fields.get("offset", 0), min_score=fields.get("min_score"),
                filters=SearchFilters(**{k: fields[k] for k in ("prefix", "format", "tag", "q", "added_after",
                                                                "added_before") if fields.get(k)}))
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ApiError(422, "invalid_request",
                           f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from exc
        data = upload.staged.read_bytes()

        def by_image(**o):
            with server.decodes.slot():
                return server.engine.similar_to_bytes(data, **o)

        return await run_in_threadpool(_run, server, QueryOut(kind="image", file_name=upload.name), options, by_image)
    finally:
        for f in form.files:
            if f.staged is not None:
                f.staged.unlink(missing_ok=True)
