"""Read the words in a picture being indexed (OCR), from a copy large enough to read them.

The picture the model and fingerprints use is reduced to about 320 px on its short side
(:data:`.decode.WORKING_SIZE`): enough to tell what is in it, too small for a screenshot's
or a poster's text. The reader therefore gets its own decode of the same bytes, at about
the reader's size (:attr:`~visualsearch.models.ocr.ReaderOptions.size`); pictures that the
working decode did not reduce are read as they are. The reader sees the same upright,
transparency-composited picture as the model.
"""

from __future__ import annotations

import math

from PIL import Image

from ..config import MAX_DECODED_BYTES, MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS
from ..models.ocr import ReaderOptions, load_reader
from .decode import DecodedImage, decode_bytes


def reading_picture(
    data: bytes,
    decoded: DecodedImage,
    options: ReaderOptions,
    *,
    max_bytes: int = MAX_IMAGE_BYTES,
    max_pixels: int = MAX_IMAGE_PIXELS,
    max_decoded_bytes: int = MAX_DECODED_BYTES,
) -> Image.Image:
    """The picture to read, at most about twice the reader's size on its long side.

    ``decoded.image`` when it is full size, else a decode of ``data`` whose short side is chosen
    so that the long side comes out near the reader's size: a long strip must not be decoded
    at full size (a 1900x89,000 PNG is 500 MB of pixels) only for the reader to shrink it.
    """
    long_side, short_side = max(decoded.width, decoded.height), min(decoded.width, decoded.height)
    if decoded.image.size == (decoded.width, decoded.height):
        image = decoded.image
    else:
        # decode_bytes shrinks the short side to working_size once it is over twice that (JPEGs at a
        # cheaper DCT scale); this working_size puts the long side between `size` and twice it.
        working = max(1, math.ceil(options.size * short_side / max(1, long_side)))
        image = decode_bytes(
            data, max_bytes=max_bytes, max_pixels=max_pixels, max_decoded_bytes=max_decoded_bytes, working_size=working
        ).image
    return fit_for_reader(image, options)


def fit_for_reader(image: Image.Image, options: ReaderOptions) -> Image.Image:
    """``image``, shrunk to the reader's size on its long side if it is over twice that."""
    if max(image.size) <= 2 * options.size:
        return image
    scale = options.size / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BOX)


def read_text(data: bytes, decoded: DecodedImage, options: ReaderOptions, **limits: int) -> str:
    """The text lines read in the picture of ``data`` (already decoded as ``decoded``)."""
    return load_reader(options).read(reading_picture(data, decoded, options, **limits))
