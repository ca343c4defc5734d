"""Turn bytes into an RGB picture the models can use, or a clear reason why not.

Pillow does the work. What we add:

- Caps against hostile files, each refused with :class:`ImageTooLarge` before any
  pixel is decoded: the file size (``max_bytes``, also checked before reading a
  file), the pixel count (``max_pixels``, from the header) and the memory the
  decoded picture takes (``max_decoded_bytes``: width x height x bytes per pixel
  of the mode Pillow decodes into, e.g. 1 for 8-bit greyscale or palette, 2 for
  16-bit greyscale, 3 for RGB, 4 for RGBA, CMYK and 32-bit greyscale; Pillow itself
  keeps two- and three-band pixels in 4 bytes). The pixel cap alone would let a
  16-bit or four-band picture take several times the memory of an 8-bit one.
- Reduced decoding when only a model-sized picture is needed (``working_size``):
  libjpeg's DCT scaling (``draft``) for JPEG; for other formats a box reduction
  (``Image.reduce``) of the decoded buffer, a strip at a time and before any
  conversion or EXIF rotation, so that peak memory is about one decoded buffer
  plus a small working copy. The reduction factor is the one the final resize
  would use anyway, so 8-bit pictures come out exactly as if converted at full
  size and then shrunk (16/32-bit greyscale within one level).
- EXIF orientation, every mode flattened to RGB (transparency onto a backdrop
  chosen from the visible pixels, see below; 16/32-bit greyscale scaled to its own
  range rather than clipped, in float32 on a bounded number of pixels at a time),
  the first frame of animations.
- Transparency (RGBA, LA, PA, and palette, greyscale or RGB with a transparent
  colour): the picture is composited onto the backdrop that keeps its content
  visible, white or near-black (:data:`LIGHT_BACKDROP`, :data:`DARK_BACKDROP`).
  Rule: the backdrop whose alpha-weighted mean ``|luminance - backdrop|`` over
  the picture is larger, ties to white; luminance is Pillow's ``L`` (ITU-R 601).
  So white shapes on transparent (wallpapers such as MATE's Flow or Silk, white
  logos) go onto the dark grey instead of vanishing into white, while dark,
  coloured or mixed content stays on white as a viewer shows it. The decision
  counts every pixel of the whole picture (a first pass by strips for big
  ones, also collecting the alpha band), weighted by alpha, so the colour stored
  in fully transparent pixels never matters. The alpha band, reduced like the
  picture, is kept as :attr:`DecodedImage.alpha` and is part of the pixel digest.
- :func:`read_file` reads only regular files, does not follow a symbolic link at
  the last component and cannot block on a FIFO or device.

The same pixels (and alpha) always give the same :class:`DecodedImage` whatever
the file format (PNG, lossless WebP, TIFF...), which exact-copy detection relies on.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TypedDict, Unpack, cast

import numpy as np
from PIL import Image, ImageFile, ImageMode, UnidentifiedImageError

from ..config import MAX_DECODED_BYTES, MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, megabytes
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
#: Pixels converted at a time when flattening a big picture: bounds the temporaries
#: (a strip of RGBA is 4 bytes a pixel) whatever the size of the picture.
STRIP_PIXELS = 1 << 21
#: Backdrops for transparent pixels: white by default, as a viewer shows them; the
#: near-black grey for light content, which white would erase (see :func:`to_rgb`).
#: Not pure black, so black outlines of light shapes stay visible too.
LIGHT_BACKDROP = (255, 255, 255)
DARK_BACKDROP = (32, 32, 32)

#: Modes with an alpha band (La and RGBa premultiplied).
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
#: Modes whose ``info["transparency"]`` (a transparent palette entry or colour) Pillow turns into alpha.
_KEYED_MODES = ("P", "1", "L", "RGB")
#: Greyscale modes with more than 8 bits, scaled to 0..255 rather than clipped.
_DEEP_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
#: EXIF orientation -> the transposition that displays the picture upright.
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


@dataclass
class DecodedImage:
    image: Image.Image  # RGB; big pictures reduced to WORKING_SIZE on the short side
    width: int  # of the original, after EXIF orientation
    height: int
    format: str
    sha256: str
    byte_size: int
    #: Alpha band of a picture with transparency ("L", the size of ``image``), for the
    #: pixel digest; None when every pixel is opaque (at the working size).
    alpha: Image.Image | None = None

    @cached_property
    def pixel_sha256(self) -> str:
        """Same for the same picture in different files (PNG vs lossless WebP, other metadata).

        Same decoded pixels and same alpha; the colour stored in fully transparent
        pixels is ignored (it does not reach ``image``, backdrop choice included).
        Opaque pictures get the digest of their pixels alone, as before alpha counted.
        """
        return pixel_digest(self.image, self.width, self.height, self.alpha)

    @cached_property
    def phash(self) -> str:
        return perceptual_hash(self.image)


def read_file(path: Path, max_bytes: int = MAX_IMAGE_BYTES) -> bytes:
    """Read a whole regular file, refusing files over the byte cap before reading them.

    The file is opened without following a symbolic link at the last component (a
    link swapped in after a folder scan must not send us elsewhere) and without
    blocking (opening a FIFO would otherwise wait for a writer forever); what was
    opened is then checked with ``fstat`` on the descriptor, so nothing can change
    between the check and the read. Directories, FIFOs, sockets and devices are
    refused. Callers pass resolved paths (``Path.resolve()``) for paths a person
    typed, so that their own links still work.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK) and os.path.islink(path):
            raise DecodeError(
                "is a symbolic link; only regular files are read (give the path of the file it points to)"
            ) from exc
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DecodeError("not a regular file")
        if st.st_size > max_bytes:
            raise ImageTooLarge(f"file is {megabytes(st.st_size)}; the limit is {megabytes(max_bytes)}")
        parts: list[bytes] = []
        total = 0
        while total <= max_bytes:  # normally two reads: the whole file, then end of file
            chunk = os.read(fd, min(max_bytes + 1 - total, max(st.st_size + 1 - total, 1 << 16)))
            if not chunk:
                break
            parts.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    if total > max_bytes:  # the file grew after fstat
        raise ImageTooLarge(f"file is over {megabytes(max_bytes)}, the limit")
    return parts[0] if len(parts) == 1 else b"".join(parts)


def bytes_per_pixel(mode: str) -> int:
    """Bytes one pixel takes in ``mode``: 1 for L, P and 1; 2 for I;16; 3 for RGB; 4 for RGBA, CMYK, I, F."""
    try:
        info = ImageMode.getmode(mode)
    except KeyError:  # a plugin's own mode: assume the worst common case
        return 4
    return len(info.bands) * int(info.typestr[2:])


def decode_bytes(
    data: bytes,
    *,
    max_bytes: int = MAX_IMAGE_BYTES,
    max_pixels: int = MAX_IMAGE_PIXELS,
    max_decoded_bytes: int = MAX_DECODED_BYTES,
    working_size: int | None = WORKING_SIZE,
) -> DecodedImage:
    """Decode image bytes into RGB. Raises :class:`DecodeError` with a readable reason."""
    if len(data) > max_bytes:
        raise ImageTooLarge(f"image is {megabytes(len(data))}; the limit is {megabytes(max_bytes)}")
    if not data:
        raise DecodeError("file is empty")
    digest = hashlib.sha256(data).hexdigest()
    fmt = "unknown"
    image = rgb = alpha = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we check just below
            image = Image.open(io.BytesIO(data))
            fmt = image.format or "unknown"
            w, h = image.size
            if w * h > max_pixels:
                raise ImageTooLarge(
                    f"image is {w}x{h} = {w * h / 1e6:.0f} megapixels; the limit is {max_pixels / 1e6:.0f} megapixels"
                )
            if working_size and fmt == "JPEG":
                # Ask libjpeg for a cheaper DCT-scaled decode that stays above the working size.
                image.draft("RGB", (working_size, working_size))
            # What decoding is about to allocate (after draft, which may have made it smaller).
            # Checked before anything that may decode: PNG's getexif() loads the pixels to
            # find an eXIf chunk after the image data.
            dw, dh = image.size
            needed = dw * dh * bytes_per_pixel(image.mode)
            if needed > max_decoded_bytes:
                raise ImageTooLarge(
                    f"image is {dw}x{dh} in mode {image.mode} = {megabytes(needed)} "
                    f"once decoded; the limit is {megabytes(max_decoded_bytes)}"
                )
            if getattr(image, "n_frames", 1) > 1:
                image.seek(0)
            orientation = image.getexif().get(0x0112, 1)
            image.load()
            if orientation in (5, 6, 7, 8):
                w, h = h, w
            rgb, alpha = working_pixels(image, working_size, orientation)
    except DecodeError:
        raise
    except UnidentifiedImageError as exc:
        raise UnsupportedImage("not a recognised image format") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DecodeError(f"corrupt or truncated image ({fmt}): {exc}") from exc
    finally:
        if image is not None and rgb is not image:
            image.close()  # frees the full-size buffer now, not when the last reference goes
        del image
    return DecodedImage(rgb, w, h, fmt, digest, len(data), alpha)


class DecodeLimits(TypedDict, total=False):
    """The keyword arguments of :func:`decode_bytes`, also taken by :func:`decode_file`."""

    max_bytes: int
    max_pixels: int
    max_decoded_bytes: int
    working_size: int | None


def decode_file(path: Path, **kwargs: Unpack[DecodeLimits]) -> DecodedImage:
    return decode_bytes(read_file(Path(path), kwargs.get("max_bytes", MAX_IMAGE_BYTES)), **kwargs)


def shrink(image: Image.Image, short_side: int) -> Image.Image:
    """Downscale so the short side is ``short_side`` (never upscale)."""
    w, h = image.size
    if min(w, h) <= short_side:
        return image
    return image.resize(shrunk_size(w, h, short_side), Image.Resampling.BILINEAR, reducing_gap=2.0)


def shrunk_size(w: int, h: int, short_side: int) -> tuple[int, int]:
    scale = short_side / min(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def working_rgb(image: Image.Image, working_size: int | None, orientation: int = 1) -> Image.Image:
    """A loaded picture as upright RGB, shrunk to ``working_size`` on the short side if over twice that.

    The same pixels as ``shrink(to_rgb(exif_transpose(image)), working_size)`` for
    8-bit modes (16/32-bit greyscale is reduced before it is scaled to 8 bits, so
    can differ by one level), with little memory besides the decoded buffer: the
    integer box reduction that ``shrink``'s resize starts with (``reducing_gap=2``)
    is done first, a strip of whole reduction blocks at a time, each strip
    transposed upright and converted on the way; the bilinear resize then runs on
    the reduced picture. The result depends only on the pixels and the
    orientation, never on the file format.
    """
    return working_pixels(image, working_size, orientation)[0]


def working_pixels(
    image: Image.Image, working_size: int | None, orientation: int = 1
) -> tuple[Image.Image, Image.Image | None]:
    """:func:`working_rgb`'s picture, and its alpha band ("L", same size) if it has transparency.

    For a picture with transparency, a first pass (by strips for big pictures)
    collects the alpha band, reduced like the picture, and the statistics that
    choose the backdrop (:func:`to_rgb`) from the whole picture; the second
    composites onto that backdrop. The alpha is None when every pixel of the
    picture is opaque at the working size.
    """
    method = _ORIENTATION.get(orientation)
    sw, sh = image.size
    dw, dh = (sh, sw) if orientation in (5, 6, 7, 8) else (sw, sh)  # as displayed
    target = None
    factor = (1, 1)
    if working_size and min(dw, dh) > 2 * working_size:
        target = shrunk_size(dw, dh, working_size)
        # What Image.resize(target, reducing_gap=2.0) would reduce by before resampling.
        factor = (int(dw / target[0] / 2.0) or 1, int(dh / target[1] / 2.0) or 1)
    alpha = backdrop = None
    if has_transparency(image):
        alpha, backdrop = _alpha_and_backdrop(image, factor, method)
    if factor == (1, 1):
        rgb = _flatten(image, backdrop)
        if method is not None:
            rgb = rgb.transpose(method)
    else:
        rgb = _reduced_rgb(image, factor, method, backdrop)
    if target:
        # The box is the part of the reduced picture that covers the original (its last row
        # and column may average fewer pixels): what Image.resize passes on after reducing.
        box = (0, 0, dw / factor[0], dh / factor[1])
        rgb = rgb.resize(target, Image.Resampling.BILINEAR, box=box)
        if alpha is not None:
            alpha = alpha.resize(target, Image.Resampling.BILINEAR, box=box)
    if alpha is not None and alpha.getextrema()[0] == 255:
        alpha = None  # opaque after all: digested like any opaque picture
    return rgb, alpha


def has_transparency(image: Image.Image) -> bool:
    """Whether ``image``'s mode can hold transparent pixels: an alpha band or a transparent colour."""
    return image.mode in _ALPHA_MODES or (image.mode in _KEYED_MODES and "transparency" in image.info)


def _alpha_and_backdrop(
    image: Image.Image, factor: tuple[int, int], method: Image.Transpose | None
) -> tuple[Image.Image, tuple[int, int, int]]:
    """``alpha(image.transpose(method)).reduce(factor)`` and the backdrop of the whole picture, in one pass."""
    counts = np.zeros(1 << 16, dtype=np.int64)

    def alpha_of(strip: Image.Image) -> Image.Image:
        return _count_alpha_luminance(strip, counts)

    if factor == (1, 1) and image.width * image.height <= STRIP_PIXELS:
        alpha = alpha_of(image)
        if method is not None:
            alpha = alpha.transpose(method)
    else:
        alpha = _by_strips(image, "L", factor, method, alpha_of)
    return alpha, _backdrop_from_counts(counts)


def choose_backdrop(image: Image.Image) -> tuple[int, int, int]:
    """The backdrop :func:`to_rgb` puts ``image``'s transparent pixels on (the rule is there).

    White for a picture without transparency. Computed a band of rows at a time.
    """
    if not has_transparency(image):
        return LIGHT_BACKDROP
    counts = np.zeros(1 << 16, dtype=np.int64)
    for _, strip in _row_strips(image):
        _count_alpha_luminance(strip, counts)
    return _backdrop_from_counts(counts)


def _count_alpha_luminance(image: Image.Image, counts: np.ndarray) -> Image.Image:
    """Add to ``counts`` (65536, alpha-major) how many pixels have each (alpha, luminance); return the alpha band."""
    rgba = _as_rgba(image)
    alpha = rgba.getchannel("A")
    lo, hi = cast(tuple[int, int], alpha.getextrema())
    if lo == hi:  # one alpha (opaque or empty bands, the common case): Pillow's histogram is quicker
        if lo:
            counts[lo << 8 : (lo + 1) << 8] += rgba.convert("L").histogram()
        return alpha
    index = np.asarray(alpha).astype(np.uint16)
    index <<= 8
    index |= np.asarray(rgba.convert("L"))
    counts += np.bincount(index.ravel(), minlength=1 << 16)
    return alpha


def _as_rgba(image: Image.Image) -> Image.Image:
    """``image`` in RGBA (itself if it is); Pillow converts premultiplied La only to LA."""
    if image.mode == "RGBA":
        return image
    return (image.convert("LA") if image.mode == "La" else image).convert("RGBA")


def _backdrop_from_counts(counts: np.ndarray) -> tuple[int, int, int]:
    """The backdrop of larger alpha-weighted mean ``|luminance - backdrop|``, ties to white.

    Exact integer sums (no rounding), so a picture gets the same backdrop
    however its pixels were split into strips.
    """
    levels = np.arange(256, dtype=np.int64)
    weight = levels @ counts.reshape(256, 256)  # per luminance: the sum of the alphas of its pixels
    light = int(weight @ np.abs(levels - LIGHT_BACKDROP[0]))
    dark = int(weight @ np.abs(levels - DARK_BACKDROP[0]))
    return DARK_BACKDROP if dark > light else LIGHT_BACKDROP


def _flatten(image: Image.Image, backdrop: tuple[int, int, int] | None = None) -> Image.Image:
    """``to_rgb(image, backdrop)``, by strips for big pictures so that the temporaries stay small."""
    if image.mode in _DEEP_GREY or image.width * image.height <= STRIP_PIXELS:
        return to_rgb(image, backdrop)
    if not has_transparency(image):
        if image.mode == "RGB":
            return image
        return _by_strips(image, "RGB", (1, 1), None, to_rgb)
    chosen = backdrop or choose_backdrop(image)
    return _by_strips(image, "RGB", (1, 1), None, lambda strip: to_rgb(strip, chosen))


def _reduced_rgb(
    image: Image.Image,
    factor: tuple[int, int],
    method: Image.Transpose | None,
    backdrop: tuple[int, int, int] | None = None,
) -> Image.Image:
    """``to_rgb(image.transpose(method), backdrop).reduce(factor)`` without a full-size copy of anything."""
    mode = image.mode
    if mode in _DEEP_GREY:
        # Reduce first so the scaling to 8 bits runs on few pixels. Pillow cannot reduce
        # 16-bit: those strips are widened to 32-bit ("I") on the way.
        levels = _grey_levels(image)
        if mode in ("I", "F") and method is None:
            reduced = image.reduce(factor)
        elif mode in ("I", "F"):
            reduced = _by_strips(image, mode, factor, method, lambda strip: strip)
        else:
            reduced = _by_strips(
                image, "I", factor, method, lambda strip: Image.fromarray(np.asarray(strip).astype(np.int32))
            )
        return _grey_to_l(reduced, levels).convert("RGB")
    if not has_transparency(image):
        if mode == "RGB" and method is None:
            return image.reduce(factor)
        return _by_strips(image, "RGB", factor, method, to_rgb)
    chosen = backdrop or choose_backdrop(image)
    return _by_strips(image, "RGB", factor, method, lambda strip: to_rgb(strip, chosen))


def _by_strips(
    image: Image.Image,
    out_mode: str,
    factor: tuple[int, int],
    method: Image.Transpose | None,
    convert: Callable[[Image.Image], Image.Image],
) -> Image.Image:
    """``convert(image.transpose(method)).reduce(factor)``, a band of whole reduction blocks at a time.

    Box reduction only averages inside blocks, and conversions and transpositions
    work pixel by pixel, so the bands give exactly the whole-picture result.
    """
    fx, fy = factor
    sw, sh = image.size
    turned = method in (
        Image.Transpose.TRANSPOSE,
        Image.Transpose.TRANSVERSE,
        Image.Transpose.ROTATE_90,
        Image.Transpose.ROTATE_270,
    )
    dw, dh = (sh, sw) if turned else (sw, sh)
    # The transposition that undoes another: these two swap, the rest undo themselves.
    inverse = {
        Image.Transpose.ROTATE_90: Image.Transpose.ROTATE_270,
        Image.Transpose.ROTATE_270: Image.Transpose.ROTATE_90,
    }
    out = Image.new(out_mode, (-(-dw // fx), -(-dh // fy)))
    rows = max(fy, STRIP_PIXELS // max(1, dw) // fy * fy)
    for top in range(0, dh, rows):
        box = (0, top, dw, min(dh, top + rows))  # upright
        if method is None:
            strip = image.crop(box)
        else:
            strip = image.crop(_transposed_box(box, (dw, dh), inverse.get(method, method))).transpose(method)
        strip = convert(strip)
        if factor != (1, 1):
            strip = strip.reduce(factor)
        out.paste(strip, (0, top // fy))
        del strip
    return out


def _transposed_box(
    box: tuple[int, int, int, int], size: tuple[int, int], method: Image.Transpose
) -> tuple[int, int, int, int]:
    """Where ``box`` of a ``size`` picture lands in ``picture.transpose(method)``."""
    x0, y0, x1, y1 = box
    w, h = size
    T = Image.Transpose
    return {
        T.FLIP_LEFT_RIGHT: (w - x1, y0, w - x0, y1),
        T.FLIP_TOP_BOTTOM: (x0, h - y1, x1, h - y0),
        T.ROTATE_180: (w - x1, h - y1, w - x0, h - y0),
        T.TRANSPOSE: (y0, x0, y1, x1),
        T.ROTATE_90: (y0, w - x1, y1, w - x0),
        T.ROTATE_270: (h - y1, x0, h - y0, x1),
        T.TRANSVERSE: (h - y1, w - x1, h - y0, w - x0),
    }[method]


def _row_strips(image: Image.Image) -> Iterator[tuple[int, Image.Image]]:
    """Successive bands of rows of ``image``, about STRIP_PIXELS each."""
    w, h = image.size
    rows = max(1, STRIP_PIXELS // max(1, w))
    for top in range(0, h, rows):
        yield top, image.crop((0, top, w, min(h, top + rows)))


def _row_chunks(image: Image.Image) -> Iterator[tuple[int, np.ndarray]]:
    """Numpy arrays of successive bands of rows of ``image``, about STRIP_PIXELS each."""
    for top, strip in _row_strips(image):
        yield top, np.asarray(strip)


def _grey_levels(image: Image.Image) -> tuple[float, float]:
    """The input range mapped to 0..255: 16-bit by its bit depth, 32-bit by its own min and max."""
    lo, hi = np.inf, -np.inf
    for _, arr in _row_chunks(image):
        if arr.dtype.kind == "f":
            arr = arr[np.isfinite(arr)]
            if not arr.size:
                continue
        lo, hi = min(lo, float(arr.min())), max(hi, float(arr.max()))
    if lo > hi:  # empty, or nothing finite
        return 0.0, 0.0
    if image.mode.startswith("I;16"):
        return 0.0, 65535.0 if hi > 255 else 255.0
    return lo, hi


def _grey_to_l(image: Image.Image, levels: tuple[float, float]) -> Image.Image:
    """Deep greyscale to 8 bits: (v - lo) / (hi - lo) * 255, rounded, in float32, a band of rows at a time."""
    lo, hi = levels
    w, h = image.size
    out = np.zeros((h, w), dtype=np.uint8)
    if hi > lo:
        gain = np.float32(255.0 / (hi - lo))
        for top, arr in _row_chunks(image):
            x = arr.astype(np.float32)
            np.nan_to_num(x, copy=False, nan=lo, posinf=hi, neginf=lo)
            x -= np.float32(lo)
            x *= gain
            x += np.float32(0.5)
            np.clip(x, 0, 255, out=x)
            out[top : top + len(x)] = x
    return Image.fromarray(out)


def to_rgb(image: Image.Image, backdrop: tuple[int, int, int] | None = None) -> Image.Image:
    """Flatten any Pillow mode to 8-bit RGB.

    Transparent pixels are composited onto ``backdrop``, by default the one
    :func:`choose_backdrop` picks from the picture itself: the one of
    :data:`LIGHT_BACKDROP` (white) and :data:`DARK_BACKDROP` (near-black grey)
    that maximises the alpha-weighted mean ``|luminance - backdrop|`` of the
    pixels, ties to white. Why: always white (what a viewer shows) turned white
    artwork on transparent into a blank white picture, the same for the model,
    the perceptual hash and the thumbnail as every other such artwork, so they
    were reported as duplicates and could not be found. Contrast keeps the
    content visible, and white stays the backdrop of dark, coloured or mixed
    content. Weighting by alpha makes the choice depend only on visible pixels,
    never on the colour stored in fully transparent ones.

    16/32-bit greyscale is scaled to its own range instead of being clipped
    at 255, which would turn most 16-bit images white (16-bit: 0..65535, or
    0..255 when no value is over 255; 32-bit: its min..max).
    """
    mode = image.mode
    if mode in _DEEP_GREY:
        return _grey_to_l(image, _grey_levels(image)).convert("RGB")
    if not has_transparency(image):
        return image if mode == "RGB" else image.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV
    rgba = _as_rgba(image)  # not a copy if RGBA already: alpha_composite leaves it as it is
    if backdrop is None:
        counts = np.zeros(1 << 16, dtype=np.int64)
        _count_alpha_luminance(rgba, counts)
        backdrop = _backdrop_from_counts(counts)
    background = Image.new("RGBA", rgba.size, (*backdrop, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")
