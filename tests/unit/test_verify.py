"""The pixel check of candidate copies: copies pass, look-alikes (different pictures) do not.

Pictures are made here from the sample photos in the repository and from drawings made
with Pillow, one per kind of change the duplicate tiers name (README, "Duplicates").
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

from visualsearch.catalog import Asset
from visualsearch.config import Settings
from visualsearch.duplicates.finder import choose_keeper
from visualsearch.duplicates.verify import PixelVerifier, compare, prepare, same_picture
from visualsearch.ingest.decode import decode_bytes
from visualsearch.services import DuplicatesService, Library


def _same(a: Image.Image, b: Image.Image) -> bool:
    # Both ways round: the decision must not depend on which image is A.
    there, back = same_picture(compare(prepare(a), prepare(b))), same_picture(compare(prepare(b), prepare(a)))
    assert there == back, (compare(prepare(a), prepare(b)), compare(prepare(b), prepare(a)))
    return there


def _jpeg(im: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


@pytest.fixture(scope="module")
def photo(photos) -> Image.Image:
    path = next(p for p in photos if p.name == "cat-chelsea.jpg")
    return ImageOps.exif_transpose(Image.open(path)).convert("RGB")


@pytest.fixture(scope="module")
def wide(photos) -> Image.Image:
    path = next(p for p in photos if p.name == "storm-clouds-over-road.jpg")
    return ImageOps.exif_transpose(Image.open(path)).convert("RGB")


def _crop(im: Image.Image, frac: float) -> Image.Image:
    w, h = im.size
    dx, dy = int(w * (1 - frac) / 2), int(h * (1 - frac) / 2)
    return im.crop((dx, dy, w - dx, h - dy))


def _aspect(im: Image.Image, ratio: float) -> Image.Image:
    """The centre crop of ``im`` at ``ratio`` (width / height): an author's other aspect version."""
    w, h = im.size
    if w / h > ratio:
        cw = int(h * ratio)
        return im.crop(((w - cw) // 2, 0, (w - cw) // 2 + cw, h))
    ch = int(w / ratio)
    return im.crop((0, (h - ch) // 2, w, (h - ch) // 2 + ch))


def _letterbox(im: Image.Image) -> Image.Image:
    canvas = Image.new("RGB", (im.width, int(im.width * 9 / 16) if im.width / im.height < 16 / 9 else im.height))
    canvas = Image.new("RGB", (int(im.height * 16 / 9), im.height))
    canvas.paste(im, ((canvas.width - im.width) // 2, 0))
    return canvas


def _banner(im: Image.Image) -> Image.Image:
    im = im.copy()
    band = im.height // 8
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, im.height - band, im.width, im.height), fill=(20, 20, 20))
    draw.text((8, im.height - band + band // 4), "SALE -50% shop.example", fill="white", font=_font(band // 2))
    return im


def _screenshot(im: Image.Image) -> Image.Image:
    """The picture shown in a viewer window: a title bar, a frame and a status line around it."""
    pad, bar = im.width // 20, im.height // 12
    shot = Image.new("RGB", (im.width + 2 * pad, im.height + bar + 2 * pad), (236, 236, 236))
    draw = ImageDraw.Draw(shot)
    draw.rectangle((0, 0, shot.width, bar), fill=(60, 60, 70))
    draw.text((10, bar // 4), "cat.jpg - Image Viewer", fill="white", font=_font(bar // 2))
    shot.paste(im, (pad, bar + pad))
    return shot.resize((shot.width * 3 // 4, shot.height * 3 // 4), Image.Resampling.LANCZOS)


COPIES: dict[str, Callable[[Image.Image], Image.Image]] = {
    "resized to half": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS),
    "re-encoded as JPEG quality 25": lambda im: _jpeg(im, 25),
    "cropped to the middle 80%": lambda im: _crop(im, 0.8),
    "its author's 16:9 version": lambda im: _aspect(im, 16 / 9),
    "letterboxed to 16:9": _letterbox,
    "with a banner": _banner,
    "in a screenshot": _screenshot,
    "turned 6 degrees": lambda im: im.rotate(6, resample=Image.Resampling.BICUBIC, expand=True),
    "brighter": lambda im: ImageEnhance.Brightness(im).enhance(1.3),
    "less saturated": lambda im: ImageEnhance.Color(im).enhance(0.5),
}


@pytest.mark.parametrize("change", list(COPIES))
def test_copies_of_a_photo_are_the_same_picture(photo, change):
    assert _same(photo, COPIES[change](photo)), change


def test_aspect_versions_of_a_wallpaper_are_the_same_picture(wide):
    """Boot backgrounds ship at 16:9 and 4:3, cut from one artwork at other sizes."""
    assert _same(_aspect(wide, 16 / 9).resize((640, 360)), _aspect(wide, 4 / 3).resize((480, 360)))


def _gradient_wallpaper() -> Image.Image:
    """A 16:9 wallpaper that is one smooth gradient: flat enough to be compared as a drawing."""
    x, y = np.meshgrid(np.linspace(0, 1, 1280), np.linspace(0, 1, 720))
    t = 0.8 * x + 0.2 * y
    return Image.fromarray(np.stack([20 + 72 * t, 40 + 120 * t, 70 + 108 * t], axis=2).astype(np.uint8))


def test_aspect_versions_of_a_gradient_wallpaper_are_the_same_picture():
    # Its 16:9 and 4:3 versions are found by sliding one over the other, as for photos.
    wallpaper = _gradient_wallpaper()
    assert _same(wallpaper.resize((640, 360)), _aspect(wallpaper, 4 / 3).resize((480, 360)))
    assert _same(wallpaper.resize((640, 360)), _aspect(wallpaper, 16 / 10).resize((576, 360)))


def test_a_gradient_wallpaper_with_a_logo_is_the_same_picture():
    # A smooth gradient is flat pixel to pixel, but it is not a drawing: it may carry one overlay
    # (the login screen's preview of a wallpaper adds a logo), as photos may.
    wallpaper = _gradient_wallpaper().resize((640, 360))
    preview = wallpaper.copy()
    ImageDraw.Draw(preview).ellipse((280, 140, 360, 220), fill=(230, 230, 235))
    assert _same(wallpaper, preview)


def _hue_turned(im: Image.Image) -> Image.Image:
    r, g, b = im.split()
    return Image.merge("RGB", (g, b, r))


def _night(im: Image.Image) -> Image.Image:
    """A dark, blue version of a picture: what a wallpaper's "-d" variant is to its "-l"."""
    dark = ImageEnhance.Brightness(ImageOps.autocontrast(im)).enhance(0.35)
    return Image.blend(dark, Image.new("RGB", im.size, (10, 20, 80)), 0.4)


def test_colour_and_light_dark_variants_of_a_photo_are_look_alikes(photo, photos):
    assert not _same(photo, _hue_turned(photo))
    assert not _same(photo, _night(photo))
    # Greyscale is a colour variant too; it shows on a colourful photo (a tabby cat is nearly grey).
    flower = Image.open(next(p for p in photos if p.name == "ladybird-on-leaf.jpg")).convert("RGB")
    assert not _same(flower, ImageOps.grayscale(flower).convert("RGB"))


def _repainted(im: Image.Image, turn: float) -> Image.Image:
    """``im`` with a round region in its middle painted another colour: hue turned by ``turn`` degrees
    (fading out at its rim), light kept. What a wallpaper's colour variant does to part of it."""
    lab = cv2.cvtColor(np.asarray(im, np.float32) / 255, cv2.COLOR_RGB2LAB)
    h, w = lab.shape[:2]
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    t = np.radians(turn) * np.exp(-((((x - w / 2) ** 2 + (y - h / 2) ** 2) / (0.12 * w) ** 2) ** 2))
    a, b = lab[..., 1].copy(), lab[..., 2].copy()
    lab[..., 1], lab[..., 2] = a * np.cos(t) - b * np.sin(t), a * np.sin(t) + b * np.cos(t)
    return Image.fromarray((cv2.cvtColor(lab, cv2.COLOR_LAB2RGB).clip(0, 1) * 255).astype(np.uint8))


def test_a_region_painted_another_colour_is_a_look_alike_not_an_overlay(photo, wide):
    """MATE's Cold and Radioactive aurora: one has a violet patch where the other is teal. A changed
    patch passed as an overlay (a logo, a banner); but an overlay replaces the light of what it covers,
    while a colour variant keeps it and turns the hue."""
    for im in (photo, wide):
        assert not _same(im, _repainted(im, 150))
        w, h = im.size
        logo = im.copy()  # a violet disc where the other is repainted: laid over, so a copy
        ImageDraw.Draw(logo).ellipse((w * 0.44, h / 2 - w * 0.06, w * 0.56, h / 2 + w * 0.06), fill=(150, 60, 200))
        assert _same(im, logo)
        bar = im.copy()  # a see-through caption bar in another colour fades what it covers: a copy too
        strip = (0, h - h // 6, w, h)
        bar.paste(Image.blend(im.crop(strip), Image.new("RGB", (w, h // 6), (40, 90, 230)), 0.5), strip[:2])
        assert _same(im, bar)
    assert _same(photo, _repainted(photo, 60))  # measured 53 degrees: under the limit


def _login_screen(lit: tuple[float, float], colour: tuple[int, int, int]) -> Image.Image:
    """A login box, three avatars and a clock over a smooth background in ``colour``, lit at ``lit``
    (shares of its width and height): a theme's login-screen preview."""
    w, h = 1280, 720
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    glow = np.exp(-(((x - lit[0] * w) / (0.45 * w)) ** 2 + ((y - lit[1] * h) / (0.6 * h)) ** 2))[..., None]
    screen = Image.fromarray((np.array(colour, np.float32) * (0.35 + 0.65 * glow)).clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(screen)
    draw.rectangle((540, 330, 740, 360), fill=(235, 235, 240), outline=(90, 140, 220))
    draw.rectangle((540, 370, 740, 392), fill=(225, 225, 225))
    for i in range(3):
        draw.ellipse((520 + i * 90, 200, 580 + i * 90, 260), fill=(60, 60, 70), outline=(200, 200, 200), width=3)
    draw.text((600, 120), "21:57", fill=(240, 240, 240))
    return screen


def test_one_layout_over_two_backgrounds_is_a_look_alike():
    """Debian's joy and spacefun login previews: one login box over a grey background lit in the middle
    and a blue one lit at the right. A chroma gain matched the two within the colour tolerance, but no
    grade maps one lightness onto the other: where one is at one level, the other is at many."""
    screen = _login_screen((0.5, 0.3), (120, 128, 150))
    assert not _same(screen, _login_screen((0.85, 0.6), (110, 120, 150)))
    assert _same(screen, ImageEnhance.Brightness(screen).enhance(1.25))
    assert _same(screen, _jpeg(screen.resize((640, 360)), 60))


def test_another_shot_of_the_same_scene_is_a_look_alike(photo):
    """Two frames of a burst: the subject moved a little."""
    w, h = photo.size
    shifted = photo.copy()
    subject = photo.crop((w // 4, h // 4, w * 3 // 4, h * 3 // 4)).rotate(8, resample=Image.Resampling.BICUBIC)
    shifted.paste(subject, (w // 4 + w // 20, h // 4))
    assert not _same(photo, shifted)


def _traffic_light(lit: str) -> Image.Image:
    im = Image.new("RGBA", (120, 300), (0, 0, 0, 0))
    draw = ImageDraw.Draw(im)
    draw.rounded_rectangle((10, 10, 110, 290), 20, fill=(40, 40, 40, 255))
    colours = {"red": (230, 30, 30), "amber": (240, 170, 20), "green": (30, 200, 60)}
    for i, name in enumerate(colours):
        fill = colours[name] if name == lit else (70, 70, 70)
        draw.ellipse((30, 25 + i * 90, 90, 85 + i * 90), fill=(*fill, 255))
    return im


def _dreidel(letter: str) -> Image.Image:
    im = Image.new("RGBA", (200, 260), (0, 0, 0, 0))
    draw = ImageDraw.Draw(im)
    draw.rectangle((92, 5, 108, 50), fill=(120, 80, 30, 255))
    draw.polygon([(30, 50), (170, 50), (170, 180), (100, 250), (30, 180)], fill=(40, 90, 200, 255))
    draw.text((70, 75), letter, fill=(255, 230, 80, 255), font=_font(80))
    return im


def _clock(hour: int) -> Image.Image:
    im = Image.new("RGB", (240, 240), "white")
    draw = ImageDraw.Draw(im)
    draw.ellipse((10, 10, 230, 230), outline="black", width=6)
    for h in range(12):
        a = math.radians(h * 30)
        draw.line(
            (120 + 95 * math.sin(a), 120 - 95 * math.cos(a), 120 + 105 * math.sin(a), 120 - 105 * math.cos(a)),
            fill="black",
            width=4,
        )
    a = math.radians(hour * 30)
    draw.line((120, 120, 120 + 60 * math.sin(a), 120 - 60 * math.cos(a)), fill="black", width=7)
    draw.line((120, 120, 120, 30), fill="black", width=4)
    return im


def _decoded(im: Image.Image) -> Image.Image:
    """What the library sees: the picture decoded the way indexing decodes it (transparency composited)."""
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return decode_bytes(buf.getvalue()).image


def test_drawings_that_differ_in_one_part_are_look_alikes():
    assert not _same(_decoded(_traffic_light("red")), _decoded(_traffic_light("green")))
    assert not _same(_decoded(_dreidel("N")), _decoded(_dreidel("G")))
    assert not _same(_clock(3), _clock(7))


def test_a_drawing_resized_or_on_another_canvas_is_the_same_picture():
    light = _traffic_light("red")
    assert _same(_decoded(light), _decoded(light.resize((60, 150), Image.Resampling.LANCZOS)))
    canvas = Image.new("RGBA", (300, 400), (0, 0, 0, 0))
    canvas.paste(light, (90, 50))
    assert _same(_decoded(light), _decoded(canvas))
    assert _same(_clock(3), _clock(3).resize((100, 100), Image.Resampling.LANCZOS))


def _grid_icon(bar: int, shift: int = 0) -> Image.Image:
    """A 60 px toolbar icon: a grid of grey bars ``bar`` px thick (the real set's grid and view_grid)."""
    im = Image.new("RGBA", (60, 60), (0, 0, 0, 0))
    draw = ImageDraw.Draw(im)
    for at in (20, 40):
        draw.rectangle((at - bar // 2 + shift, 6, at - bar // 2 + shift + bar - 1, 54), fill=(110, 110, 110, 255))
        draw.rectangle((6 + shift, at - bar // 2, 54 + shift, at - bar // 2 + bar - 1), fill=(110, 110, 110, 255))
    return im


def test_same_size_drawings_with_thicker_lines_are_look_alikes():
    # Each pixel alone is forgiven a one-pixel shift, which hid bars two pixels thicker; the
    # whole drawing moved by a pixel is still a copy.
    assert not _same(_decoded(_grid_icon(3)), _decoded(_grid_icon(5)))
    assert _same(_decoded(_grid_icon(3)), _decoded(_grid_icon(3, shift=1)))
    assert _same(_decoded(_grid_icon(3)), _jpeg(_decoded(_grid_icon(3)), 80))


def _pen_width(height: int) -> Image.Image:
    """A 60 px "pen width" icon: one rounded bar, ``height`` pixels tall (the real set has 20, 22, 25)."""
    im = Image.new("RGBA", (60, 60), (0, 0, 0, 0))
    top = 30 - height // 2
    ImageDraw.Draw(im).rounded_rectangle((5, top, 54, top + height - 1), 3, fill=(50, 50, 50, 255))
    return im


def test_same_size_drawings_with_more_ink_are_look_alikes():
    # A bar 2 pixels taller passes the whole-pixel shift (its edges are a pixel away either way);
    # at the same size nothing is resampled, so a copy keeps its amount of drawing, and this has 10% more.
    assert not _same(_decoded(_pen_width(20)), _decoded(_pen_width(22)))
    assert not _same(_decoded(_pen_width(22)), _decoded(_pen_width(25)))
    assert _same(_decoded(_pen_width(22)), _jpeg(_decoded(_pen_width(22)), 85))


def _line_art(side: int) -> Image.Image:
    """A drawing of 1 px lines and a caption on white: its JPEG copy rings along every line."""
    im = Image.new("RGB", (side, side), "white")
    draw = ImageDraw.Draw(im)
    draw.line((10, 20, side - 10, 40), fill=(0, 0, 0), width=1)
    draw.ellipse((30, 50, side - 30, side - 20), outline=(30, 30, 30), width=1)
    draw.text((15, side - 18), "label", fill=(0, 0, 0))
    return im


@pytest.mark.parametrize("quality", [75, 90])
def test_a_jpeg_copy_of_thin_line_art_is_the_same_picture(quality):
    # JPEG ringing adds "drawing" along thin lines: that alone must not make a copy another drawing.
    for side in (100, 150):
        assert _same(_line_art(side), _jpeg(_line_art(side), quality)), (side, quality)


def _white_art(shape: str) -> Image.Image:
    """White artwork on a transparent background, like the MATE abstract wallpapers."""
    im = Image.new("RGBA", (400, 300), (0, 0, 0, 0))
    draw = ImageDraw.Draw(im)
    if shape == "circle":
        draw.ellipse((100, 50, 300, 250), fill=(255, 255, 255, 255))
    elif shape == "waves":
        for y in range(40, 300, 50):
            draw.line([(x, y + 20 * math.sin(x / 30)) for x in range(0, 400, 4)], fill=(255, 255, 255, 255), width=12)
    else:
        draw.polygon(
            [
                (200, 20),
                (250, 130),
                (370, 130),
                (270, 200),
                (310, 290),
                (200, 230),
                (90, 290),
                (130, 200),
                (30, 130),
                (150, 130),
            ],
            fill=(255, 255, 255, 210),
        )
    return im


def test_transparent_artworks_that_differ_in_their_opaque_parts_are_not_copies(photo, embedder, tmp_path):
    """Through the whole pipeline: indexing, candidates from the model, the pixel check, the groups."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    for shape in ("circle", "waves", "star"):
        _white_art(shape).save(folder / f"white-{shape}.png")
    photo.save(folder / "cat.jpg", quality=92)
    photo.resize((photo.width // 2, photo.height // 2)).save(folder / "cat-small.jpg", quality=85)
    library = Library(Settings.from_env(tmp_path / "library"), embedder=embedder)
    try:
        library.index_folder(folder)
        groups = DuplicatesService(library).duplicates()
        names = [sorted(Path(m.asset.source).name for m in [g.keeper, *g.others]) for g in groups]
        assert names == [["cat-small.jpg", "cat.jpg"]]
        assert groups[0].keeper_reason.startswith("largest")
    finally:
        library.close()


def test_lookalike_groups_list_each_picture_once(photo, embedder, tmp_path):
    """A copy is not a look-alike of its original: Similar shots shows the keeper only."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    photo.save(folder / "cat.jpg", quality=92)
    photo.resize((photo.width // 2, photo.height // 2)).save(folder / "cat-small.jpg", quality=85)
    _hue_turned(photo).save(folder / "cat-teal.jpg", quality=92)
    library = Library(Settings.from_env(tmp_path / "library"), embedder=embedder)
    try:
        library.index_folder(folder)
        service = DuplicatesService(library)
        assert [sorted(Path(m.asset.source).name for m in [g.keeper, *g.others]) for g in service.duplicates()] == [
            ["cat-small.jpg", "cat.jpg"]
        ]
        for group in service.lookalikes(threshold=0.3):
            members = {Path(m.asset.source).name for m in [group.keeper, *group.others]}
            assert "cat-small.jpg" not in members
            assert all(m.kind == "lookalike" for m in group.others)
    finally:
        library.close()


def test_unreadable_or_blank_pictures_are_never_near_duplicates():
    blank = Image.new("RGB", (200, 200), "white")
    pictures = {1: blank, 2: blank.copy()}
    verifier = PixelVerifier(lambda asset: pictures.get(asset.id))
    one, two, gone = (Asset(id=i, sha256=f"{i:064x}") for i in (1, 2, 3))
    assert not verifier.verdict(one, two).same  # blank: no evidence (identical blank files are exact copies)
    assert not verifier.verdict(one, gone).same  # cannot be read
    assert verifier.unreadable == 1


def test_verdicts_are_remembered_between_runs(photo):
    loads: list[int] = []

    def load(asset: Asset) -> Image.Image:
        loads.append(asset.id)
        return photo if asset.id == 1 else photo.resize((photo.width // 2, photo.height // 2))

    verifier = PixelVerifier(load, cache=0)
    a, b = Asset(id=1, sha256="a" * 64), Asset(id=2, sha256="b" * 64)
    assert verifier.verdict(a, b).same and verifier.checked == 1
    assert verifier.verdict(b, a).same and verifier.checked == 1  # same files: not compared again
    assert loads == [1, 2]


def test_an_id_given_out_again_is_not_compared_as_the_old_picture(photo, photos):
    # The catalog gives an id out again once its asset is deleted or trashed; a server's verifier
    # lives on. The new picture there, a copy of the photo, was compared with the old file's picture.
    other = ImageOps.exif_transpose(Image.open(next(p for p in photos if p.name != "cat-chelsea.jpg"))).convert("RGB")
    files = {"a" * 64: photo, "b" * 64: other, "c" * 64: photo.resize((photo.width // 2, photo.height // 2))}
    verifier = PixelVerifier(lambda asset: files[asset.sha256 or ""])
    keeper, old = Asset(id=1, sha256="a" * 64), Asset(id=7, sha256="b" * 64)
    assert not verifier.verdict(keeper, old).same
    new = Asset(id=7, sha256="c" * 64)  # id 7 again, after the old file went to the trash
    assert verifier.verdict(keeper, new).same


def _asset(asset_id: int, width: int, height: int, size: int, mtime: float) -> Asset:
    return Asset(
        id=asset_id,
        source=f"/p/{asset_id}.jpg",
        width=width,
        height=height,
        byte_size=size,
        mtime=mtime,
        added_at=datetime(2026, 1, 1, tzinfo=UTC),
        status="indexed",
    )


def test_keeper_rule_and_reason():
    big = _asset(1, 4000, 3000, 2_000_000, 200.0)
    small = _asset(2, 2000, 1500, 3_000_000, 100.0)
    keeper, reason = choose_keeper([small, big])
    assert keeper is big and reason.startswith("largest: 4000×3000")
    light = _asset(3, 2000, 1500, 900_000, 100.0)
    heavy = _asset(4, 2000, 1500, 2_500_000, 300.0)
    keeper, reason = choose_keeper([light, heavy])
    assert keeper is heavy and "least compressed" in reason
    older = _asset(5, 2000, 1500, 1_000_000, 50.0)
    newer = _asset(6, 2000, 1500, 1_010_000, 60.0)
    keeper, reason = choose_keeper([newer, older])
    assert keeper is older and reason == "all the same size, 2000×1500; oldest (1970-01-01)"
    # The same age, sizes within the 5% margin: the larger file, and the reason says so
    # (it said "same file size and age, lowest id"); sizes this close are told apart.
    card = _asset(9, 140, 190, 7_384, 70.0)
    card_larger = _asset(10, 140, 190, 7_537, 70.0)
    keeper, reason = choose_keeper([card, card_larger])
    assert keeper is card_larger
    assert reason == "all the same size, 140×190; as old as the others; larger file (7,537 bytes vs 7,384 bytes)"
    twin = _asset(11, 140, 190, 7_537, 70.0)
    keeper, reason = choose_keeper([twin, card_larger])
    assert keeper is card_larger and reason.endswith("; as old as the others; same file size, lowest id")
    # Oldest together with some: the tie is broken among those only (newer copies may have lower ids).
    newer_lower_id = _asset(3, 140, 190, 7_600, 90.0)
    keeper, reason = choose_keeper([twin, newer_lower_id, card_larger])
    assert keeper is card_larger
    assert (
        reason
        == "all the same size, 140×190; oldest (1970-01-01, 1 other(s) as old); of those, same file size, lowest id"
    )
    tiny = _asset(7, 1000, 750, 500_000, 10.0)
    keeper, reason = choose_keeper([newer, older, tiny])
    assert keeper is older and reason == "2 at the largest size, 2000×1500; oldest (1970-01-01)"


def test_verdicts_outlive_the_process_in_the_catalog(photo, tmp_path):
    """The next `visualsearch duplicates` run checks only pairs it has not seen."""
    from tests.support.embedders import TinyEmbedder

    library = Library(Settings.from_env(tmp_path / "library"), embedder=TinyEmbedder())
    try:
        loads: list[int] = []

        def load(asset: Asset) -> Image.Image:
            loads.append(asset.id)
            return photo if asset.id == 1 else photo.resize((photo.width // 2, photo.height // 2))

        a, b = Asset(id=1, sha256="a" * 64), Asset(id=2, sha256="b" * 64)
        library.catalog.verdicts.add("pixels-0", {("c" * 64, "d" * 64): True})  # an older check's verdict
        first = PixelVerifier(load, store=library.catalog.verdicts)
        assert first.verdict(a, b).same
        first.flush()
        second = PixelVerifier(load, store=library.catalog.verdicts)  # a new run, as in a new process
        assert second.verdict(b, a).same and second.checked == 0 and loads == [1, 2]
        assert library.catalog.verdicts.all("another-method") == {}  # a new check version starts afresh
        assert library.catalog.verdicts.all("pixels-0") == {}  # and the older one's rows are gone
        assert library.catalog.verdicts.forget() == 1  # the benchmark's fresh start: every pair checked again
        third = PixelVerifier(load, store=library.catalog.verdicts)
        assert third.verdict(a, b).same and third.checked == 1
    finally:
        library.close()


def test_small_lossless_pictures_are_checked_from_their_file(tmp_path):
    """JPEG previews made flat drawings look like photos to the check; a small PNG is read whole."""
    from tests.support.embedders import TinyEmbedder
    from visualsearch.ingest.decode import decode_file
    from visualsearch.services.assets import AssetService, preview_verifier

    folder = tmp_path / "pics"
    folder.mkdir()
    _decoded(_dreidel("N")).save(folder / "small.png")  # 200x260, lossless
    _clock(3).resize((900, 900)).save(folder / "large.png")  # over LOSSLESS_SIDE: its preview
    _clock(5).save(folder / "photo.jpg", quality=90)  # a JPEG: its preview is no worse
    library = Library(Settings.from_env(tmp_path / "library"), embedder=TinyEmbedder())
    try:
        library.index_folder(folder)
        verifier = preview_verifier(library)
        by_name = {Path(a.source).name: a for a in library.catalog.indexed_assets().values()}
        previews = AssetService(library)

        def pixels(image: Image.Image) -> bytes:
            return image.convert("RGB").tobytes()

        small = by_name["small.png"]
        assert pixels(verifier._load(small)) == pixels(decode_file(folder / "small.png").image)
        for name in ("large.png", "photo.jpg"):
            with Image.open(previews.thumbnail(by_name[name])) as preview:
                assert pixels(verifier._load(by_name[name])) == pixels(preview)
        # A file rewritten since indexing: what was indexed is its preview.
        _decoded(_dreidel("G")).save(folder / "small.png", optimize=True)
        assert (folder / "small.png").stat().st_size != small.byte_size
        with Image.open(previews.thumbnail(small)) as preview:
            assert pixels(verifier._load(small)) == pixels(preview)
    finally:
        library.close()


def _soft_dot(peak: int) -> Image.Image:
    """A 21 px progress dot: a soft white spot on a dark field (Plymouth themes ship them)."""
    yy, xx = np.mgrid[-10:11, -10:11]
    spot = np.exp(-(xx**2 + yy**2) / 12.0)
    return Image.fromarray((32 + (peak - 32) * spot).astype(np.uint8)).convert("RGB")


def test_tiny_drawings_get_no_lightness_room():
    # At 21 px the 10% gain drawings get, with the one-pixel tolerance, passed a dot 25% brighter.
    assert not _same(_soft_dot(252), _soft_dot(197))
    assert _same(_soft_dot(252), _soft_dot(246))  # the same dot, rendered a shade differently


def test_a_drawing_that_is_a_part_of_a_bigger_drawing_is_not_its_copy():
    # "debian" was claimed a copy of the "debian 12" logo with its swirl: it is in there, whole.
    dreidel = _dreidel("N")
    alone = Image.new("RGB", (240, 300), (30, 30, 30))
    alone.paste(dreidel, (20, 20), dreidel)
    with_more = Image.new("RGB", (460, 300), (30, 30, 30))
    with_more.paste(dreidel, (20, 20), dreidel)
    ImageDraw.Draw(with_more).rectangle((300, 120, 459, 180), fill=(230, 230, 230))  # reaches the edge
    assert not _same(alone, with_more)
    # A crop cuts through the content at its frame: still a copy (the synthetic set's 80% crops).
    assert _same(alone, alone.crop((20, 25, 225, 280)))


def _boot_background(width: int, height: int) -> Image.Image:
    """A dark boot background: faint wide shapes (under the plain-side tolerance) on navy, a small
    bright logo a fixed way in from the bottom-left corner and a swirl from the right edge, as its
    author lays out each aspect version."""
    x, y = np.meshgrid(np.arange(width) / height, np.arange(height) / height)
    cx = width / height / 2
    shapes = 7 * (np.hypot(x - cx + 0.5, y - 0.1) < 0.45) + 5 * (np.hypot(x - cx - 0.6, y - 1.0) < 0.5)
    im = Image.fromarray(np.stack([8 + shapes, 10 + shapes, 40 + shapes], axis=2).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    s = height / 720
    draw.text((80 * s, height - 120 * s), "debian", fill=(200, 200, 220), font=_font(round(40 * s)))
    draw.arc(
        (width - 260 * s, height - 300 * s, width - 100 * s, height - 140 * s),
        30,
        330,
        fill=(90, 100, 140),
        width=round(12 * s),
    )
    return im


def test_a_boot_background_on_a_faint_backdrop_is_compared_whole():
    # Its sides look plain, but the background has texture away from the logo: it is a wallpaper
    # (compared whole, as a photo), not a logo on a canvas cut down to the logo.
    wide = prepare(_boot_background(1920, 1080))
    assert wide.backdrop and wide.size == (160, 90)
    assert _same(_boot_background(1920, 1080), _boot_background(640, 480))
    assert _same(_boot_background(1920, 1080), _boot_background(1280, 800))
    # Its small copy is prepared the same way (it was cut to its logo under 360 px high).
    small = _boot_background(1920, 1080).resize((480, 270), Image.Resampling.LANCZOS)
    assert prepare(small).backdrop
    assert _same(_boot_background(1920, 1080), small)


def test_an_upload_of_a_boot_background_is_checked_as_the_library_checks_it(tmp_path):
    # Decoding shrinks a big upload (1920x1080 arrives as 569x320): the check prepares it as the library
    # prepares the original, a backdrop (it is told the real size; with the 360 px floor of pixels-10
    # and no size, the upload was cut to its logo and the copy missed).
    from tests.support.embedders import TinyEmbedder

    folder = tmp_path / "pictures"
    folder.mkdir()
    _boot_background(1920, 1080).save(folder / "grub-16x9.png")
    library = Library(Settings.from_env(tmp_path / "library", decode_workers=1), embedder=TinyEmbedder())
    try:
        library.index_folder(folder)
        buf = io.BytesIO()
        _boot_background(1920, 1080).resize((1600, 900), Image.Resampling.LANCZOS).save(buf, "JPEG", quality=88)
        matches = DuplicatesService(library).check(decode_bytes(buf.getvalue()))
        assert [(Path(m.asset.source).name, m.kind) for m in matches] == [("grub-16x9.png", "near_duplicate")]
    finally:
        library.close()


def test_a_drawing_with_a_soft_shadow_on_a_wide_canvas_is_still_a_drawing():
    # The soft shadow and antialiasing around a drawing are not a textured background.
    art = Image.new("RGBA", (1200, 800), (0, 0, 0, 0))
    shadow = Image.new("L", (1200, 800), 0)
    ImageDraw.Draw(shadow).ellipse((470, 270, 770, 570), fill=90)
    art.putalpha(shadow.filter(ImageFilter.GaussianBlur(12)))
    ImageDraw.Draw(art).ellipse((450, 250, 750, 550), fill=(220, 40, 40, 255))
    p = prepare(_decoded(art))
    assert not p.backdrop and p.drawing


def _sizes_library(photo: Image.Image, tmp_path: Path) -> Library:
    """A library of one photo at six sizes: fifteen candidate pairs of copies (the tiny model's vectors)."""
    from tests.support.embedders import TinyEmbedder

    folder = tmp_path / "sizes"
    folder.mkdir()
    for n, side in enumerate((640, 560, 480, 400, 320, 240)):
        photo.resize((side, side * photo.height // photo.width)).save(folder / f"cat-{n}.jpg", quality=90)
    library = Library(Settings.from_env(tmp_path / "library"), embedder=TinyEmbedder())
    library.index_folder(folder)
    return library


def test_a_stopped_duplicates_run_keeps_the_verdicts_it_found(photo, tmp_path, monkeypatch):
    """A server stopping (or Ctrl-C) in a long first run: it stops after the chunk of pairs in hand,
    and the pairs checked are not checked again."""
    import visualsearch.duplicates.finder as finder
    from visualsearch.duplicates import CheckStopped
    from visualsearch.duplicates.verify import METHOD

    library = _sizes_library(photo, tmp_path)
    try:
        monkeypatch.setattr(finder, "CHECK_CHUNK", 2)
        monkeypatch.setattr(finder, "FLUSH_EVERY", 2)
        asked = 0

        def stop() -> bool:
            nonlocal asked
            asked += 1
            return asked > 2  # after two chunks

        with pytest.raises(CheckStopped):
            DuplicatesService(library).duplicates(stop=stop)
        assert len(library.catalog.verdicts.all(METHOD)) == 4
        again = DuplicatesService(library)
        [group] = again.duplicates()
        assert group.size == 6 and again.pairs_checked == 15 - 4
    finally:
        library.close()


def test_one_copies_job_at_a_time_and_it_runs_again_for_pictures_added_meanwhile(photo, tmp_path):
    """A folder job that ends while the copy check runs does not queue a second check (it would wait
    for the first in the other worker, holding the queue up): the running one runs once more."""
    from visualsearch.catalog import DONE, RUNNING
    from visualsearch.services.jobs import COPIES, JobQueue

    library = _sizes_library(photo, tmp_path)
    try:
        queue = JobQueue(library)  # not started: jobs are run here, one at a time
        job = queue.ensure_copy_check()
        assert job is not None and queue.ensure_copy_check().id == job.id  # queued: it will see everything
        assert library.catalog.jobs.claim_next() == job.id
        runs = 0
        check = queue.duplicates.duplicates

        def duplicates(**kwargs):
            nonlocal runs
            runs += 1
            if runs == 1:  # a folder job ends meanwhile
                assert queue.ensure_copy_check().id == job.id
            return check(**kwargs)

        queue.duplicates.duplicates = duplicates  # type: ignore[method-assign]
        queue._run(job.id)
        assert runs == 2 and queue.get(job.id).status == DONE
        assert [j.id for j in queue.list() if j.kind == COPIES] == [job.id]
        # Stopped with the server: left running, so the next start runs it again.
        library.catalog.verdicts.forget()  # forget the verdicts, and the groups: there is work again
        queue.duplicates = DuplicatesService(library)
        second = queue.ensure_copy_check()
        assert second is not None and second.id != job.id
        library.catalog.jobs.claim_next()
        queue._stop.set()
        queue._run(second.id)
        assert queue.get(second.id).status == RUNNING
    finally:
        library.close()


def test_a_copies_job_left_from_before_does_nothing_with_the_setting_off(photo, tmp_path):
    from visualsearch.catalog import DONE
    from visualsearch.services.jobs import COPIES, JobQueue

    library = _sizes_library(photo, tmp_path)
    try:
        job = library.catalog.jobs.add("left", COPIES, {}, 0)
        library.settings = library.settings.model_copy(update={"copies_at_index": False})
        queue = JobQueue(library)
        assert queue.ensure_copy_check() is None
        library.catalog.jobs.claim_next()
        queue._run(job.id)
        assert queue.get(job.id).status == DONE and queue.duplicates.pairs_checked == 0
    finally:
        library.close()


def test_a_request_during_a_duplicates_run_waits_for_it_rather_than_checking_again(photo, tmp_path):
    """The copy check after indexing runs in a job; the Duplicates tab asking meanwhile gets its result."""
    from concurrent.futures import ThreadPoolExecutor

    library = _sizes_library(photo, tmp_path)
    try:
        service = DuplicatesService(library)
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(lambda _: service.duplicates(), range(2))
        assert first is second and first[0].size == 6
        assert service.verifier().checked == 15  # each pair once
    finally:
        library.close()


@contextmanager
def _indexed(folder: Path, tmp_path: Path) -> Iterator[tuple[dict[str, Asset], PixelVerifier]]:
    """``folder`` indexed into a new library: its assets by file name, and the library's pixel check."""
    from tests.support.embedders import TinyEmbedder
    from visualsearch.services.assets import preview_verifier

    library = Library(Settings.from_env(tmp_path / "library"), embedder=TinyEmbedder())
    try:
        library.index_folder(folder)
        yield {Path(a.source).name: a for a in library.catalog.indexed_assets().values()}, preview_verifier(library)
    finally:
        library.close()


def _alpha_picture(colour: int, alpha: np.ndarray) -> Image.Image:
    rgba = np.zeros((*alpha.shape, 4), np.uint8)
    rgba[..., :3] = colour
    rgba[..., 3] = np.clip(alpha * 255, 0, 255).astype(np.uint8)
    return Image.fromarray(rgba)


def test_pictures_drawn_in_their_alpha_match_in_it_to_be_copies(tmp_path):
    """MATE's Stripes Dark (black, mostly opaque) and Stripes Light (white, mostly clear): each on
    its own backdrop they look alike, so only their alpha bands tell them apart. A copy at another
    opacity, a resized copy and a copy flattened onto white remain copies."""
    yy, xx = np.mgrid[0:768, 0:1024]
    stripes = (np.sin((xx + 0.6 * yy) / 40.0) + 1) / 2 * np.clip(yy / 768 + 0.3, 0, 1)  # 0-1, over LOSSLESS_SIDE
    folder = tmp_path / "pics"
    folder.mkdir()
    _alpha_picture(0, 0.95 - 0.5 * stripes).save(folder / "stripes-dark.png")
    _alpha_picture(255, 0.05 + 0.5 * stripes * 0.8).save(folder / "stripes-light.png")
    art = _alpha_picture(0, 0.95 - 0.5 * stripes)
    faded = np.asarray(art).copy()
    faded[..., 3] = (faded[..., 3] * 0.71).astype(np.uint8)  # the same picture at 71% opacity
    Image.fromarray(faded).save(folder / "stripes-dark-faded.png")
    art.resize((512, 384), Image.Resampling.LANCZOS).save(folder / "stripes-dark-small.png")
    flat = Image.new("RGBA", art.size, "white")
    flat.alpha_composite(art)
    flat.convert("RGB").save(folder / "stripes-dark-flat.jpg", quality=92)
    with _indexed(folder, tmp_path) as (by_name, verifier):
        dark, light = by_name["stripes-dark.png"], by_name["stripes-light.png"]
        # On colour alone (the previews, composited) the two pass as one picture ...
        assert same_picture(compare(verifier.prepared(dark), verifier.prepared(light)))
        # ... but not once their alpha bands are compared.
        verdict = verifier.verdict(dark, light)
        assert verdict.comparison is not None and verdict.comparison.alpha > 0.5
        assert not verdict.same
        for copy in ("stripes-dark-faded.png", "stripes-dark-small.png", "stripes-dark-flat.jpg"):
            verdict = verifier.verdict(dark, by_name[copy])
            assert verdict.same, (copy, verdict.comparison)


def _map(borders: bool) -> Image.Image:
    """A 1000 px map: a green country outlined in black, with or without 1 px state borders."""
    im = Image.new("RGB", (1000, 800), "white")
    draw = ImageDraw.Draw(im)
    outline = [(120, 200), (420, 90), (760, 160), (900, 420), (720, 700), (380, 720), (150, 560)]
    draw.polygon(outline, fill=(110, 170, 120), outline=(0, 0, 0), width=4)
    if borders:
        for line in ([(420, 90), (470, 720)], [(150, 380), (880, 330)], [(470, 400), (760, 650)]):
            draw.line(line, fill=(0, 0, 0), width=1)
    return im


@contextmanager
def _edited_and_resized(
    tmp_path: Path, drawing: Image.Image, edited: Image.Image, size: tuple[int, int]
) -> Iterator[tuple[Asset, Asset, Asset, PixelVerifier]]:
    """A drawing, an edited version and a copy resized to ``size``, indexed as PNG files: their assets
    and the library's pixel check (which reads the files for its second look)."""
    folder = tmp_path / "drawings"
    folder.mkdir()
    drawing.save(folder / "drawing.png")
    edited.save(folder / "edited.png")
    drawing.resize(size, Image.Resampling.LANCZOS).save(folder / "resized.png")
    with _indexed(folder, tmp_path) as (by_name, verifier):
        yield by_name["drawing.png"], by_name["edited.png"], by_name["resized.png"], verifier


def test_drawings_that_differ_in_thin_lines_get_a_second_look_at_a_finer_size(tmp_path):
    """At the working size a map's 1 px state borders are averaged away; the second look, from the
    files at FINE_SIZE, sees them. A resized copy of the map passes both looks."""
    with _edited_and_resized(tmp_path, _map(False), _map(True), (700, 560)) as (plain, states, small, verifier):
        coarse = compare(verifier.prepared(plain), verifier.prepared(states))
        assert coarse.graphic and same_picture(coarse)  # at SIZE the borders are not there
        verdict = verifier.verdict(plain, states)
        assert verdict.comparison is not None and verdict.comparison.fine
        assert not verdict.same
        verdict = verifier.verdict(plain, small)
        assert verdict.same, verdict.comparison


def _beads(outlined: bool) -> Image.Image:
    """36 green beads on a 333 px sheet, with or without a 1 px darker outline: a flower whose leaves
    are outlined in one drawing and not in the other (openclipart's red_flower 01 and 03)."""
    im = Image.new("RGB", (333, 333), "white")
    draw = ImageDraw.Draw(im)
    for i in range(6):
        for j in range(6):
            x, y = 30 + i * 48, 30 + j * 48
            draw.ellipse((x, y, x + 36, y + 36), fill=(40, 140, 40), outline=(15, 85, 15) if outlined else None)
    return im


def test_the_shift_a_drawing_may_differ_by_falls_as_it_grows(tmp_path):
    """One-pixel outlines move a sixth of a 60 px icon (re-rendered copies differ that much) but far
    less of a 333 px drawing: there, outlines added all over are another drawing. A resized copy passes."""
    with _edited_and_resized(tmp_path, _beads(False), _beads(True), (200, 200)) as (plain, outlined, small, verifier):
        assert same_picture(compare(verifier.prepared(plain), verifier.prepared(outlined)))  # not seen at SIZE
        verdict = verifier.verdict(plain, outlined)
        c = verdict.comparison
        assert c is not None and c.fine and not verdict.same
        assert c.changed <= 0.005 and 0.03 < c.shifted < 0.15  # only the shift, and only at this size
        assert verifier.verdict(plain, small).same


def _faint_wallpaper(shapes: list[tuple[int, int, int, int]], size: tuple[int, int] = (1920, 1080)) -> Image.Image:
    """A dark boot background: navy, with faint shapes a few levels lighter (Debian's homeworld grub)."""
    im = Image.new("RGB", size, (3, 4, 12))
    draw = ImageDraw.Draw(im)
    for x0, y0, x1, y1 in shapes:
        draw.ellipse((x0, y0, x1, y1), fill=(7, 10, 19))
    return im


def test_faint_wallpapers_are_compared_by_their_faint_shapes():
    """A background whose shapes are a few levels apart was blank to the check (spread under
    MIN_SPREAD), so its 16:9 and 4:3 versions were never found; stretched, they are copies, and a
    faint background with other shapes is not."""
    shapes = [(-300, -500, 700, 300), (1300, 600, 2300, 1500), (200, 700, 500, 1000)]
    wide = _faint_wallpaper(shapes)
    narrow = wide.crop((240, 0, 1680, 1080)).resize((640, 480), Image.Resampling.LANCZOS)  # the 4:3 version
    other = _faint_wallpaper([(900, -400, 1900, 400), (-200, 500, 600, 1300)])
    pw, pn, po = prepare(wide), prepare(narrow), prepare(other)
    assert pw.faint and pn.faint and po.faint and pw.informative
    assert _same(wide, narrow)
    assert not _same(wide, other)
    blank = Image.new("RGB", (1920, 1080), (3, 4, 12))
    assert not prepare(blank).informative and not _same(blank, blank.resize((640, 360)))


def _with_corners(background: Image.Image, size: tuple[int, int], logo: int, emblem: int) -> Image.Image:
    """``background`` scaled to ``size``, with a logo in the top left and an emblem in the bottom right
    drawn at their own size (``logo``, ``emblem`` px wide), as boot backgrounds lay out each aspect."""
    im = background.resize(size, Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(im)
    draw.rectangle((12, 12, 12 + logo, 12 + logo // 3), fill=(240, 240, 250))
    draw.text((16, 14), "debian", fill=(200, 30, 60), font=_font(logo // 5))
    w, h = size
    draw.ellipse((w - emblem - 10, h - emblem - 10, w - 10, h - 10), fill=(250, 200, 40), outline=(90, 40, 0), width=4)
    return im


def test_aspect_versions_with_a_logo_and_an_emblem_in_two_corners_are_the_same_picture(wide):
    """Two overlays far apart (each within half the one overlay's room) are a copy; two big new
    objects in two places are another picture."""
    background = _aspect(wide, 16 / 9)
    sixteen = _with_corners(background, (640, 360), logo=90, emblem=60)
    four = _with_corners(_aspect(wide, 4 / 3), (480, 360), logo=90, emblem=60)
    assert _same(sixteen, four)
    busy = sixteen.copy()
    draw = ImageDraw.Draw(busy)
    draw.ellipse((330, 140, 560, 350), fill=(40, 90, 200), outline=(10, 10, 60), width=5)  # a globe, 15% of it
    draw.polygon([(60, 120), (250, 170), (90, 330)], fill=(40, 160, 60))  # and an arrow
    assert not _same(sixteen, busy)


def _window_icon() -> Image.Image:
    """A round badge with a window and a dot on white, touching the four sides of its 240 px canvas."""
    im = Image.new("RGB", (240, 240), "white")
    draw = ImageDraw.Draw(im)
    draw.ellipse((0, 0, 239, 239), fill=(200, 200, 200), outline=(50, 50, 50), width=10)
    draw.rectangle((50, 60, 190, 170), fill=(240, 240, 240), outline=(50, 50, 50), width=10)
    draw.rectangle((50, 60, 190, 95), fill=(120, 120, 120))
    draw.ellipse((100, 115, 140, 155), fill=(40, 120, 200))
    return im


def _framed(icon: Image.Image) -> Image.Image:
    """``icon`` shrunk to 75% inside a heavy dashed frame, on a white canvas of its size (flat-theme's autodiff)."""
    w, h = icon.size
    out = Image.new("RGB", (w, h), "white")
    out.paste(icon.resize((w * 3 // 4, h * 3 // 4), Image.Resampling.LANCZOS), (w // 8, h // 8))
    draw = ImageDraw.Draw(out)
    t, e = w // 16, 4  # thickness, and a margin: the canvas stays plain at its sides
    for x in range(e, w - e - 13, 20):
        draw.rectangle((x, e, x + 13, e + t), fill=(40, 40, 40))
        draw.rectangle((x, h - 1 - e - t, x + 13, h - 1 - e), fill=(40, 40, 40))
    for y in range(e, h - e - 13, 20):
        draw.rectangle((e, y, e + t, y + 13), fill=(40, 40, 40))
        draw.rectangle((w - 1 - e - t, y, w - 1 - e, y + 13), fill=(40, 40, 40))
    return out


def test_a_drawing_inside_a_frame_is_another_drawing():
    """The same drawing with a frame drawn around it overlaps only part of the framed one's content
    (GRAPHIC_MIN_COVER); on a bigger canvas without a frame it is still a copy."""
    icon = _window_icon()  # drawn to its edges, as flat-theme's icons are: not a "part" (_part_of)
    framed = _framed(icon)
    comparison = compare(prepare(icon), prepare(framed))
    assert comparison.graphic and comparison.canvas and not comparison.part
    assert min(comparison.cover_a, comparison.cover_b) < 0.8 and comparison.changed <= 0.005
    assert not _same(icon, framed)
    roomy = Image.new("RGB", (300, 300), "white")
    roomy.paste(icon, (30, 30))
    assert _same(icon, roomy)
