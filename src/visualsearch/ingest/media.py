"""Files the library keeps itself: originals of uploads and URLs, thumbnails, staging.

Layout under the library folder::

    staging/      uploads being received (temporary; removed on failure)
    originals/    ab/abcdef....jpg   content-addressed copies of uploaded / fetched images
    thumbnails/   ab/abcdef....jpg   256 px JPEG previews, made once per image (libraries
                                     indexed before 2026-11-26 have .webp ones, still served)

Every file appears under its final name by an atomic rename from a temporary
file in the same file system, so a crash never leaves a half-written image
where the catalog could point at it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..config import MAX_IMAGE_BYTES, megabytes
from ..errors import ImageTooLarge
from .decode import decode_file

THUMBNAIL_SIZE = 256
#: JPEG (quality 85, 4:2:0 like lossy WebP): 0.2 ms to encode a 256 px preview where WebP took 1.6
#: (method 1), which at index time was 8% of the CPU an image costs on 2 cores; 11 KiB against 8.
THUMBNAIL_SUFFIX = ".jpg"
THUMBNAIL_QUALITY = 85
#: Previews made by earlier versions. They are served as they are, not remade: remaking them would
#: decode every image of a library again.
LEGACY_THUMBNAIL_SUFFIXES = (".webp",)
_EXTENSIONS = {
    "JPEG": ".jpg",
    "PNG": ".png",
    "WEBP": ".webp",
    "GIF": ".gif",
    "BMP": ".bmp",
    "TIFF": ".tif",
    "HEIF": ".heic",
    "AVIF": ".avif",
    "MPO": ".jpg",
}
MEDIA_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".avif": "image/avif",
}


def media_type(path: Path) -> str:
    return MEDIA_TYPES.get(Path(path).suffix.lower(), "application/octet-stream")


class MediaStore:
    def __init__(self, library_dir: Path):
        self.root = Path(library_dir)
        self.staging = self.root / "staging"
        self.originals = self.root / "originals"
        self.thumbnails = self.root / "thumbnails"

    # -- receiving -------------------------------------------------------------------
    def stage(self, chunks: Iterable[bytes], max_bytes: int = MAX_IMAGE_BYTES, folder: Path | None = None) -> Path:
        """Write an incoming stream to a staging file, stopping as soon as it is over ``max_bytes``.

        ``chunks`` is an iterable of bytes. Nothing is left behind on failure.
        """
        target_dir = folder or self.staging
        target_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=target_dir, suffix=".part")
        path = Path(name)
        try:
            size = 0
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise ImageTooLarge(f"file is larger than the limit of {megabytes(max_bytes)}")
                    out.write(chunk)
            return path
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def keep(self, staged: Path, sha256: str, image_format: str) -> Path:
        """Move a staged file to its content-addressed place (atomic; idempotent)."""
        target = self.originals / sha256[:2] / (sha256 + _EXTENSIONS.get(image_format.upper(), ".img"))
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            Path(staged).unlink(missing_ok=True)
        else:
            os.replace(staged, target)
        return target

    def discard_original(self, path: str | None) -> None:
        """Delete a copy the library owns (never a file outside ``originals``)."""
        if not path:
            return
        p = Path(path)
        if self.originals in p.parents:
            p.unlink(missing_ok=True)

    def clean_staging(self, older_than: float = 3600.0, keep: AbstractSet[str] = frozenset()) -> int:
        """Remove staging leftovers of crashed or abandoned uploads. Returns how many."""
        if not self.staging.is_dir():
            return 0
        removed, cutoff = 0, time.time() - older_than
        for entry in self.staging.iterdir():
            if entry.name in keep:
                continue
            try:
                if entry.stat().st_mtime < cutoff:
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    def remove_orphans(self, known: Callable[[list[str]], set[str]], grace: float = 10.0) -> int:
        """Delete stored originals and thumbnails that no asset refers to, and temporary files.

        A server killed between storing a file and committing its catalog row leaves
        such files behind. ``known(digests)`` says which content digests the catalog
        has. Files younger than ``grace`` seconds are left alone: another process may
        be between the two steps right now. Returns how many files were removed.
        """
        cutoff = time.time() - grace
        candidates: list[Path] = []
        for folder in (self.originals, self.thumbnails):
            if folder.is_dir():
                candidates.extend(p for p in folder.glob("*/*") if p.is_file())
        removed = 0
        old = [p for p in candidates if _mtime(p) < cutoff]
        temporary = [p for p in old if p.suffix in (".tmp", ".part")]
        stored = [p for p in old if p.suffix not in (".tmp", ".part")]
        referenced = known(sorted({p.name.split(".")[0] for p in stored}))
        for path in temporary + [p for p in stored if p.name.split(".")[0] not in referenced]:
            path.unlink(missing_ok=True)
            removed += 1
        return removed

    # -- thumbnails ------------------------------------------------------------------
    def thumbnail_path(self, sha256: str) -> Path:
        return thumbnail_path(self.thumbnails, sha256)

    def make_thumbnail(self, sha256: str, image: Image.Image) -> Path:
        """Save a JPEG preview (longest side 256 px) once; later calls reuse it."""
        return write_thumbnail(self.thumbnails, sha256, image)

    def thumbnail_from_file(self, sha256: str, file: Path, limits: dict[str, int]) -> Path:
        """The thumbnail, made from ``file`` if it does not exist yet (``limits``: the decode caps)."""
        return thumbnail_from_file(self.thumbnails, sha256, file, limits)


def thumbnail_from_file(root: Path, sha256: str, file: Path, limits: dict[str, int]) -> Path:
    """The preview under ``root``, made from ``file`` if it does not exist yet (``limits``: the decode caps)."""
    target = thumbnail_path(root, sha256)
    if target.exists():
        return target
    return write_thumbnail(root, sha256, decode_file(file, **limits).image)


def thumbnail_path(root: Path, sha256: str) -> Path:
    """Where the preview of the image with this content digest is (or will be) under ``root``.

    A preview an earlier version made (WebP) is returned when there is one and no JPEG.
    """
    folder = root / sha256[:2]
    target = folder / f"{sha256}{THUMBNAIL_SUFFIX}"
    if not target.exists():
        for suffix in LEGACY_THUMBNAIL_SUFFIXES:
            legacy = folder / f"{sha256}{suffix}"
            if legacy.exists():
                return legacy
    return target


def write_thumbnail(root: Path, sha256: str, image: Image.Image) -> Path:
    """Save a JPEG preview (longest side 256 px) under ``root`` once; later calls reuse it.

    A plain function so that decoding worker processes can make it in the same pass
    that decodes the image for the model (see :mod:`.pipeline`).
    """
    target = thumbnail_path(root, sha256)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # OpenCV halvings, then one last step, and JPEG: index-time thumbnails cost indexing
    # throughput (7.3 ms of CPU a 640x480 photo with Lanczos + WebP method 4, 2.8 with OpenCV
    # and WebP method 1, 1.1 now), so this matters.
    scale = min(1.0, THUMBNAIL_SIZE / max(image.size))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    thumb = image
    if scale < 1:
        pixels = np.asarray(image)
        while pixels.shape[1] >= 2 * size[0] and pixels.shape[0] >= 2 * size[1]:
            pixels = cv2.pyrDown(pixels)  # a blurred halving: 0.3 ms where an area resize of 640x480 took 1.0
        # What the halvings leave is under 2x: bilinear (0.1 ms) is enough below 1.5x, the
        # blur of the last halving having removed what it would alias; area (0.4 ms) above.
        last = pixels.shape[1] / size[0]
        interpolation = cv2.INTER_LINEAR if last < 1.5 else cv2.INTER_AREA
        thumb = Image.fromarray(cv2.resize(pixels, size, interpolation=interpolation))
    fd, name = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            thumb.save(out, "JPEG", quality=THUMBNAIL_QUALITY)
        os.replace(name, target)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return target


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")  # vanished meanwhile: nothing to remove
