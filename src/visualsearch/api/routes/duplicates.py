"""Duplicate groups, look-alike groups, moving extras to the trash, and "is this image already here?"."""

from __future__ import annotations

import threading

import numpy as np
from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from ...duplicates import (DEFAULT_GROUP_THRESHOLD, DEFAULT_THRESHOLD, Trash, find_duplicates, find_lookalikes,
                           matches_for)
from ...ingest.decode import decode_bytes
from ..errors import ApiError
from ..schemas import CheckOut, ErrorOut, GroupOut, GroupPage, MatchOut, MemberOut, TrashedOut, TrashIn, TrashOut
from ..security import require_admin, require_read
from ..uploads import receive_files

router = APIRouter(prefix="/api", tags=["duplicates"])
_AUTH = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 429: {"model": ErrorOut}}


class GroupCache:
    """Groups are recomputed only when the index changed (new generation) or the threshold differs."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[tuple, list] = {}

    def get(self, library, kind: str, threshold: float):
        key = (kind, round(threshold, 4), library.similarity_index.generation())
        with self._lock:
            if key in self._entries:
                return self._entries[key]
        finder = find_duplicates if kind == "duplicates" else find_lookalikes
        groups = finder(library, threshold=threshold)
        with self._lock:
            self._entries = {k: v for k, v in self._entries.items() if k[2] == key[2]}
            self._entries[key] = groups
        return groups


def _page(server, groups, limit: int, offset: int, threshold: float) -> GroupPage:
    chosen = groups[offset:offset + limit]
    assets = server.assets_out([m.asset for g in chosen for m in [g.keeper, *g.others]])
    it = iter(assets)
    items = []
    for g in chosen:
        keeper = MemberOut(asset=next(it), similarity=1.0, kind=None)
        others = [MemberOut(asset=next(it), similarity=m.similarity, kind=m.kind) for m in g.others]
        items.append(GroupOut(keeper=keeper, others=others, size=g.size))
    return GroupPage(items=items, total=len(groups), limit=limit, offset=offset, threshold=threshold,
                     extras=sum(len(g.others) for g in groups))


def _cache(server) -> GroupCache:
    cache = getattr(server, "group_cache", None)
    if cache is None:
        cache = server.group_cache = GroupCache()
    return cache


@router.get("/duplicates", response_model=GroupPage, responses=_AUTH, dependencies=[require_read],
            summary="Groups of copies, with the image to keep in each")
def duplicates(request: Request, threshold: float = Query(DEFAULT_THRESHOLD, ge=0.5, le=1.0),
               limit: int = Query(20, ge=1, le=200), offset: int = Query(0, ge=0, le=1_000_000)) -> GroupPage:
    """Exact copies (same bytes, or same pixels in another file) and near-duplicates (resized,
    re-encoded, cropped, colour-shifted... copies) at `threshold`, largest groups first.
    Each member says how it matches the keeper and its similarity."""
    server = request.app.state.server
    groups = _cache(server).get(server.library, "duplicates", threshold)
    return _page(server, groups, limit, offset, threshold)


@router.get("/groups", response_model=GroupPage, responses=_AUTH, dependencies=[require_read],
            summary="Groups of look-alike images")
def lookalikes(request: Request, threshold: float = Query(DEFAULT_GROUP_THRESHOLD, ge=0.3, le=1.0),
               min_size: int = Query(2, ge=2, le=1000),
               limit: int = Query(20, ge=1, le=200), offset: int = Query(0, ge=0, le=1_000_000)) -> GroupPage:
    """Clusters of visually similar images that are not necessarily copies (a photo series, the same
    product from several angles), joined through mutual nearest neighbours at `threshold`."""
    server = request.app.state.server
    groups = [g for g in _cache(server).get(server.library, "groups", threshold) if g.size >= min_size]
    return _page(server, groups, limit, offset, threshold)


@router.post("/duplicates/trash", response_model=TrashOut, dependencies=[require_admin],
             responses=_AUTH | {404: {"model": ErrorOut}}, summary="Move images to the library's trash folder")
def trash(request: Request, body: TrashIn) -> TrashOut:
    """The files are moved (never deleted) to `<library>/trash/<batch>/` and logged;
    `visualsearch trash restore <batch>` puts them back and indexes them again."""
    server = request.app.state.server
    batch, moved = Trash(server.library).move(list(dict.fromkeys(body.asset_ids)))
    return TrashOut(batch=batch, moved=[TrashedOut(asset_id=e.asset_id, name=e.name, original=e.original,
                                                   trashed=e.trashed) for e in moved])


_CHECK_FORM = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary", "description": "The image to check (40 MB at most)."},
                   "threshold": {"type": "number", "minimum": 0.5, "maximum": 1.0}}}}}}}


@router.post("/duplicates/check", response_model=CheckOut, dependencies=[require_read], openapi_extra=_CHECK_FORM,
             responses=_AUTH | {413: {"model": ErrorOut}, 415: {"model": ErrorOut}, 422: {"model": ErrorOut}},
             summary="Is this image (or a copy of it) already in the library?")
async def check(request: Request) -> CheckOut:
    server = request.app.state.server
    settings = server.settings
    form = await receive_files(request, server.library.media, file_field="file",
                               max_file_bytes=settings.max_image_bytes, max_files=1, reject_oversize=True)
    try:
        if not form.files:
            raise ApiError(422, "invalid_request", "file: the multipart body has no 'file' field")
        try:
            threshold = float(form.fields.get("threshold", DEFAULT_THRESHOLD))
        except ValueError:
            threshold = float("nan")
        if not 0.5 <= threshold <= 1.0:
            raise ApiError(422, "invalid_request", "threshold: a number between 0.5 and 1")
        data = form.files[0].staged.read_bytes()

        def run() -> CheckOut:
            library = server.library
            with server.decodes.slot():
                decoded = decode_bytes(data, **settings.decode_limits)
            embedder = library.embedder
            vector = embedder.encode_images([decoded.image])[embedder.similarity_space][0]
            matches = matches_for(library, decoded.sha256, decoded.pixel_sha256, decoded.phash,
                                  np.asarray(vector), threshold=threshold)
            assets = server.assets_out([m.asset for m in matches])
            return CheckOut(duplicate=bool(matches), matches=[MatchOut(asset=a, similarity=m.similarity, kind=m.kind)
                                                              for m, a in zip(matches, assets)])

        return await run_in_threadpool(run)
    finally:
        for f in form.files:
            if f.staged is not None:
                f.staged.unlink(missing_ok=True)
