"""Read the words in a picture being indexed (OCR), from a copy large enough to read them.

The picture the model and fingerprints use is reduced to about 320 px on its short side
(:data:`.decode.WORKING_SIZE`): enough to tell what is in it, too small for a screenshot's
or a poster's text. The reader therefore gets its own decode of the same bytes, at about
the reader's size (:attr:`~visualsearch.models.ocr.ReaderOptions.size`); pictures that the
working decode did not reduce are read as they are. The reader sees the same upright,
transparency-composited picture as the model.
"""

from __future__ import annotations

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
    """The picture to read: ``decoded.image`` when it is full size, else a decode at the reader's size."""
    if decoded.image.size == (decoded.width, decoded.height):
        return decoded.image
    # working_size keeps the short side at least `size` (JPEGs decode at a cheaper DCT scale): the
    # reader then shrinks the long side to `size` itself.
    return decode_bytes(
        data, max_bytes=max_bytes, max_pixels=max_pixels, max_decoded_bytes=max_decoded_bytes, working_size=options.size
    ).image


def read_text(data: bytes, decoded: DecodedImage, options: ReaderOptions, **limits: int) -> str:
    """The text lines read in the picture of ``data`` (already decoded as ``decoded``)."""
    return load_reader(options).read(reading_picture(data, decoded, options, **limits))
