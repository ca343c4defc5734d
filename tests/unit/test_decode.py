"""Decoding edge cases: every one ends in an RGB image or a clear error."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from visualsearch.errors import DecodeError, ImageTooLarge
from visualsearch.ingest import decode as decode_module
from visualsearch.ingest.decode import decode_bytes, decode_file, shrink, to_rgb
from visualsearch.ingest.fetch import sniff_image_format


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def photo_like(size=(64, 48)) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8), "RGB")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"])
def test_common_formats_decode_to_rgb(fmt):
    decoded = decode_bytes(encode(photo_like(), fmt))
    assert decoded.image.mode == "RGB"
    assert (decoded.width, decoded.height) == (64, 48)
    assert decoded.format == fmt
    assert len(decoded.sha256) == 64
    assert sniff_image_format(encode(photo_like(), fmt)[:32]) == ("TIFF" if fmt == "TIFF" else fmt)


def test_corrupt_file_is_a_clear_error():
    with pytest.raises(DecodeError, match="not a recognised image format"):
        decode_bytes(b"this is not an image at all" * 10)


def test_empty_file_is_a_clear_error():
    with pytest.raises(DecodeError, match="empty"):
        decode_bytes(b"")


def test_truncated_jpeg_is_a_clear_error():
    data = encode(photo_like((400, 300)), "JPEG", quality=95)
    with pytest.raises(DecodeError, match="corrupt or truncated"):
        decode_bytes(data[: len(data) // 2])


def test_one_pixel_image():
    decoded = decode_bytes(encode(Image.new("RGB", (1, 1), (10, 200, 30)), "PNG"))
    assert decoded.image.size == (1, 1)
    assert decoded.image.getpixel((0, 0)) == (10, 200, 30)


def test_decompression_bomb_is_refused_before_decoding():
    data = encode(Image.new("1", (20_000, 10_000)), "PNG")  # 200 MP in a small file
    assert len(data) < 1_000_000
    with pytest.raises(ImageTooLarge, match="megapixels"):
        decode_bytes(data)


def test_pixel_cap_is_configurable():
    data = encode(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(ImageTooLarge):
        decode_bytes(data, max_pixels=5_000)


def test_byte_cap():
    with pytest.raises(ImageTooLarge, match="limit"):
        decode_bytes(encode(photo_like(), "PNG"), max_bytes=100)


def test_cmyk_jpeg():
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # pure red in CMYK
    decoded = decode_bytes(encode(cmyk, "JPEG"))
    r, g, b = decoded.image.getpixel((16, 16))
    assert decoded.image.mode == "RGB" and r > 200 and g < 60 and b < 60


def test_16_bit_png_is_scaled_not_clipped():
    arr = np.tile(np.linspace(0, 65535, 64, dtype=np.uint16), (8, 1))
    image = Image.fromarray(arr)  # mode I;16
    assert image.mode.startswith("I;16")
    decoded = decode_bytes(encode(image, "PNG"))
    row = np.asarray(decoded.image)[0, :, 0]
    assert row[0] < 10 and row[-1] > 245 and 100 < row[32] < 160  # a ramp, not all white


def test_animated_gif_uses_first_frame():
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    decoded = decode_bytes(buf.getvalue())
    r, g, b = decoded.image.getpixel((8, 8))
    assert r > 200 and b < 50


def test_wrong_extension_is_sniffed(tmp_path):
    path = tmp_path / "really-a-png.jpg"
    path.write_bytes(encode(photo_like(), "PNG"))
    assert decode_file(path).format == "PNG"


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    decoded = decode_bytes(encode(image, "JPEG", exif=exif))
    assert decoded.image.size == (20, 40)
    assert (decoded.width, decoded.height) == (20, 40)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "L", "1"])
def test_every_mode_becomes_rgb(mode):
    image = Image.new("RGBA", (8, 8), (0, 0, 0, 0)).convert(mode) if mode != "P" else Image.new("P", (8, 8), 0)
    assert to_rgb(image).mode == "RGB"


def test_transparent_pixels_go_onto_white():
    """Nothing visible: the default backdrop (light content goes onto dark, see test_transparency)."""
    image = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    decoded = decode_bytes(encode(image, "PNG"))
    assert decoded.image.getpixel((4, 4)) == (255, 255, 255)


def test_large_jpeg_is_reduced_for_the_model_but_reports_original_size():
    decoded = decode_bytes(encode(photo_like((2000, 1500)), "JPEG"))
    assert (decoded.width, decoded.height) == (2000, 1500)
    assert min(decoded.image.size) <= 400


def test_heic_through_plugin():
    pillow_heif = pytest.importorskip("pillow_heif")
    if not pillow_heif.libheif_info().get("encoders", {}).get("HEIF"):
        pytest.skip("this libheif build has no HEIF encoder to make a test file")
    decoded = decode_bytes(encode(photo_like(), "HEIF"))
    assert decoded.image.mode == "RGB" and decoded.width == 64


def test_avif():
    from PIL import features

    if not features.check("avif"):
        pytest.skip("Pillow built without AVIF")
    decoded = decode_bytes(encode(photo_like(), "AVIF"))
    assert decoded.image.mode == "RGB" and decoded.format == "AVIF"


def _modes(rgba: Image.Image) -> dict[str, Image.Image]:
    palette = rgba.convert("RGB").quantize(50)
    with_transparency = palette.copy()
    with_transparency.info["transparency"] = 7
    return {
        "RGB": rgba.convert("RGB"),
        "RGBA": rgba,
        "LA": rgba.convert("LA"),
        "L": rgba.convert("L"),
        "P": palette,
        "P+transparency": with_transparency,
        "1": rgba.convert("1"),
        "CMYK": rgba.convert("CMYK"),
    }


@pytest.mark.parametrize("orientation", range(1, 9))
def test_reduced_decoding_gives_the_pixels_of_converting_at_full_size(monkeypatch, orientation):
    """Reducing by strips before converting and turning upright changes no pixel of 8-bit pictures.

    So pixel digests stay what they were when every picture was converted at full size first.
    """
    monkeypatch.setattr(decode_module, "STRIP_PIXELS", 5_000)  # many strips, and a partial last one
    rng = np.random.default_rng(orientation)
    rgba = Image.fromarray(rng.integers(0, 255, (663, 701, 4), dtype=np.uint8), "RGBA")  # 701 % 3 != 0
    for mode, image in _modes(rgba).items():
        upright = image.transpose(decode_module._ORIENTATION[orientation]) if orientation > 1 else image
        expected = shrink(to_rgb(upright), 100)  # reduced 3x by resize itself, then resampled
        got = decode_module.working_rgb(image, 100, orientation)
        assert got.size == expected.size and got.tobytes() == expected.tobytes(), (mode, orientation)


@pytest.mark.slow  # big image
def test_big_picture_gets_the_same_pixel_digest_in_any_lossless_format():
    rng = np.random.default_rng(3)
    rgba = Image.fromarray(rng.integers(0, 255, (1100, 1501, 4), dtype=np.uint8), "RGBA")
    png, webp = decode_bytes(encode(rgba, "PNG")), decode_bytes(encode(rgba, "WEBP", lossless=True))
    assert png.image.size == (437, 320)
    assert png.pixel_sha256 == webp.pixel_sha256 and png.phash == webp.phash
    grey16 = Image.fromarray(rng.integers(0, 65535, (1100, 1501), dtype=np.uint16))
    assert decode_bytes(encode(grey16, "PNG")).pixel_sha256 == decode_bytes(encode(grey16, "TIFF")).pixel_sha256


@pytest.mark.parametrize("size", [(64, 8), (1600, 700)])  # as is, and reduced before scaling
def test_32_bit_greyscale_is_scaled_by_its_own_range(size):
    w, h = size
    ramp = np.tile(np.linspace(-1000.0, 3000.0, w, dtype=np.float32), (h, 1))
    for image in (Image.fromarray(ramp), Image.fromarray(ramp.astype(np.int32))):
        assert image.mode in ("F", "I")
        decoded = decode_bytes(encode(image, "TIFF"))
        row = np.asarray(decoded.image)[0, :, 0].astype(int)
        mid = len(row) // 2
        assert row[0] <= 2 and row[-1] >= 253 and abs(row[mid] - 255 * mid / (len(row) - 1)) <= 2, image.mode
        assert np.all(np.diff(row) >= 0)


def test_flat_16_bit_image_does_not_divide_by_zero():
    decoded = decode_bytes(encode(Image.fromarray(np.full((8, 8), 30000, dtype=np.uint16)), "PNG"))
    assert decoded.image.getpixel((0, 0)) == (117, 117, 117)  # 30000 / 65535 * 255
