"""The library's assets: listing, one asset, tags, removal, and the files behind them."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from PIL import Image

from ..catalog import INDEXED, Asset, AssetFilter
from ..duplicates import PixelVerifier, RecentCache
from ..errors import NotFound, VisualSearchError
from ..ingest.decode import DecodedImage, decode_file, has_transparency
from .library import Library

#: Pictures this small (longest side, px) are checked from their own file, not their JPEG preview.
LOSSLESS_SIDE = 512
#: ... when they are in one of these formats: a JPEG's preview is no lossier than the file.
LOSSLESS_FORMATS = frozenset({"PNG", "GIF", "BMP", "TIFF"})
#: Files decoded for the pixel check (alpha bands, second looks) kept for their other pairs.
DECODED_CACHE = 16


class AssetService:
    def __init__(self, library: Library):
        self.library = library

    def page(
        self, filters: AssetFilter, limit: int, offset: int = 0, before_id: int | None = None
    ) -> tuple[list[Asset], int]:
        """(assets with their tags, newest first; how many match in all)."""
        catalog = self.library.catalog
        rows = catalog.list_assets(filters, limit=limit, offset=offset, before_id=before_id)
        return catalog.with_tags(rows), catalog.count_assets(filters)

    def get(self, asset_id: int) -> Asset:
        """The asset with its tags; NotFound when there is none."""
        asset = self.library.catalog.get(asset_id)
        if asset is None:
            raise NotFound(f"no asset with id {asset_id}")
        return self.library.catalog.with_tags([asset])[0]

    def with_tags(self, assets: list[Asset]) -> list[Asset]:
        return self.library.catalog.with_tags(assets)

    def set_tags(self, asset_id: int, tags: list[str]) -> list[str]:
        self.get(asset_id)
        return self.library.catalog.set_tags(asset_id, tags)

    def delete(self, asset_id: int) -> None:
        """Forget the asset and its vectors. Copies the library made (uploads, URLs) are deleted;
        files in indexed folders are never touched."""
        library = self.library
        asset = self.get(asset_id)
        library.catalog.remove([asset_id])
        if asset.path and asset.sha256 and library.catalog.find_by_sha256(asset.sha256) is None:
            library.media.discard_original(asset.path)
            library.media.thumbnail_path(asset.sha256).unlink(missing_ok=True)
        library.sync_indexes()

    def image_file(self, asset: Asset) -> Path:
        """The asset's file, only if it is still the regular file that was indexed.

        A file (or a folder above it) replaced by a symbolic link after indexing is
        not served: the link could point anywhere on the server.
        """
        if asset.status != INDEXED:
            raise NotFound(f"asset {asset.id} has no image ({asset.error or asset.status})")
        path = Path(asset.path or asset.source)
        try:
            st = os.lstat(path)
        except OSError:
            raise NotFound(f"the file of asset {asset.id} is no longer on disk") from None
        if not stat.S_ISREG(st.st_mode) or os.path.realpath(path) != str(path):
            raise NotFound(f"the file of asset {asset.id} is no longer the file that was indexed")
        return path

    def thumbnail(self, asset: Asset, slot: Callable[[], AbstractContextManager[object]] = nullcontext) -> Path:
        """The 256 px JPEG preview, made on first use inside ``slot()`` (the server's decode gate).

        The file is checked first even when the preview exists: a file swapped for a link after
        indexing is not served, not even as a cached preview.
        """
        source = self.image_file(asset)
        media = self.library.media
        assert asset.sha256 is not None  # indexed assets always have one (image_file checked the status)
        path = media.thumbnail_path(asset.sha256)
        if not path.exists():
            with slot():
                path = media.thumbnail_from_file(asset.sha256, source, self.library.settings.decode_limits)
        return path

    def fill_thumbnails(self, stop: threading.Event, page: int = 200) -> int:
        """Make the previews that are missing (libraries indexed before previews were made at index
        time, or with ``thumbnails_at_index`` off), newest first; returns how many were made.

        Meant for a background thread: it stops at ``stop``, and a file that cannot be read is
        skipped (its preview is then attempted on view, which reports the error).
        """
        made = 0
        before: int | None = None
        catalog = self.library.catalog
        while not stop.is_set():
            rows = catalog.list_assets(AssetFilter(), limit=page, before_id=before)
            if not rows:
                break
            for asset in rows:
                if stop.is_set():
                    break
                if not self.thumbnail_missing(asset):
                    continue
                try:
                    self.thumbnail(asset)
                    made += 1
                except (OSError, VisualSearchError):
                    continue
            before = rows[-1].id
        return made

    def thumbnail_missing(self, asset: Asset) -> bool:
        return asset.sha256 is None or not self.library.media.thumbnail_path(asset.sha256).exists()


def lossless(asset: Asset) -> bool:
    """A small picture in a lossless format: the pixel check reads its own file (see below)."""
    small = bool(asset.width and asset.height and max(asset.width, asset.height) <= LOSSLESS_SIDE)
    return small and (asset.format or "").upper() in LOSSLESS_FORMATS


def preview_verifier(library: Library) -> PixelVerifier:
    """Pixel checks of candidate copies (:mod:`visualsearch.duplicates.verify`) on the assets' previews.

    The 256 px previews are what the check needs (it compares at 160 px), are usually on
    disk already (made at indexing; made here on first use otherwise), and are composited
    like everything else, so a transparent picture is compared as it is seen. Small pictures in
    a lossless format (:func:`lossless`: icons, clip art, cards) are read from their own file,
    decoded the same way: as cheap, and without the preview's JPEG noise, which made flat drawings
    look like photos (a nine of diamonds then passed as a copy of the eight, a lime of a lemon).
    Previews hold no transparency: for a pair that passes on colour, the alpha bands of two
    transparent pictures are read from their files (decoded as at indexing) and compared too,
    and two drawings get a second look at a finer size, from their files too.
    """
    previews = AssetService(library)
    limits = library.settings.decode_limits

    def indexed_file(asset: Asset) -> Path | None:
        """The asset's own file, unless it changed since indexing (its preview shows what was indexed)."""
        file = previews.image_file(asset)
        return file if file.stat().st_size == asset.byte_size else None

    # The alpha band and the second look both need a pair's files decoded, often the same file
    # for both and for its other pairs: the last few decoded files are kept.
    decoded: RecentCache[tuple[int, str | None], DecodedImage] = RecentCache(DECODED_CACHE)

    def decode(asset: Asset, file: Path) -> DecodedImage:
        return decoded.get((asset.id, asset.sha256), lambda: decode_file(file, **limits))

    def load(asset: Asset) -> Image.Image | None:
        try:
            file = indexed_file(asset) if lossless(asset) else None
            if file is not None:
                return decode(asset, file).image.convert("RGB")
            with Image.open(previews.thumbnail(asset)) as image:
                return image.convert("RGB")
        except (OSError, VisualSearchError):
            return None

    def alpha(asset: Asset) -> Image.Image | None:
        try:
            file = indexed_file(asset)
            if file is None:
                return None
            with Image.open(file) as header:  # the header alone: most pictures have no transparency
                transparent = has_transparency(header)
            return decode(asset, file).alpha if transparent else None
        except (OSError, VisualSearchError):
            return None

    def fine(asset: Asset) -> Image.Image | None:
        try:
            file = indexed_file(asset)
            return decode(asset, file).image if file is not None else None
        except (OSError, VisualSearchError):
            return None

    return PixelVerifier(load, store=library.catalog.verdicts, alpha=alpha, fine=fine)
