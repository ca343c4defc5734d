"""Transparent pictures: composited onto a backdrop that keeps their content visible (issue 14).

White artwork on transparent used to go onto white: a blank picture, the same for
the model, the perceptual hash and the thumbnail as every other such artwork.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from visualsearch.ingest import decode as decode_module
from visualsearch.ingest.decode import (
    DARK_BACKDROP,
    LIGHT_BACKDROP,
    choose_backdrop,
    decode_bytes,
    shrink,
    to_rgb,
    working_pixels,
)
from visualsearch.ingest.fingerprint import hamming
from visualsearch.ingest.media import write_thumbnail

WHITE = (255, 255, 255, 255)


def png(image: Image.Image, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", **kwargs)
    return buf.getvalue()


def circle(d: ImageDraw.ImageDraw, w: int, h: int, fill=WHITE) -> None:
    d.ellipse((w // 4, h // 4, 3 * w // 4, 3 * h // 4), fill=fill)


def square(d: ImageDraw.ImageDraw, w: int, h: int, fill=WHITE) -> None:
    d.rectangle((w // 8, h // 8, w // 2, h // 2), fill=fill)


def on_transparent(size=(256, 256), draw=circle, colour=WHITE) -> Image.Image:
    """A white (or ``colour``) shape on a fully transparent canvas."""
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    draw(ImageDraw.Draw(image), *size, fill=colour)
    return image


def pattern(w: int, h: int) -> np.ndarray:
    """A deterministic opaque RGB picture (no random generator, whose stream may change)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 7 + y * 3) % 256, (x * y) % 251, (x ^ y) % 256], axis=-1).astype(np.uint8)


def test_white_artworks_on_transparent_are_told_apart():
    a = decode_bytes(png(on_transparent(draw=circle)))
    b = decode_bytes(png(on_transparent(draw=square)))
    assert a.image.tobytes() != b.image.tobytes()
    assert a.pixel_sha256 != b.pixel_sha256
    assert hamming(a.phash, b.phash) > 20  # the duplicate finder counts hashes within 12 bits as close


def test_white_on_transparent_is_not_blank(tmp_path):
    decoded = decode_bytes(png(on_transparent()))
    assert decoded.image.getpixel((0, 0)) == DARK_BACKDROP
    assert decoded.image.getpixel((128, 128)) == (255, 255, 255)
    assert np.asarray(decoded.image, dtype=float).std() > 80
    thumbnail = Image.open(write_thumbnail(tmp_path, decoded.sha256, decoded.image)).convert("RGB")
    assert np.asarray(thumbnail, dtype=float).std() > 80


def test_dark_or_coloured_logo_stays_on_white():
    for colour in ((0, 0, 0, 255), (168, 0, 48, 255), (40, 90, 200, 255)):  # black, Debian red, blue
        decoded = decode_bytes(png(on_transparent(colour=colour)))
        assert decoded.image.getpixel((0, 0)) == (255, 255, 255), colour
        assert decoded.image.getpixel((128, 128)) == colour[:3]


def test_mixed_content_and_empty_pictures_go_onto_white():
    half = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    half.paste(WHITE, (0, 0, 64, 256))
    half.paste((0, 0, 0, 255), (128, 0, 192, 256))  # white and black, equally (a tie: white)
    assert choose_backdrop(half) == LIGHT_BACKDROP
    empty = Image.new("RGBA", (16, 16), (255, 255, 255, 0))  # white hidden in transparent pixels
    assert choose_backdrop(empty) == LIGHT_BACKDROP
    assert decode_bytes(png(empty)).image.getpixel((8, 8)) == (255, 255, 255)


def test_light_content_goes_dark_in_proportion_to_its_alpha():
    """The measure weights by alpha: a faint white veil over much black stays on white."""
    image = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    image.paste((255, 255, 255, 20), (0, 0, 100, 80))  # 8000 faint white pixels
    image.paste((0, 0, 0, 255), (0, 80, 100, 100))  # 2000 opaque black ones
    assert choose_backdrop(image) == LIGHT_BACKDROP
    image.paste((255, 255, 255, 255), (0, 0, 100, 80))
    assert choose_backdrop(image) == DARK_BACKDROP


@pytest.mark.parametrize("size", [(96, 64), (1400, 1300)])  # as is, and reduced by strips
def test_colour_hidden_in_transparent_pixels_does_not_matter(monkeypatch, size):
    monkeypatch.setattr(decode_module, "STRIP_PIXELS", 50_000)
    w, h = size
    plain = on_transparent(size, draw=square)
    hidden = np.asarray(plain).copy()
    transparent = hidden[..., 3] == 0
    hidden[transparent, :3] = pattern(w, h)[transparent]  # what an editor may leave behind
    a, b = decode_bytes(png(plain)), decode_bytes(png(Image.fromarray(hidden, "RGBA")))
    assert a.image.tobytes() == b.image.tobytes()
    assert a.pixel_sha256 == b.pixel_sha256 and a.phash == b.phash
    iw, ih = a.image.size
    assert a.image.getpixel((iw * 3 // 10, ih * 3 // 10)) == (255, 255, 255)  # inside the square
    assert a.image.getpixel((iw - 1, ih - 1)) == DARK_BACKDROP


def test_alpha_counts_where_content_matches_the_backdrop():
    """White content on a white backdrop: only the alpha band tells the pictures apart."""
    opaque_white = Image.new("RGBA", (256, 256), (0, 0, 0, 255))  # black, so onto white
    opaque_white.paste(WHITE, (0, 0, 256, 40))
    transparent_white = opaque_white.copy()
    transparent_white.paste((255, 255, 255, 0), (0, 0, 256, 40))  # same colour, now see-through
    assert choose_backdrop(opaque_white) == choose_backdrop(transparent_white) == LIGHT_BACKDROP
    a, b = decode_bytes(png(opaque_white)), decode_bytes(png(transparent_white))
    assert a.alpha is None and b.alpha is not None  # the first is opaque after all
    assert a.image.tobytes() == b.image.tobytes()
    assert a.pixel_sha256 != b.pixel_sha256


def test_every_transparent_mode_gets_the_same_backdrop():
    """Alpha bands (premultiplied too), and a transparent palette entry, grey level or colour."""
    rgba = on_transparent(draw=circle)  # binary alpha, so every mode holds it exactly
    rgb = rgba.convert("RGB")
    palette = rgb.quantize(2)
    palette.info["transparency"] = palette.getpixel((0, 0))
    keyed = {"L": rgba.convert("L"), "1": rgba.convert("1"), "RGB": rgb.copy()}
    for mode, image in keyed.items():
        image.info["transparency"] = (0, 0, 0) if mode == "RGB" else 0
    expected = to_rgb(rgba)
    assert expected.getpixel((0, 0)) == DARK_BACKDROP
    premultiplied = (rgba.convert("RGBa"), rgba.convert("LA").convert("La"))
    for image in (rgba.convert("LA"), rgba.convert("PA"), *premultiplied, palette, *keyed.values()):
        assert to_rgb(image).tobytes() == expected.tobytes(), image.mode
    for image in (rgba.convert("LA"), palette, *keyed.values()):  # PNG cannot hold PA, La or RGBa
        decoded = decode_bytes(png(image))
        assert decoded.image.tobytes() == expected.tobytes(), image.mode
        assert decoded.pixel_sha256 == decode_bytes(png(rgba)).pixel_sha256, image.mode


def _light_below_dark_above(size=(701, 663)) -> Image.Image:
    """Light overall, but the top rows alone are dark: a strip-by-strip choice would differ."""
    w, h = size
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    d = ImageDraw.Draw(image)
    d.rectangle((0, 0, w, h // 6), fill=(10, 10, 60, 255))
    for i in range(8):  # white and pale shapes, partly see-through
        d.ellipse(
            (i * w // 9, h // 4 + i * 20, i * w // 9 + w // 5, h // 4 + i * 20 + h // 3),
            fill=(255, 250, 240, 90 + i * 20),
        )
    return image


@pytest.mark.parametrize("orientation", [1, 6, 3])
@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_strips_give_the_backdrop_of_the_whole_picture(monkeypatch, orientation, mode):
    image = _light_below_dark_above().convert(mode)
    assert choose_backdrop(image) == DARK_BACKDROP
    assert choose_backdrop(image.crop((0, 0, 701, 100))) == LIGHT_BACKDROP
    upright = image.transpose(decode_module._ORIENTATION[orientation]) if orientation > 1 else image
    expected = shrink(to_rgb(upright), 100)
    expected_alpha = shrink(upright.getchannel("A"), 100)
    monkeypatch.setattr(decode_module, "STRIP_PIXELS", 5_000)  # many strips, and a partial last one
    assert choose_backdrop(image) == DARK_BACKDROP
    for working_size in (100, None):  # reduced by strips, and flattened by strips at full size
        rgb, alpha = working_pixels(image, working_size, orientation)
        want = expected if working_size else to_rgb(upright)
        assert rgb.tobytes() == want.tobytes(), (mode, orientation, working_size)
        assert alpha is not None
        want_alpha = expected_alpha if working_size else upright.getchannel("A")
        assert alpha.size == rgb.size and alpha.tobytes() == want_alpha.tobytes()


# Pixel digests of opaque pictures, computed before transparency counted: catalogs rely on them.
OPAQUE_DIGESTS = {
    "small RGB": "e08745e64782978cd177f62039cd2913821f9e67437215f992a9dfc8e8b07b59",
    "small RGBA, all opaque": "e08745e64782978cd177f62039cd2913821f9e67437215f992a9dfc8e8b07b59",
    "small L": "3e3caa3077b5932542eafb9602d113fe86f45114b8856fde2de01ee3cd6cfd6d",
    "big RGB": "750285a64a78d86356ce26b075712557a0cb28d6b4d1e1943db285d4285e3eba",
    "big RGBA, all opaque": "750285a64a78d86356ce26b075712557a0cb28d6b4d1e1943db285d4285e3eba",
}


def test_opaque_pixel_digests_are_unchanged():
    small, big = Image.fromarray(pattern(64, 48), "RGB"), Image.fromarray(pattern(1000, 700), "RGB")
    images = {
        "small RGB": small,
        "small RGBA, all opaque": small.convert("RGBA"),
        "small L": small.convert("L"),
        "big RGB": big,
        "big RGBA, all opaque": big.convert("RGBA"),
    }
    for name, image in images.items():
        decoded = decode_bytes(png(image))
        assert decoded.alpha is None, name
        assert decoded.pixel_sha256 == OPAQUE_DIGESTS[name], name
