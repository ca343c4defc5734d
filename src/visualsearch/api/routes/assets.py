"""Assets: upload, add by URL or server folder, list, get, delete, tag, thumbnails and originals."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ...catalog import Asset, AssetFilter
from ...errors import NotFound
from ...ingest.media import media_type
from ...services import Incoming, Outcome, add_incoming, fetch_to_staging
from ...services.jobs import FOLDER, UPLOAD
from ..deps import AssetsDep, JobsDep, ServerDep, SettingsDep
from ..errors import ApiError, details_of, error_body, status_of
from ..schemas import (
    AUTH_ERRORS,
    AssetId,
    AssetOut,
    AssetPage,
    ErrorDetail,
    ErrorOut,
    FolderIn,
    JobOut,
    TagsIn,
    TagsOut,
    UploadItem,
    UploadOut,
    UrlIn,
)
from ..security import require_admin, require_read, require_read_media
from ..uploads import MAX_IMAGE, ReceivedForm, form_body, multipart

router = APIRouter(prefix="/api", tags=["assets"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "No such asset."}}
_IMAGE_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "Identical image already in the library (`details.asset_id`)."},
    413: {"model": ErrorOut, "description": f"Over {MAX_IMAGE}."},
    415: {"model": ErrorOut, "description": "Not an image."},
    422: {"model": ErrorOut, "description": "Corrupt image or invalid request."},
}


def _parse_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isascii() or not cursor.isdigit() or len(cursor) > 19 or int(cursor) > 2**63 - 1:
        raise ApiError(422, "invalid_request", "cursor: not a cursor returned by this API")
    return int(cursor)


@router.get(
    "/assets",
    response_model=AssetPage,
    responses=AUTH_ERRORS,
    dependencies=[require_read],
    summary="List assets, newest first, with filters",
)
def list_assets(
    assets: AssetsDep,
    settings: SettingsDep,
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = Query(None, max_length=32),
    offset: int = Query(0, ge=0, le=1_000_000),
    prefix: str | None = Query(None, max_length=4096, description="Source starts with (a folder)."),
    format: str | None = Query(None, max_length=16, examples=["JPEG"]),
    tag: str | None = Query(None, max_length=64),
    q: str | None = Query(None, max_length=200, description="Substring of name, source or a tag."),
    status: str | None = Query("indexed", pattern="^(indexed|failed|all)$"),
    added_after: datetime | None = None,
    added_before: datetime | None = None,
) -> AssetPage:
    filters = AssetFilter(
        prefix=prefix,
        format=format,
        tag=tag,
        q=q,
        added_after=added_after,
        added_before=added_before,
        status=None if status == "all" else status,
    )
    limit = min(limit, settings.max_page_size)
    rows, total = assets.page(filters, limit=limit, offset=offset, before_id=_parse_cursor(cursor))
    next_cursor = str(rows[-1].id) if len(rows) == limit else None
    return AssetPage(
        items=[AssetOut.model_validate(a) for a in rows], total=total, limit=limit, next_cursor=next_cursor
    )


@router.get(
    "/assets/{asset_id}",
    response_model=AssetOut,
    responses=AUTH_ERRORS | _NOT_FOUND,
    dependencies=[require_read],
    summary="One asset's metadata",
)
def get_asset(assets: AssetsDep, asset_id: AssetId) -> AssetOut:
    return AssetOut.model_validate(assets.get(asset_id))


@router.delete(
    "/assets/{asset_id}",
    status_code=204,
    responses=AUTH_ERRORS | _NOT_FOUND,
    dependencies=[require_admin],
    summary="Remove an asset from the library",
)
def delete_asset(assets: AssetsDep, asset_id: AssetId) -> Response:
    """Forgets the asset and its vectors. Copies the library made (uploads, URLs) are deleted;
    files in indexed folders on the server are never touched."""
    assets.delete(asset_id)
    return Response(status_code=204)


@router.put(
    "/assets/{asset_id}/tags",
    response_model=TagsOut,
    responses=AUTH_ERRORS | _NOT_FOUND,
    dependencies=[require_admin],
    summary="Replace an asset's tags",
)
def set_tags(assets: AssetsDep, asset_id: AssetId, body: TagsIn) -> TagsOut:
    return TagsOut(asset_id=asset_id, tags=assets.set_tags(asset_id, body.tags))


@router.get(
    "/assets/{asset_id}/thumbnail",
    response_class=FileResponse,
    dependencies=[require_read_media],
    responses=AUTH_ERRORS
    | _NOT_FOUND
    | {
        200: {
            "content": {"image/jpeg": {}, "image/webp": {}},
            "description": "JPEG (WebP if made by an earlier version), 256 px.",
        }
    },
    summary="The asset's 256 px thumbnail",
)
def thumbnail(
    request: Request, server: ServerDep, asset_id: AssetId, v: str | None = Query(None, max_length=64)
) -> Response:
    """Made once, then served from disk. With `v` (as in `thumbnail_url`) the response is cacheable forever."""
    asset = server.assets.get(asset_id)
    path = server.assets.thumbnail(asset, slot=server.decodes.slot)
    sha = asset.sha256 or ""
    etag = f'"{sha[:32]}"'
    versioned = v is not None and sha.startswith(v)
    headers = {
        "ETag": etag,
        "Cache-Control": "public, max-age=31536000, immutable" if versioned else "public, max-age=3600",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=media_type(path), headers=headers)


@router.get(
    "/assets/{asset_id}/original",
    response_class=FileResponse,
    dependencies=[require_read_media],
    responses=AUTH_ERRORS | _NOT_FOUND | {200: {"content": {"image/*": {}}, "description": "The image file."}},
    summary="The image itself",
)
def original(assets: AssetsDep, asset_id: AssetId) -> FileResponse:
    asset = assets.get(asset_id)
    path = assets.image_file(asset)
    return FileResponse(
        path,
        media_type=media_type(path),
        filename=asset.name or path.name,
        content_disposition_type="inline",
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


class UploadFields(BaseModel):
    """The form fields of an upload besides the files."""

    tags: str = Field("", max_length=10_000, description="Comma-separated tags for every uploaded image.")
    background: bool = Field(False, description="Index in a background job (always for large uploads).")
    duplicates: Literal["warn", "reject", "allow"] | None = Field(
        None,
        description="Near-duplicates of images already in the library: add and warn (default), "
        "refuse with 409 `near_duplicate`, or add without checking.",
    )


UploadedFiles = Annotated[ReceivedForm, Depends(multipart("files", many=True))]


def _upload_item(outcome: Outcome, tagged: dict[int, Asset]) -> UploadItem:
    if outcome.asset is not None:
        return UploadItem(
            name=outcome.name,
            status="created",
            asset=AssetOut.model_validate(tagged[outcome.asset.id]),
            near_duplicates=outcome.extra.get("near_duplicates", []),
        )
    err = outcome.error
    assert err is not None
    return UploadItem(
        name=outcome.name, status="error", error=ErrorDetail(code=err.code, message=str(err), details=details_of(err))
    )


def _accepted(job: Any) -> JSONResponse:
    return JSONResponse(
        JobOut.model_validate(job).model_dump(mode="json"), status_code=202, headers={"Location": f"/api/jobs/{job.id}"}
    )


@router.post(
    "/assets",
    response_model=UploadOut,
    status_code=201,
    dependencies=[require_admin],
    openapi_extra=form_body(
        UploadFields, "files", many=True, file_help=f"One or more images, {MAX_IMAGE} each at most."
    ),
    summary="Upload images",
    responses=AUTH_ERRORS | _IMAGE_ERRORS | {202: {"model": JobOut, "description": "Indexing in the background."}},
)
async def upload(server: ServerDep, form: UploadedFiles) -> JSONResponse:
    """Multipart field `files` (repeat it for several images). Each file gets its own result:
    created, or an error (unsupported, corrupt, too large, duplicate of an existing asset).
    A single-file upload that fails answers with that error's status. Uploads of more than
    8 files (or with `background=true`) return 202 and a job to follow."""
    fields = form.parse(UploadFields)
    tags = tuple(t for t in fields.tags.split(",") if t.strip())
    staged = [f for f in form.files if f.error is None]
    early = [f for f in form.files if f.error is not None]
    if fields.background or len(form.files) > server.settings.sync_upload_files:
        job = server.jobs.submit(
            UPLOAD,
            {
                "files": [{"staged": str(f.staged), "name": f.name} for f in staged],
                "tags": list(tags),
                "duplicates": fields.duplicates,
                "rejected": [{"name": f.name, "error": str(f.error)} for f in early],
            },
            total=len(staged),
            job_id=form.job_id,
        )
        form.handed_over = True
        return _accepted(job)
    items = [Incoming(f.staged, f.name, tags=tags) for f in staged if f.staged is not None]

    def add() -> list[Outcome]:
        with server.decodes.slot():  # one slot per request: its files are decoded one after another
            # Words in the pictures (OCR on) are read by a background job, not while the request waits.
            outcomes = add_incoming(server.library, items, near_duplicates=fields.duplicates, read_text=False)
        if any(o.asset is not None for o in outcomes):
            server.jobs.ensure_text_reading()
        return outcomes

    pending = iter(await run_in_threadpool(add))
    ordered = [Outcome(f.name, error=f.error) if f.error is not None else next(pending) for f in form.files]
    if len(ordered) == 1 and ordered[0].error is not None:
        err = ordered[0].error
        return JSONResponse(error_body(err.code, str(err), details_of(err)), status_code=status_of(err))
    tagged = {a.id: a for a in server.assets.with_tags([o.asset for o in ordered if o.asset is not None])}
    results = [_upload_item(o, tagged) for o in ordered]
    created = sum(r.status == "created" for r in results)
    body = UploadOut(items=results, created=created, failed=len(results) - created)
    return JSONResponse(body.model_dump(mode="json"), status_code=201 if created else 200)


@router.post(
    "/assets/url",
    response_model=AssetOut,
    status_code=201,
    dependencies=[require_admin],
    responses=AUTH_ERRORS
    | _IMAGE_ERRORS
    | {400: {"model": ErrorOut, "description": "URL refused (`details.reason`)."}},
    summary="Add the image at a URL",
)
def add_url(server: ServerDep, body: UrlIn) -> AssetOut:
    """Fetched with the hardened fetcher: http/https only, private and loopback addresses refused
    (also after redirects), {max_image} at most, must be an image."""
    with server.fetches.slot():
        incoming = fetch_to_staging(server.library, body.url)
    incoming.tags = tuple(body.tags)
    with server.decodes.slot():
        [outcome] = add_incoming(server.library, [incoming], read_text=False)
    if outcome.error is not None:
        raise outcome.error
    server.jobs.ensure_text_reading()  # its words (OCR on) are read in the background
    assert outcome.asset is not None
    return AssetOut.model_validate(server.assets.with_tags([outcome.asset])[0])


@router.post(
    "/folders",
    response_model=JobOut,
    status_code=202,
    dependencies=[require_admin],
    responses=AUTH_ERRORS | {404: {"model": ErrorOut, "description": "No such folder on the server."}},
    summary="Index a folder on the server (background job)",
)
def add_folder(settings: SettingsDep, jobs: JobsDep, body: FolderIn) -> JSONResponse:
    """Only folders below the server's folder roots (default: the user's Pictures folder; see
    `--folder-root` / VISUALSEARCH_FOLDER_ROOTS). A path outside them is refused with 403 whether it
    exists or not, so the endpoint cannot be used to probe the server's file system."""
    path = Path(body.path).expanduser()
    if "\x00" in body.path or not path.is_absolute():
        raise ApiError(422, "invalid_request", "path: give an absolute folder path on the server")
    path = Path(os.path.realpath(path))  # symbolic links resolved before the root check
    roots = settings.folder_roots
    if not any(path == r or r in path.parents for r in roots):
        allowed = ", ".join(map(str, roots)) or "none configured"
        raise ApiError(
            403,
            "folder_not_allowed",
            f"{body.path} is outside the folders this server may index "
            f"({allowed}; see `serve --folder-root` or VISUALSEARCH_FOLDER_ROOTS)",
        )
    if not path.is_dir():
        raise NotFound(f"no such folder on the server: {body.path}")
    return _accepted(jobs.submit(FOLDER, {"path": str(path), "prune": body.prune}))
