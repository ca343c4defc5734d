"""Receiving multipart uploads: each file is counted as it streams and staged on disk.

Starlette's multipart parser does the parsing; this subclass stops a file the
moment it passes the per-file limit, instead of letting it be spooled whole.
Routes take uploads through one dependency, :func:`multipart`: it streams,
caps (limits from the settings), validates the form fields with a pydantic
model, documents the form in OpenAPI from that same model, and removes every
staged file when the request is over unless a background job took them.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from ..config import megabytes
from ..errors import ImageTooLarge, VisualSearchError
from ..ingest.media import MediaStore
from .deps import ServerDep
from .errors import ApiError

#: Written in form and error descriptions; the app fills in its own limit (see :func:`fill_limits`).
MAX_IMAGE = "{max_image}"


class _LimitedParser(MultiPartParser):
    def __init__(
        self,
        headers: Headers,
        stream: AsyncGenerator[bytes, None],
        *,
        max_file_bytes: int,
        reject_oversize: bool,
        **limits: Any,  # MultiPartParser's own: max_files, max_fields, max_part_size
    ):
        super().__init__(headers, stream, **limits)
        self.max_file_bytes = max_file_bytes
        self.reject_oversize = reject_oversize
        self.oversize: set[int] = set()
        self._received: dict[int, int] = {}

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._current_part
        if part.file is not None:
            key = id(part.file)
            if key in self.oversize:
                return  # drop the rest of a file already known to be too large
            self._received[key] = self._received.get(key, 0) + (end - start)
            if self._received[key] > self.max_file_bytes:
                if self.reject_oversize:
                    raise ImageTooLarge(
                        f"{part.file.filename or 'the file'} is larger than the limit of "
                        f"{megabytes(self.max_file_bytes)}"
                    )
                self.oversize.add(key)
                return
        super().on_part_data(data, start, end)


@dataclass
class ReceivedFile:
    name: str
    staged: Path | None
    error: VisualSearchError | None = None


#: A pydantic model class the form's fields are validated with.
BaseModelT = TypeVar("BaseModelT", bound=BaseModel)


@dataclass
class ReceivedForm:
    files: list[ReceivedFile]
    fields: dict[str, str]
    #: The folder the files were staged in, when it is the request's own (uploads that may become a job).
    staging: Path | None = None
    job_id: str | None = None
    #: Set when a background job took the staged files over: they are then the job's to remove.
    handed_over: bool = field(default=False, repr=False)

    def discard(self) -> None:
        """Remove the staged files (and the request's own staging folder when it is empty)."""
        if self.handed_over:
            return
        for f in self.files:
            if f.staged is not None:
                f.staged.unlink(missing_ok=True)
        if self.staging is not None and self.staging.is_dir() and not any(self.staging.iterdir()):
            self.staging.rmdir()

    def parse(self, model: type[BaseModelT]) -> BaseModelT:
        """The form's fields validated by ``model``; 422 ``invalid_request`` naming the field otherwise."""
        try:
            return model.model_validate({k: v for k, v in self.fields.items() if v != ""})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ApiError(422, "invalid_request", f"{where}: {err['msg']}" if where else err["msg"]) from exc


_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]+")


def clean_name(filename: str | None) -> str:
    """A display name from a client-supplied file name: no paths, no control characters."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip()[:255]
    return name or "upload"


async def receive_files(
    request: Request,
    media: MediaStore,
    *,
    file_field: str,
    max_file_bytes: int,
    max_files: int,
    reject_oversize: bool,
    staging: Path | None = None,
) -> ReceivedForm:
    """Parse a multipart body; stage every file under ``staging`` (or the default staging folder)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(
            415, "unsupported_media_type", f"send the image as multipart/form-data with a {file_field!r} file field"
        )
    parser = _LimitedParser(
        request.headers,
        request.stream(),
        max_files=max_files,
        max_fields=50,
        max_part_size=64 * 1024,
        max_file_bytes=max_file_bytes,
        reject_oversize=reject_oversize,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ApiError(400, "invalid_multipart", str(exc.message)) from exc
    files: list[ReceivedFile] = []
    fields: dict[str, str] = {}
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key != file_field:
                    continue
                name = clean_name(value.filename)
                if id(value) in parser.oversize:
                    files.append(
                        ReceivedFile(
                            name, None, ImageTooLarge(f"file is larger than the limit of {megabytes(max_file_bytes)}")
                        )
                    )
                    continue
                staged = await run_in_threadpool(_stage, media, value, max_file_bytes, staging)
                files.append(ReceivedFile(name, staged))
            else:
                fields[key] = value
    except BaseException:
        for f in files:
            if f.staged is not None:
                f.staged.unlink(missing_ok=True)
        raise
    finally:
        await form.close()
    return ReceivedForm(files, fields)


def _stage(media: MediaStore, upload: UploadFile, max_bytes: int, staging: Path | None) -> Path:
    upload.file.seek(0)
    return media.stage(iter(lambda: upload.file.read(1 << 20), b""), max_bytes, folder=staging)


def multipart(file_field: str, *, many: bool) -> Callable[..., AsyncIterator[ReceivedForm]]:
    """A dependency that receives a multipart form with ``file_field`` (one file, or up to the
    upload limit when ``many``) and cleans up after the request.

    One file: over the size limit is refused with 413 as soon as the upload passes it.
    Many files: an oversize file fails alone; they are staged in a folder of their own
    so that a background job can take them over.
    """

    async def receive(request: Request, server: ServerDep) -> AsyncIterator[ReceivedForm]:
        settings = server.settings
        job_id = staging = None
        if many:
            job_id = server.jobs.new_id()
            staging = server.jobs.staging_folder(job_id)
        form = await receive_files(
            request,
            server.library.media,
            file_field=file_field,
            max_file_bytes=settings.max_image_bytes,
            max_files=settings.max_files_per_upload if many else 1,
            reject_oversize=not many,
            staging=staging,
        )
        form.staging, form.job_id = staging, job_id
        try:
            if not form.files:
                raise ApiError(422, "invalid_request", f"{file_field}: the multipart body has no {file_field!r} field")
            yield form
        finally:
            form.discard()

    return receive


def form_body(model: type[BaseModel], file_field: str, *, many: bool, file_help: str) -> dict[str, Any]:
    """OpenAPI ``requestBody`` of a multipart form: the file field plus ``model``'s fields."""
    schema = model.model_json_schema()
    binary = {"type": "string", "format": "binary"}
    file_schema = (
        {"type": "array", "items": binary, "description": file_help} if many else {**binary, "description": file_help}
    )
    properties = {file_field: file_schema, **schema.get("properties", {})}
    body = {"type": "object", "required": [file_field], "properties": properties}
    if "$defs" in schema:
        body["$defs"] = schema["$defs"]
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": body}}}}


def fill_limits(node: Any, max_image_bytes: int) -> Any:
    """The OpenAPI document with :data:`MAX_IMAGE` replaced by this server's limit (e.g. "40 MB")."""
    if isinstance(node, dict):
        return {k: fill_limits(v, max_image_bytes) for k, v in node.items()}
    if isinstance(node, list):
        return [fill_limits(v, max_image_bytes) for v in node]
    if isinstance(node, str) and MAX_IMAGE in node:
        return node.replace(MAX_IMAGE, megabytes(max_image_bytes))
    return node
