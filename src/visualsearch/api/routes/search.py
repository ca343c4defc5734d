"""Visual search: by text, by an asset in the library, by an image URL, by an uploaded image."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from ...catalog import AssetFilter
from ...config import MAX_SCORE
from ...search import SearchResult
from ...search.relevance import MatchVerdict
from ..deps import ServerDep
from ..errors import ApiError
from ..schemas import ErrorOut, QueryOut, SearchFilters, SearchHit, SearchIn, SearchOptions, SearchOut, WhyOut
from ..security import require_read
from ..state import ServerState
from ..uploads import MAX_IMAGE, ReceivedForm, form_body, multipart

router = APIRouter(prefix="/api/search", tags=["search"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Refused URL (with `details.reason`) or bad request."},
    401: {"model": ErrorOut},
    403: {"model": ErrorOut},
    404: {"model": ErrorOut, "description": "Unknown asset."},
    413: {"model": ErrorOut, "description": f"Image over {MAX_IMAGE}."},
    415: {"model": ErrorOut, "description": "Not an image."},
    422: {"model": ErrorOut, "description": "Invalid request or corrupt image."},
    429: {"model": ErrorOut},
}

Search = Callable[..., list[SearchResult]]


def to_filter(filters: SearchFilters | None) -> AssetFilter | None:
    if filters is None:
        return None
    return AssetFilter(
        prefix=filters.prefix,
        format=filters.format,
        tag=filters.tag,
        q=filters.q,
        added_after=filters.added_after,
        added_before=filters.added_before,
    )


def _run(server: ServerState, query: QueryOut, options: SearchOptions, search: Search) -> SearchOut:
    if options.limit > server.settings.max_page_size:
        raise ApiError(422, "invalid_request", f"limit: at most {server.settings.max_page_size} results per page")
    started = time.perf_counter()
    try:
        results = search(
            limit=options.limit, offset=options.offset, min_score=options.min_score, filters=to_filter(options.filters)
        )
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from exc
    took = (time.perf_counter() - started) * 1000
    tagged = server.assets.with_tags([r.asset for r in results if r.asset is not None])
    items = [SearchHit.model_validate(replace(r, asset=a)) for r, a in zip(results, tagged, strict=True)]
    full = len(results) == options.limit
    return SearchOut(
        query=query,
        items=items,
        limit=options.limit,
        offset=options.offset,
        next_offset=options.offset + options.limit if full else None,
        model_id=server.library.embedder.model_id,
        took_ms=round(took, 2),
    )


def _search(server: ServerState, body: SearchIn) -> SearchOut:
    service = server.search
    if body.text is not None:
        text, asset_id = body.text, body.asset_id
        understood = service.understand(text).describe()
        query = QueryOut(kind="text", text=text, understood=understood, asset_id=asset_id)
        verdicts: list[MatchVerdict | None] = []
        found: list[SearchResult] = []

        def by_text(**options: Any) -> list[SearchResult]:
            results, verdict = service.text_with_verdict(text, asset_id=asset_id, **options)
            verdicts.append(verdict)
            found.extend(results)
            return results

        out = _run(server, query, body, by_text)
        if body.explain:
            why = service.explain(text, found)
            for item in out.items:
                if item.asset_id in why:
                    item.why = WhyOut.model_validate(why[item.asset_id])
        verdict = verdicts[0] if verdicts else None
        if verdict is not None:
            out.close_matches = verdict.close
            if not verdict.close and out.items:
                out.note = f"No close matches; showing the nearest {len(out.items)}"
        return out
    if body.asset_id is not None:
        asset_id = body.asset_id
        return _run(
            server, QueryOut(kind="asset", asset_id=asset_id), body, lambda **o: service.similar_to_asset(asset_id, **o)
        )
    url = body.image_url or ""

    def by_url(**options: Any) -> list[SearchResult]:
        with server.fetches.slot():  # never queued: a slow server holds a fetch for its whole deadline
            data = service.fetch(url)
        with server.decodes.slot():
            return service.similar_to_bytes(data, **options)

    return _run(server, QueryOut(kind="url", image_url=url), body, by_url)


@router.post(
    "",
    response_model=SearchOut,
    responses=_ERRORS,
    dependencies=[require_read],
    summary="Search by text, by an asset, or by an image URL",
)
def search(server: ServerDep, body: SearchIn) -> SearchOut:
    """Results are ranked best first; `score` is the cosine similarity.

    - `text`: a plain-language description ("cold night", "gold bracelet on a wrist"). `-word` or
      `-"a phrase"` leaves out what looks like it (`beach -people`), `+ phrase` adds another thing to
      look for, `^2` after a part weighs it (`red car + night^0.5`); `query.understood` says how it was read.
    - `asset_id`: images similar to one already in the library (it is left out of its own results).
      With `text` too: images like that asset, changed by the words ("at night").
    - `image_url`: images similar to the one at this URL (http/https only; private addresses refused).
    """
    return _search(server, body)


@router.get(
    "",
    response_model=SearchOut,
    responses=_ERRORS,
    dependencies=[require_read],
    summary="Search with query parameters (same as POST)",
)
def search_get(
    server: ServerDep,
    text: str | None = Query(None, min_length=1, max_length=1000, examples=["cold night"]),
    asset_id: int | None = Query(None, ge=1, le=2**62),
    image_url: str | None = Query(None, max_length=2048),
    limit: int = Query(20, ge=1, le=200),
    offset: int = Query(0, ge=0, le=10_000),
    min_score: float | None = Query(None, ge=-MAX_SCORE, le=MAX_SCORE),
    prefix: str | None = Query(None, max_length=4096),
    format: str | None = Query(None, max_length=16),
    tag: str | None = Query(None, max_length=64),
    q: str | None = Query(None, max_length=200),
    added_after: datetime | None = None,
    added_before: datetime | None = None,
    explain: bool = Query(False, description="Text queries: say why each result matched."),
) -> SearchOut:
    try:
        body = SearchIn(
            text=text,
            asset_id=asset_id,
            explain=explain,
            image_url=image_url,
            limit=limit,
            offset=offset,
            min_score=min_score,
            filters=SearchFilters(
                prefix=prefix, format=format, tag=tag, q=q, added_after=added_after, added_before=added_before
            ),
        )
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", exc.errors()[0]["msg"]) from exc
    return _search(server, body)


class ImageSearchFields(SearchFilters):
    """Form fields of a search by uploaded image: paging, score cut-off and the filters."""

    # The same fields (default, bounds, description) as SearchOptions: pydantic takes a FieldInfo
    # as the default, which its typing (a Field() call is typed as the field's type) does not express.
    limit: int = SearchOptions.model_fields["limit"]  # type: ignore[assignment]
    offset: int = SearchOptions.model_fields["offset"]  # type: ignore[assignment]
    min_score: float | None = SearchOptions.model_fields["min_score"]  # type: ignore[assignment]

    def options(self) -> SearchOptions:
        filters = SearchFilters(**self.model_dump(include=set(SearchFilters.model_fields), exclude_none=True))
        return SearchOptions(limit=self.limit, offset=self.offset, min_score=self.min_score, filters=filters)


ReferenceImage = Annotated[ReceivedForm, Depends(multipart("file", many=False))]


@router.post(
    "/image",
    response_model=SearchOut,
    responses=_ERRORS,
    dependencies=[require_read],
    openapi_extra=form_body(
        ImageSearchFields, "file", many=False, file_help=f"The reference image (at most {MAX_IMAGE})."
    ),
    summary="Search with an uploaded image",
)
async def search_image(server: ServerDep, form: ReferenceImage) -> SearchOut:
    """Upload a reference image as multipart field `file`; the image is not added to the library.

    Over {max_image} is refused with 413 as soon as the upload passes the limit."""
    options = form.parse(ImageSearchFields).options()
    upload = form.files[0]
    assert upload.staged is not None  # a single file over the limit was refused while it streamed
    data = upload.staged.read_bytes()

    def by_image(**o: Any) -> list[SearchResult]:
        with server.decodes.slot():
            return server.search.similar_to_bytes(data, **o)

    return await run_in_threadpool(_run, server, QueryOut(kind="image", file_name=upload.name), options, by_image)
