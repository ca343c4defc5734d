"""Pictures with words in them (a sign on a photo), for the text-reading (OCR) tests."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from tests.support.paths import TEST_PHOTOS

#: A font every Debian machine with Pillow's test dependencies has; Pillow's own font otherwise.
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.truetype(str(FONT), size) if FONT.exists() else ImageFont.load_default(size)


def with_sign(photo: str, words: str, size: tuple[int, int] = (800, 600), text_height: float = 0.07) -> Image.Image:
    """The repository photo ``photo`` (file name) resized to ``size``, with a light sign reading ``words``
    across its middle in dark letters ``text_height`` of the picture's height tall."""
    image = Image.open(TEST_PHOTOS / photo).convert("RGB").resize(size)
    draw = ImageDraw.Draw(image)
    letters = font(max(8, round(size[1] * text_height)))
    left, top, right, bottom = draw.textbbox((0, 0), words, font=letters)
    w, h = right - left, bottom - top
    x, y = (size[0] - w) // 2, (size[1] - h) // 2
    pad = max(4, h // 3)
    draw.rectangle((x - pad, y - pad, x + w + pad, y + h + pad), fill=(248, 246, 236))
    draw.text((x - left, y - top), words, font=letters, fill=(25, 25, 25))
    return image
