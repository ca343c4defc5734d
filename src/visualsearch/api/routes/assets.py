"""Assets: upload, add by URL or server folder, list, get, delete, tag, thumbnails and originals."""

from __future__ import annotations

import os
import stat
from datetime import datetime
from pathlib import Path

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from ...catalog import AssetFilter
from ...errors import NotFound
from ...ingest.add import Incoming, Outcome, add_incoming, fetch_to_staging
from ...ingest.jobs import FOLDER, UPLOAD
from ...ingest.media import media_type
from ..errors import ApiError, details_of, error_body, status_of
from ..schemas import (AssetId, AssetOut, AssetPage, ErrorDetail, ErrorOut, FolderIn, JobOut, TagsIn, TagsOut, UploadItem,
                       UploadOut, UrlIn)
from ..security import require_admin, require_read, require_read_media
from ..uploads import receive_files

router = APIRouter(prefix="/api", tags=["assets"])

_AUTH = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 429: {"model": ErrorOut}}
_NOT_FOUND = {404: {"model": ErrorOut, "description": "No such asset."}}
_IMAGE_ERRORS = {409: {"model": ErrorOut, "description": "Identical image already in the library (`details.asset_id`)."},
                 413: {"model": ErrorOut, "description": "Over 40 MB."},
                 415: {"model": ErrorOut, "description": "Not an image."},
                 422: {"model": ErrorOut, "description": "Corrupt image or invalid request."}}


def _asset_or_404(server, asset_id: int):
    asset = server.library.catalog.get(asset_id)
    if asset is None:
        raise NotFound(f"no asset with id {asset_id}")
    return asset


def _parse_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isascii() or not cursor.isdigit() or len(cursor) > 19 or int(cursor) > 2**63 - 1:
        raise ApiError(422, "invalid_request", "cursor: not a cursor returned by this API")
    return int(cursor)


@router.get("/assets", response_model=AssetPage, responses=_AUTH, dependencies=[require_read],
            summary="List assets, newest first, with filters")
def list_assets(request: Request,
                limit: int = Query(50, ge=1, le=200), cursor: str | None = Query(None, max_length=32),
                offset: int = Query(0, ge=0, le=1_000_000),
                prefix: str | None = Query(None, max_length=4096, description="Source starts with (a folder)."),
                format: str | None = Query(None, max_length=16, examples=["JPEG"]),
                tag: str | None = Query(None, max_length=64),
                q: str | None = Query(None, max_length=200, description="Substring of name, source or a tag."),
                status: str | None = Query("indexed", pattern="^(indexed|failed|all)$"),
                added_after: datetime | None = None, added_before: datetime | None = None) -> AssetPage:
    server = request.app.state.server
    filters = AssetFilter(prefix=prefix, format=format, tag=tag, q=q, added_after=added_after,
                          added_before=added_before, status=None if status == "all" else status)
    limit = min(limit, server.settings.max_page_size)
    rows = server.library.catalog.list_assets(filters, limit=limit, offset=offset, before_id=_parse_cursor(cursor))
    total = server.library.catalog.count_assets(filters)
    next_cursor = str(rows[-1].id) if len(rows) == limit else None
    return AssetPage(items=server.assets_out(rows), total=total, limit=limit, next_cursor=next_cursor)


@router.get("/assets/{asset_id}", response_model=AssetOut, responses=_AUTH | _NOT_FOUND,
            dependencies=[require_read], summary="One asset's metadata")
def get_asset(request: Request, asset_id: AssetId) -> AssetOut:
    server = request.app.state.server
    asset = _asset_or_404(server, asset_id)
    return server.asset_out(asset, server.library.catalog.tags_of([asset.id])[asset.id])


@router.delete("/assets/{asset_id}", status_code=204, responses=_AUTH | _NOT_FOUND,
               dependencies=[require_admin], summary="Remove an asset from the library")
def delete_asset(request: Request, asset_id: AssetId) -> Response:
    """Forgets the asset and its vectors. Copies the library made (uploads, URLs) are deleted;
    files in indexed folders on the server are never touched."""
    server = request.app.state.server
    library = server.library
    asset = _asset_or_404(server, asset_id)
    library.catalog.remove([asset_id])
    if asset.path and asset.sha256 and library.catalog.find_by_sha256(asset.sha256) is None:
        library.media.discard_original(asset.path)
        library.media.thumbnail_path(asset.sha256).unlink(missing_ok=True)
    library.sync_indexes()
    return Response(status_code=204)


@router.put("/assets/{asset_id}/tags", response_model=TagsOut, responses=_AUTH | _NOT_FOUND,
            dependencies=[require_admin], summary="Replace an asset's tags")
def set_tags(request: Request, asset_id: AssetId, body: TagsIn) -> TagsOut:
    server = request.app.state.server
    _asset_or_404(server, asset_id)
    return TagsOut(asset_id=asset_id, tags=server.library.catalog.set_tags(asset_id, body.tags))


def _image_file(server, asset) -> Path:
    """The asset's file, only if it is still the regular file that was indexed.

    A file (or a folder above it) replaced by a symbolic link after indexing is
    not served: the link could point anywhere on the server.
    """
    if asset.status != "indexed":
        raise NotFound(f"asset {asset.id} has no image ({asset.error or asset.status})")
    path = Path(asset.path or asset.source)
    try:
        st = os.lstat(path)
    except OSError:
        raise NotFound(f"the file of asset {asset.id} is no longer on disk") from None
    if not stat.S_ISREG(st.st_mode) or os.path.realpath(path) != str(path):
        raise NotFound(f"the file of asset {asset.id} is no longer the file that was indexed")
    return path


@router.get("/assets/{asset_id}/thumbnail", response_class=FileResponse, dependencies=[require_read_media],
            responses=_AUTH | _NOT_FOUND | {200: {"content": {"image/webp": {}}, "description": "WebP, 256 px."}},
            summary="The asset's 256 px WebP thumbnail")
def thumbnail(request: Request, asset_id: AssetId, v: str | None = Query(None, max_length=64)):
    """Made once, then served from disk. With `v` (as in `thumbnail_url`) the response is cacheable forever."""
    server = request.app.state.server
    asset = _asset_or_404(server, asset_id)
    source = _image_file(server, asset)
    media = server.library.media
    path = media.thumbnail_path(asset.sha256)
    if not path.exists():
        with server.decodes.slot():
            path = media.thumbnail_from_file(asset.sha256, source, server.settings.decode_limits)
    etag = f'"{asset.sha256[:32]}"'
    versioned = v is not None and asset.sha256.startswith(v)
    headers = {"ETag": etag, "Cache-Control": "public, max-age=31536000, immutable" if versioned
               else "public, max-age=3600"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type="image/webp", headers=headers)


@router.get("/assets/{asset_id}/original", response_class=FileResponse, dependencies=[require_read_media],
            responses=_AUTH | _NOT_FOUND | {200: {"content": {"image/*": {}}, "description": "The image file."}},
            summary="The image itself")
def original(request: Request, asset_id: AssetId):
    server = request.app.state.server
    asset = _asset_or_404(server, asset_id)
    path = _image_file(server, asset)
    return FileResponse(path, media_type=media_type(path), filename=asset.name or path.name,
                        content_disposition_type="inline",
                        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"})


_UPLOAD_FORM = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["files"],
    "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                  "description": "One or more images, 40 MB each at most."},
        "tags": {"type": "string", "description": "Comma-separated tags for every uploaded image."},
        "background": {"type": "boolean", "description": "Index in a background job (always for large uploads)."},
        "duplicates": {"type": "string", "enum": ["warn", "reject", "allow"],
                       "description": "Near-duplicates of images already in the library: add and warn (default), "
                                      "refuse with 409 `near_duplicate`, or add without checking."}}}}}}}


def _upload_item(server, outcome) -> UploadItem:
    if outcome.ok:
        return UploadItem(name=outcome.name, status="created", asset=server.assets_out([outcome.asset])[0],
                          near_duplicates=outcome.extra.get("near_duplicates", []))
    err = outcome.error
    return UploadItem(name=outcome.name, status="error",
                      error=ErrorDetail(code=err.code, message=str(err), details=details_of(err)))


@router.post("/assets", response_model=UploadOut, status_code=201, openapi_extra=_UPLOAD_FORM,
             dependencies=[require_admin], summary="Upload images",
             responses=_AUTH | _IMAGE_ERRORS | {202: {"model": JobOut, "description": "Indexing in the background."}})
async def upload(request: Request):
    """Multipart field `files` (repeat it for several images). Each file gets its own result:
    created, or an error (unsupported, corrupt, too large, duplicate of an existing asset).
    A single-file upload that fails answers with that error's status. Uploads of more than
    8 files (or with `background=true`) return 202 and a job to follow."""
    server = request.app.state.server
    settings = server.settings
    job_id = server.jobs.new_id()
    staging = server.jobs.staging_folder(job_id)
    form = await receive_files(request, server.library.media, file_field="files",
                               max_file_bytes=settings.max_image_bytes, max_files=settings.max_files_per_upload,
                               reject_oversize=False, staging=staging)
    if not form.files:
        raise ApiError(422, "invalid_request", "files: the multipart body has no 'files' field")
    tags = tuple(t for t in form.fields.get("tags", "").split(",") if t.strip())
    background = form.fields.get("background", "").lower() in ("1", "true", "yes", "on")
    policy = form.fields.get("duplicates") or None
    if policy not in (None, "warn", "reject", "allow"):
        for f in form.files:
            if f.staged is not None:
                f.staged.unlink(missing_ok=True)
        raise ApiError(422, "invalid_request", "duplicates: one of warn, reject, allow")
    staged = [f for f in form.files if f.error is None]
    early = [f for f in form.files if f.error is not None]
    if background or len(form.files) > settings.sync_upload_files:
        job = server.jobs.submit(UPLOAD, {"files": [{"staged": str(f.staged), "name": f.name} for f in staged],
                                          "tags": list(tags), "duplicates": policy,
                                          "rejected": [{"name": f.name, "error": str(f.error)} for f in early]},
                                 total=len(staged), job_id=job_id)
        return JSONResponse(server.job_out(job).model_dump(mode="json"), status_code=202,
                            headers={"Location": f"/api/jobs/{job.id}"})
    def add() -> list[Outcome]:
        with server.decodes.slot():  # one slot per request: its files are decoded one after another
            return add_incoming(server.library, items, near_duplicates=policy)

    try:
        items = [Incoming(f.staged, f.name, tags=tags) for f in staged]
        outcomes = await run_in_threadpool(add)
    finally:
        for f in staged:
            f.staged.unlink(missing_ok=True)
        if staging.is_dir() and not any(staging.iterdir()):
            staging.rmdir()
    pending = iter(outcomes)
    ordered = [Outcome(f.name, error=f.error) if f.error is not None else next(pending) for f in form.files]
    if len(ordered) == 1 and not ordered[0].ok:
        err = ordered[0].error
        return JSONResponse(error_body(err.code, str(err), details_of(err)), status_code=status_of(err))
    results = [_upload_item(server, o) for o in ordered]
    created = sum(r.status == "created" for r in results)
    body = UploadOut(items=results, created=created, failed=len(results) - created)
    return JSONResponse(body.model_dump(mode="json"), status_code=201 if created else 200)


@router.post("/assets/url", response_model=AssetOut, status_code=201, dependencies=[require_admin],
             responses=_AUTH | _IMAGE_ERRORS | {400: {"model": ErrorOut, "description": "URL refused (`details.reason`)."}},
             summary="Add the image at a URL")
def add_url(request: Request, body: UrlIn) -> AssetOut:
    """Fetched with the hardened fetcher: http/https only, private and loopback addresses refused
    (also after redirects), 40 MB at most, must be an image."""
    server = request.app.state.server
    with server.fetches.slot():
        incoming = fetch_to_staging(server.library, body.url)
    incoming.tags = tuple(body.tags)
    with server.decodes.slot():
        [outcome] = add_incoming(server.library, [incoming])
    if not outcome.ok:
        raise outcome.error
    return server.assets_out([outcome.asset])[0]


@router.post("/folders", response_model=JobOut, status_code=202, dependencies=[require_admin],
             responses=_AUTH | {404: {"model": ErrorOut, "description": "No such folder on the server."}},
             summary="Index a folder on the server (background job)")
def add_folder(request: Request, body: FolderIn):
    """Only folders below the server's folder roots (default: the user's Pictures folder; see
    `--folder-root` / VISUALSEARCH_FOLDER_ROOTS). A path outside them is refused with 403 whether it
    exists or not, so the endpoint cannot be used to probe the server's file system."""
    server = request.app.state.server
    path = Path(body.path).expanduser()
    if "\x00" in body.path or not path.is_absolute():
        raise ApiError(422, "invalid_request", "path: give an absolute folder path on the server")
    path = Path(os.path.realpath(path))  # symbolic links resolved before the root check
    roots = server.settings.folder_roots
    if not any(path == r or r in path.parents for r in roots):
        allowed = ", ".join(map(str, roots)) or "none configured"
        raise ApiError(403, "folder_not_allowed", f"{body.path} is outside the folders this server may index "
                                                  f"({allowed}; see `serve --folder-root` or VISUALSEARCH_FOLDER_ROOTS)")
    if not path.is_dir():
        raise NotFound(f"no such folder on the server: {body.path}")
    job = server.jobs.submit(FOLDER, {"path": str(path), "prune": body.prune})
    return JSONResponse(server.job_out(job).model_dump(mode="json"), status_code=202,
                        headers={"Location": f"/api/jobs/{job.id}"})
