"""Duplicate groups, look-alike groups, moving extras to the trash, and "is this image already here?"."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ...duplicates import DEFAULT_GROUP_THRESHOLD, DEFAULT_THRESHOLD, DuplicateGroup, Member
from ...ingest.decode import decode_bytes
from ...ingest.media import media_type
from ..deps import AssetsDep, DuplicatesDep, ServerDep
from ..schemas import (
    AUTH_ERRORS,
    AssetId,
    AssetOut,
    CheckOut,
    ErrorOut,
    GroupOut,
    GroupPage,
    MatchOut,
    RestoredOut,
    RestoreOut,
    TrashBatchName,
    TrashBatchOut,
    TrashedOut,
    TrashFileOut,
    TrashIn,
    TrashListOut,
    TrashOut,
)
from ..security import require_admin, require_read, require_read_media
from ..uploads import MAX_IMAGE, ReceivedForm, form_body, multipart

router = APIRouter(prefix="/api", tags=["duplicates"])


def _page(assets: AssetsDep, groups: list[DuplicateGroup], limit: int, offset: int, threshold: float) -> GroupPage:
    chosen = groups[offset : offset + limit]
    tagged = {a.id: a for a in assets.with_tags([m.asset for g in chosen for m in [g.keeper, *g.others]])}

    def member(m: Member) -> Member:
        return replace(m, asset=tagged[m.asset.id])

    items = [
        GroupOut.model_validate(replace(g, keeper=member(g.keeper), others=[member(m) for m in g.others]))
        for g in chosen
    ]
    return GroupPage(
        items=items,
        total=len(groups),
        limit=limit,
        offset=offset,
        threshold=threshold,
        extras=sum(len(g.others) for g in groups),
    )


#: Seconds a request waits for groups being worked out (in a thread of their own) before answering
#: 503 with how far the check is; asking again picks up the same work.
GROUPS_WAIT = 5.0
#: While the groups are being worked out (the copy check after indexing): 503, Retry-After, and how far.
CHECKING: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorOut,
        "description": "`checking_copies`: the library is being checked for copies; "
        "`details` has `done` and `total` candidate pairs, `Retry-After` says when to ask again",
    }
}


@router.get(
    "/duplicates",
    response_model=GroupPage,
    responses=AUTH_ERRORS | CHECKING,
    dependencies=[require_read],
    summary="Groups of copies, with the image to keep in each",
)
def duplicates(
    service: DuplicatesDep,
    assets: AssetsDep,
    threshold: float = Query(DEFAULT_THRESHOLD, ge=0.5, le=1.0),
    limit: int = Query(20, ge=1, le=200),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> GroupPage:
    """Exact copies (same bytes, or same pixels and alpha in another file) and near-duplicates (the
    same picture resized, re-encoded, cropped, lightly graded, letterboxed, bannered, in another aspect
    version or in a screenshot), largest groups first. Pairs at `threshold` (cosine similarity of the
    visual vectors) are candidates; each is confirmed by comparing the aligned pixels in colour, so
    look-alikes (colour or light/dark variants, another letter or hour) are not listed here but in
    `/api/groups`. Each member says its tier and similarity; `keeper_reason` says why the keeper won.
    Groups not ready within a few seconds (the `copies` job after indexing still running, or a first
    run on a big library) are answered 503 `checking_copies` with the progress and `Retry-After`; the
    work goes on, and asking again picks it up."""
    return _page(assets, service.duplicates(threshold, wait=GROUPS_WAIT), limit, offset, threshold)


@router.get(
    "/groups",
    response_model=GroupPage,
    responses=AUTH_ERRORS | CHECKING,
    dependencies=[require_read],
    summary="Groups of look-alike images",
)
def lookalikes(
    service: DuplicatesDep,
    assets: AssetsDep,
    threshold: float = Query(DEFAULT_GROUP_THRESHOLD, ge=0.3, le=1.0),
    min_size: int = Query(2, ge=2, le=1000),
    limit: int = Query(20, ge=1, le=200),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> GroupPage:
    """Look-alikes: clusters of different pictures that look alike (a photo series, the same product
    from several angles, colour or light/dark variants), joined through mutual nearest neighbours at
    `threshold`. Copies are not look-alikes: each picture appears once, as the keeper of its copies."""
    return _page(assets, service.lookalikes(threshold, min_size, wait=GROUPS_WAIT), limit, offset, threshold)


@router.post(
    "/duplicates/trash",
    response_model=TrashOut,
    dependencies=[require_admin],
    responses=AUTH_ERRORS | {404: {"model": ErrorOut}},
    summary="Move images to the library's trash folder",
)
def trash(service: DuplicatesDep, body: TrashIn) -> TrashOut:
    """The files are moved (never deleted) to `<library>/trash/<batch>/` and logged;
    `POST /api/trash/{batch}/restore` (or `visualsearch trash restore <batch>`) puts them back
    and indexes them again."""
    batch, moved = service.trash(body.asset_ids)
    return TrashOut(batch=batch, moved=[TrashedOut.model_validate(e) for e in moved])


@router.get(
    "/trash",
    response_model=TrashListOut,
    responses=AUTH_ERRORS,
    dependencies=[require_read],
    summary="What was moved to the trash, by batch",
)
def trash_list(
    service: DuplicatesDep, limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=1_000_000)
) -> TrashListOut:
    """Every batch `POST /api/duplicates/trash` (or `visualsearch duplicates --delete-extras`) made,
    newest first: when, its files (where each was, whether it is still in the trash) and whether it
    can be restored."""
    batches = service.trash_batches()
    items = [
        TrashBatchOut(
            batch=b.batch,
            at=datetime.fromtimestamp(b.at, UTC),
            count=len(b.files),
            restorable=b.restorable,
            files=[
                TrashFileOut(
                    asset_id=e.asset_id,
                    name=e.name,
                    original=e.original,
                    in_trash=there,
                    thumbnail_url=f"/api/trash/{b.batch}/files/{e.asset_id}/thumbnail",
                )
                for e, there in zip(b.files, b.in_trash, strict=True)
            ],
        )
        for b in batches[offset : offset + limit]
    ]
    return TrashListOut(
        items=items, total=len(batches), in_trash=sum(sum(b.in_trash) for b in batches), limit=limit, offset=offset
    )


@router.get(
    "/trash/{batch}/files/{asset_id}/thumbnail",
    response_class=FileResponse,
    dependencies=[require_read_media],
    responses=AUTH_ERRORS
    | {404: {"model": ErrorOut}, 200: {"content": {"image/jpeg": {}, "image/webp": {}}, "description": "256 px."}},
    summary="The preview of an image in the trash",
)
def trash_thumbnail(server: ServerDep, batch: TrashBatchName, asset_id: AssetId) -> Response:
    """What a trashed file looks like, for the Trash tab: the preview made when it was indexed, or
    one made now from the file in the trash. 404 when the batch has no such image, or the file has
    left the trash and no preview is kept."""
    path = server.duplicates.trash_preview(batch, asset_id, slot=server.decodes.slot)
    return FileResponse(path, media_type=media_type(path), headers={"Cache-Control": "private, max-age=3600"})


@router.post(
    "/trash/{batch}/restore",
    response_model=RestoreOut,
    dependencies=[require_admin],
    responses=AUTH_ERRORS | {400: {"model": ErrorOut}, 404: {"model": ErrorOut}},
    summary="Put a trash batch back and index it again",
)
def restore(service: DuplicatesDep, assets: AssetsDep, batch: TrashBatchName) -> RestoreOut:
    """Moves the batch's files back where they were (the library's own copies of uploads come back
    as uploads) and indexes them again; each restored image gets a new id. 404 when the batch is
    unknown or has nothing left in the trash; 400 when a file has reappeared where one would go."""
    restored = service.restore_batch(batch)
    tagged = {a.id: a for a in assets.with_tags([r.asset for r in restored if r.asset is not None])}
    return RestoreOut(
        batch=batch,
        restored=[
            RestoredOut(
                asset_id=r.entry.asset_id,
                name=r.entry.name,
                original=r.entry.original,
                asset=AssetOut.model_validate(tagged[r.asset.id]) if r.asset is not None else None,
            )
            for r in restored
        ],
    )


class CheckFields(BaseModel):
    threshold: float = Field(
        DEFAULT_THRESHOLD, ge=0.5, le=1.0, description="Similarity from which an image counts as a near-duplicate."
    )


ImageToCheck = Annotated[ReceivedForm, Depends(multipart("file", many=False))]


@router.post(
    "/duplicates/check",
    response_model=CheckOut,
    dependencies=[require_read],
    openapi_extra=form_body(CheckFields, "file", many=False, file_help=f"The image to check ({MAX_IMAGE} at most)."),
    responses=AUTH_ERRORS | {413: {"model": ErrorOut}, 415: {"model": ErrorOut}, 422: {"model": ErrorOut}},
    summary="Is this image (or a copy of it) already in the library?",
)
async def check(server: ServerDep, form: ImageToCheck) -> CheckOut:
    threshold = form.parse(CheckFields).threshold
    staged = form.files[0].staged
    assert staged is not None  # a single file over the limit was refused while it streamed
    data = staged.read_bytes()

    def run() -> CheckOut:
        with server.decodes.slot():
            decoded = decode_bytes(data, **server.settings.decode_limits)
        matches = server.duplicates.check(decoded, threshold)
        tagged = server.assets.with_tags([m.asset for m in matches])
        return CheckOut(
            duplicate=bool(matches),
            matches=[MatchOut.model_validate(replace(m, asset=a)) for m, a in zip(matches, tagged, strict=True)],
        )

    return await run_in_threadpool(run)
