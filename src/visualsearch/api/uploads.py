"""Receiving multipart uploads: each file is counted as it streams and staged on disk.

Starlette's multipart parser does the parsing; this subclass stops a file the
moment it passes the per-file limit, instead of letting it be spooled whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from ..config import megabytes
from ..errors import ImageTooLarge
from ..ingest.media import MediaStore
from .errors import ApiError


class _LimitedParser(MultiPartParser):
    def __init__(self, *args, max_file_bytes: int, reject_oversize: bool, **kwargs):
        super().__init__(*args, **kwargs)
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
                    raise ImageTooLarge(f"{part.file.filename or 'the file'} is larger than the limit of "
                                        f"{megabytes(self.max_file_bytes)}")
                self.oversize.add(key)
                return
        super().on_part_data(data, start, end)


@dataclass
class ReceivedFile:
    name: str
    staged: Path | None
    error: Exception | None = None


@dataclass
class ReceivedForm:
    files: list[ReceivedFile]
    fields: dict[str, str]


_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]+")


def clean_name(filename: str | None) -> str:
    """A display name from a client-supplied file name: no paths, no control characters."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip()[:255]
    return name or "upload"


async def receive_files(request: Request, media: MediaStore, *, file_field: str, max_file_bytes: int,
                        max_files: int, reject_oversize: bool, staging: Path | None = None) -> ReceivedForm:
    """Parse a multipart body; stage every file under ``staging`` (or the default staging folder)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(415, "unsupported_media_type",
                       f"send the image as multipart/form-data with a {file_field!r} file field")
    parser = _LimitedParser(request.headers, request.stream(), max_files=max_files, max_fields=50,
                            max_part_size=64 * 1024, max_file_bytes=max_file_bytes,
                            reject_oversize=reject_oversize)
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
                    files.append(ReceivedFile(name, None, ImageTooLarge(
                        f"file is larger than the limit of {megabytes(max_file_bytes)}")))
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
