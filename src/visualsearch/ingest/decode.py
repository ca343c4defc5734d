"""Turn bytes into an RGB picture the models can use, or a clear reason why not.

Pillow does the work. What we add: EXIF orientation, every mode flattened to
RGB (transparency onto white, 16-bit scaled rather than clipped), the first
frame of animations, a byte cap and a pixel cap against decompression bombs,
and JPEG draft decoding, which makes large JPEGs several times cheaper when
the model only needs a few hundred pixels.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ..config import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, megabytes
from ..errors import DecodeError, ImageTooLarge, UnsupportedImage
from .fingerprint import perceptual_hash, pixel_digest

try:  # HEIC/HEIF through a PyPI plugin; AVIF is built into Pillow >= 11.3.
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - optional
    pass

# Our own (configurable) pixel cap is checked right after reading the header, with
# a clear error, so Pillow's global check (a warning, then an error at 2x) is off.
Image.MAX_IMAGE_PIXELS = None
ImageFile.LOAD_TRUNCATED_IMAGES = False

#: Smallest short side we keep after decoding: enough for any bundled model (Lite2 needs 297).
#: Pictures with a short side over twice this are shrunk to it; smaller ones are left alone.
WORKING_SIZE = 320


@dataclass
class DecodedImage:
    image: Image.Image  # RGB; big pictures reduced to WORKING_SIZE on the short side
    width: int  # of the original, after EXIF orientation
    height: int
    format: str
    sha256: str
    byte_size: int

    @cached_property
    def pixel_sha256(self) -> str:
        """Same for the same picture in different files (PNG vs lossless WebP, other metadata)."""
        return pixel_digest(self.image, self.width, self.height)

    @cached_property
    def phash(self) -> str:
        return perceptual_hash(self.image)


def read_file(path: Path, max_bytes: int = MAX_IMAGE_BYTES) -> bytes:
    """Read a whole file, refusing files over the byte cap before reading them."""
    size = path.stat().st_size
    if size > max_bytes:
        raise ImageTooLarge(f"file is {megabytes(size)}; the limit is {megabytes(max_bytes)}")
    with open(path, "rb") as f:
        return f.read(max_bytes + 1)


def decode_bytes(data: bytes, *, max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_IMAGE_PIXELS,
                 working_size: int | None = WORKING_SIZE) -> DecodedImage:
    """Decode image bytes into RGB. Raises :class:`DecodeError` with a readable reason."""
    if len(data) > max_bytes:
        raise ImageTooLarge(f"image is {megabytes(len(data))}; the limit is {megabytes(max_bytes)}")
    if not data:
        raise DecodeError("file is empty")
    digest = hashlib.sha256(data).hexdigest()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we check just below
            image = Image.open(io.BytesIO(data))
            fmt = image.format or "unknown"
            w, h = image.size
            if w * h > max_pixels:
                raise ImageTooLarge(f"image is {w}x{h} = {w * h / 1e6:.0f} megapixels; "
                                    f"the limit is {max_pixels / 1e6:.0f} megapixels")
            if getattr(image, "n_frames", 1) > 1:
                image.seek(0)
            orientation = image.getexif().get(0x0112, 1)
            if working_size and fmt == "JPEG":
                # Ask libjpeg for a cheaper DCT-scaled decode that stays above the working size.
                image.draft("RGB", (working_size, working_size))
            image.load()
            if orientation in (5, 6, 7, 8):
                w, h = h, w
            if orientation in (2, 3, 4, 5, 6, 7, 8):
                # Only then: without a rotation exif_transpose still copies every pixel.
                image = ImageOps.exif_transpose(image)
            rgb = to_rgb(image)
    except DecodeError:
        raise
    except UnidentifiedImageError as exc:
        raise UnsupportedImage("not a recognised image format") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DecodeError(f"corrupt or truncated image ({fmt if 'fmt' in locals() else 'unknown'}): {exc}") from exc
    if working_size and min(rgb.size) > 2 * working_size:
        # Only shrink big pictures: resampling twice (here and in the model's own resize)
        # measurably blurs what the model sees for ordinary 640x480 photos.
        rgb = shrink(rgb, working_size)
    return DecodedImage(rgb, w, h, fmt, digest, len(data))


def decode_file(path: Path, **kwargs) -> DecodedImage:
    return decode_bytes(read_file(Path(path), kwargs.get("max_bytes", MAX_IMAGE_BYTES)), **kwargs)


def shrink(image: Image.Image, short_side: int) -> Image.Image:
    """Downscale so the short side is ``short_side`` (never upscale)."""
    w, h = image.size
    if min(w, h) <= short_side:
        return image
    scale = short_side / min(w, h)
    return image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR, reducing_gap=2.0)


def to_rgb(image: Image.Image) -> Image.Image:
    """Flatten any Pillow mode to 8-bit RGB.

    Transparent pixels go onto white (what a person sees in a viewer), and
    16/32-bit greyscale is scaled to its own range instead of being clipped
    at 255, which would turn most 16-bit images white.
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        if mode.startswith("I;16") and hi <= 65535:
            lo, hi = 0.0, 65535.0 if hi > 255 else 255.0
        scaled = np.zeros_like(arr) if hi <= lo else (arr - lo) / (hi - lo) * 255.0
        return Image.fromarray(np.clip(scaled + 0.5, 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
