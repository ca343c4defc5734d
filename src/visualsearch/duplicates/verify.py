"""Confirm or reject a candidate pair of copies by looking at the pixels.

Why: the vector index and perceptual hashes only say that two pictures *look
alike*. Different pictures that share a layout (a red and a green traffic light,
dreidels with another letter, the light and dark versions of a wallpaper, a
clock showing another hour) are as close there as a resized copy. The decision
"same picture or not" needs the pixels, compared where they overlap once the two
images are aligned.

How (each step chosen by measurement on ``benchmarks/data/duplicates_real``, the labelled
real set, and the synthetic transformed-copies set, both in ``benchmarks/duplicates.py``):

1. Both images are taken from their previews at a small working size (longest side
   ``SIZE``), in CIELAB (perceptual colour: "another colour" means what a person sees).
   A small drawing on a big canvas is first cut to its content. A screen-shaped picture whose
   plain-looking sides hide a textured background (a dark boot background with faint shapes
   and a small logo) is a wallpaper, a **backdrop**: it is kept whole.
2. Each picture is classed: a **drawing** (clip art, icon, logo: a plain canvas on all four
   sides, a flat picture such as a flag or a card, or anything under ``ICON_SIDE``) or a
   **photo** (photos, wallpapers, screenshots). A pair is compared as drawings when both are
   on a canvas, either is flat, or either is tiny, and neither is a backdrop.
3. Several ways of laying one image over the other are tried, each an affine map: stretch
   to the same size (within ``MAX_STRETCH``: a drawing 5% taller is another drawing); content
   box onto content box (another canvas or margin); for photos and full-bleed drawings, fit the
   width or height and slide (letterboxes, aspect versions); ORB features with RANSAC (crops, rotations up to
   ``MAX_ROTATION``, screenshots). The cheapest measure ranks them; the best is examined.
4. Photos may differ by a mild global grade, fitted robustly and bounded (``PHOTO_GRADE``,
   ``MAX_GRADE``: a light and a dark rendition of a wallpaper is not a mild edit); drawings
   by a lightness gain within 10% (``GRAPHIC_GRADE``; none under ``ICON_SIDE``). The per-pixel
   difference forgives a one-pixel shift (resampling seams).
5. Decision. The overlap must hold ``MIN_COVER`` of each picture's content (plain borders and
   bars do not count), and a whole drawing that is only a part of a bigger one (a wordmark
   without its logo) is not its copy. A photo may carry one overlay (the box around every changed patch,
   up to ``MAX_OVERLAY``: a banner, logo or watermark) and otherwise differ in at most
   ``MAX_CHANGED`` of its pixels at ``PHOTO_DELTA_E``. A drawing may differ in at most
   ``GRAPHIC_MAX_CHANGED`` of its content (measured after a light smoothing, so JPEG noise
   does not count) and in no patch over ``GRAPHIC_MAX_PATCH``: another letter, hour, lamp or
   colour of a part is a look-alike. Two drawings of the same size must also match when one is
   moved by at most a pixel as a whole (``GRAPHIC_MAX_SHIFTED``, less for bigger drawings) and, on
   a canvas, hold as much drawing as each other (``GRAPHIC_MIN_MASS``): thicker lines are another
   drawing. Two drawings on a
   canvas overlap in ``GRAPHIC_MIN_COVER`` of each one (a frame around one is another drawing); a
   photo may carry two smaller overlays instead of one (``_overlay_boxes``), and an overlay changes the
   light: a patch that kept it in another hue is a region painted anew (``RECOLOURED_TURN``); elsewhere
   each level of light maps to one level (``MAX_UNEXPLAINED``: one layout over two backgrounds does not).
6. Only for pairs that pass: two pictures with transparency must match in their alpha bands
   (``MAX_ALPHA_CHANGED``), and two drawings bigger than ``SIZE`` get a second look at
   ``FINE_SIZE`` (thin lines). Both read the files, which the previews spare the other pairs.
   A faint picture (``FAINT_SPREAD``) is compared with its contrast stretched.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Generic, Protocol, TypeVar

import cv2
import numpy as np
from PIL import Image

from ..catalog import Asset

K = TypeVar("K")
V = TypeVar("V")

#: Longest side, in pixels, at which pairs are compared.
SIZE = 160
#: Two drawings that pass at SIZE, both larger than it, get a second look at up to this size, from
#: their files, with the same limits: at 160 px the thin lines that make another drawing (a map
#: with and without its state borders, a lace edge, a rind's width, another crown on a chess piece)
#: are averaged away. On the real set this took near-duplicate precision from 0.965 to 0.979
#: (14 look-alike pairs claimed to 8) and recall from 0.951 to 0.941: the pairs it no longer
#: finds are labelled "tiny redraw" and "tiny local edit" (a line moved, a mark added), which
#: at 400 px differ like any other edit. Synthetic recall went from 0.968 to 0.967 (a few
#: photos on plain backgrounds are compared as drawings).
FINE_SIZE = 400


@dataclass(frozen=True)
class Grade:
    """Limits of a global colour grade: lightness gain range, lightness offset, chroma gain range."""

    gain: tuple[float, float]
    offset: float
    chroma: tuple[float, float]


#: CIELAB distance above which a pixel counts as changed (about "clearly another colour").
DELTA_E = 12.0
#: The same for photos, whose grades (brightness scaling, clipped highlights) are only roughly
#: the affine grade fitted here.
PHOTO_DELTA_E = 20.0
#: A picture has a plain background when this share of its border pixels has one colour.
BACKGROUND_BORDER = 0.8
#: Smoothing (Gaussian sigma, pixels at SIZE) before measuring how much of a drawing changed.
SMOOTH = 0.7
#: When even the best layout differs in this share of its pixels, the pair is two pictures.
CLEARLY_DIFFERENT = 0.35
#: Largest change of proportions between two copies laid over each other (rounding of sizes).
MAX_STRETCH = 0.03
#: Limits of a "mild" global grade (lightness gain, lightness offset, chroma gain), for photos
#: and for graphics. A photo edited to black and white or re-graded is still the same photo;
#: a drawing in another colour (a grey folder icon and a cyan one, a black and a blue LED) is
#: an author's colour variant, which pixels cannot tell from a re-grade, so graphics get
#: almost no grading room: a lightness gain within 10%, and no colour change. That little took
#: the relabelled real set's near-duplicate recall from 0.756 to 0.885 (precision 0.901 to 0.910):
#: a logo at 71% opacity, or lighter grey, is the same logo; 0.8-1.25 also passed a progress dot's
#: "on" and "off" states.
PHOTO_GRADE = Grade(gain=(0.55, 1.8), offset=30.0, chroma=(0.25, 2.2))
GRAPHIC_GRADE = Grade(gain=(0.9, 1.11), offset=0.0, chroma=(1.0, 1.0))
#: Pictures under ICON_SIDE on both sides get none: at 21 px that gain and the one-pixel tolerance
#: together passed a progress dot 25% brighter than another.
NO_GRADE = Grade(gain=(1.0, 1.0), offset=0.0, chroma=(1.0, 1.0))
#: A picture is a drawing (clip art, icon, logo, cut-out) when its content covers less than this
#: share of it, the rest being a plain background; photos and wallpapers fill the frame.
DRAWING_INK = 0.95
#: ... or when at least this share of its pixels sit in flat areas (3x3 neighbourhood within
#: FLAT_SPREAD in CIELAB): playing cards, flags, diagrams fill the frame but are drawn.
GRAPHIC_FLAT_SHARE = 0.35
FLAT_SPREAD = 1.0
#: ... unless under this share of it is flat over five pixels: a smooth gradient (a wallpaper, whose
#: login-screen preview adds a logo) is not a drawing. Gradient wallpapers have about 0.02, the real
#: set's cards and flags 0.2-0.33.
MIN_UNIFORM = 0.1
#: Flatness is measured after this much smoothing (Gaussian sigma, pixels at SIZE): the previews
#: the check reads are JPEGs, whose noise made a playing card's flat areas 0.31 flat instead of
#: 0.73, so cards and flags were compared as photos and a card with one pip more passed as a copy.
#: On the real set this took near-duplicate precision from 0.699 to 0.716 at the same recall.
FLAT_SMOOTH = 0.7
#: Pictures this small (shorter side, in pixels) are icons: compared as graphics whatever their
#: flat share, which antialiasing makes meaningless at 16-32 px.
ICON_SIDE = 64
#: A drawing whose content box covers less than this share of its canvas is cut to it first.
SMALL_CONTENT = 0.25
#: ... and one whose content covers less than this is a speck (a bullet hole on an empty page):
#: too little to tell copies from look-alikes, so only exact copies count.
MIN_CONTENT = 0.015
#: A screen-shaped picture (landscape, SCREEN_ASPECT, at least BACKDROP_SIDE high in the original,
#: as low as an icon: a wallpaper's small copy must be prepared as the wallpaper is)
#: whose plain-looking sides hide a textured background is a wallpaper, a backdrop: compared whole,
#: as a photo. Textured: more than BACKDROP_TEXTURE of its background pixels at least
#: BACKDROP_AWAY pixels (at SIZE) from the content are off the background colour by BACKDROP_DELTA.
#: Nearer the content, a drawing's antialiasing, soft shadow and the JPEG ringing of its preview
#: are not texture: measured all over, 38 clip-art pictures of the real set (clocks, smileys,
#: crowns) were backdrops and their variants passed as copies; from 8 pixels away, 3 (two maps
#: and a magnolia on a textured ground). Before this, the real set's boot backgrounds (dark navy
#: with faint shapes, within DELTA_E of the sides) were cut down to their logo, and their 16:9 and
#: 4:3 versions, laid out anew, never matched: near-duplicate recall went from 0.894 to 0.941.
BACKDROP_SIDE = 64
SCREEN_ASPECT = (1.24, 1.8)
BACKDROP_TEXTURE = 0.05
BACKDROP_DELTA = 2.0
BACKDROP_AWAY = 8
#: The decision for pictures that fill the frame (photos, wallpapers): the overlap holds at
#: least MIN_COVER of each picture's content, and apart from one overlay (the box around every
#: changed patch: a logo, banner, watermark or caption bar, up to MAX_OVERLAY of the picture) at
#: most MAX_CHANGED of it differs. Another shot, a light/dark variant or a card with more pips
#: differs all over.
MIN_COVER = 0.55
#: Two drawings on a canvas must overlap in more of each other: a whole drawing next to the same
#: drawing with a frame around it (flat-theme's diff and autodiff icons: 0.575) is another icon. On
#: the real set the other drawings that pass overlap in 0.878 or more; no synthetic verdict changed.
GRAPHIC_MIN_COVER = 0.8
#: ... and a whole drawing found entire (WHOLE of it) inside a bigger drawing that has more than
#: 1 - PART_COVER of its content elsewhere is a part of it (see _part_of).
WHOLE = 0.95
PART_COVER = 0.8
MAX_CHANGED = 0.03
#: ... or two overlays far apart, each within half of it (see _overlay_boxes). On the real set that
#: found the boot backgrounds whose 16:9 and 4:3 versions keep a logo and an emblem at their own size
#: in two corners (recall 0.944 -> 0.960); with no limit on each, three envelope icons that add a
#: globe and an arrow passed too. Synthetic recall 0.967 -> 0.969, precision 1.000.
MAX_OVERLAY = 0.2
#: A grade that changes lightness and colour this much together (|ln gain| + |ln chroma gain|)
#: is another rendition (a wallpaper's light and dark versions), not a mild edit; the strongest
#: single edits of the synthetic set (contrast 0.6, saturation 0.3) stay under it.
MAX_GRADE = 1.3
#: A photo's overlay is laid over it: a logo, banner, caption or watermark replaces what was there,
#: or, see-through, fades it toward its own colour (the contrast under a bar at 50% is halved). A
#: changed region that kept the picture's light, with the same contrast (lightness correlated by
#: KEPT_LIGHT, spreads within KEPT_CONTRAST of each other, over all the changed patches together) but
#: another hue, turned by RECOLOURED_TURN degrees or more, is a region painted another colour: a
#: colour variant, not a copy. The turn is the median over the changed pixels with HUE_CHROMA of
#: chroma in both (at least HUE_SHARE of them), faded rims included, so it reads less than the edit's
#: angle: a region turned by 150 degrees measures 90-125, one turned by 90 measures 45-90.
#: MATE's Cold and Radioactive aurora (a violet patch in one is teal in the other: 88 degrees,
#: lightness correlated 0.98, spreads 1.08 apart) passed as copies, and so did photos with a region's
#: hue turned. A grade bends hue only where it clips, and clipping flattens the light: the synthetic
#: set's brightness and contrast copies turn such patches by at most 65 degrees. Bars and boxes of
#: colour at 45-50% over the test photos change the spread by about 2 (their hue turns 86-166 degrees).
#: On the real set this took near-duplicate precision from 0.985 to 0.987 at the same recall; no
#: synthetic verdict changed. Asked only of photos that pass otherwise, and not of faint ones
#: (stretched noise).
KEPT_LIGHT = 0.8
KEPT_CONTRAST = 1.25
HUE_CHROMA = 8.0
HUE_SHARE = 0.2
RECOLOURED_TURN = 75.0
#: A grade, however strong, maps each level of light to one level: a copy's lightness is a function of
#: the other's, outside its overlay. Two pictures with one layout over different backgrounds are not:
#: pixels at one level in one are at many levels in the other. Measured as the mean distance (CIELAB
#: lightness) of one picture's lightness (smoothed by LIGHT_SMOOTH, pixels at SIZE) from the median of
#: its pixels that are at the same level in the other (LIGHT_LEVELS bins of equal count). Each bin spans
#: some light, so a picture against itself measures about 0.8, ordinary copies 0.9-1.4 and a banner
#: copy 2.2. Both ways are asked and the larger kept: one way alone, the test's two login screens
#: measure 4.9; clipping (a copy much lighter) makes the way back worse, up to 2.9 on the test photos.
#: Over MAX_UNEXPLAINED, the pair is two pictures. The joy and spacefun login screens (one login box
#: over a grey and over a blue background, which one chroma gain matched within the colour tolerance)
#: are at 6.8; the real set's copies at most 4.4 (boot backgrounds redrawn for another aspect), the
#: synthetic set's 3.3 (flipped copies, reported apart, 4.6). Asked as RECOLOURED_TURN is.
LIGHT_SMOOTH = 2.0
LIGHT_LEVELS = 16
MAX_UNEXPLAINED = 5.5
#: Below this mean chroma (CIELAB a*b* length) a picture is nearly grey: no chroma gain is fitted.
FAINT_CHROMA = 6.0
#: Changed patches smaller than this share of the content are specks, not part of an overlay.
SPECK = 0.002
#: For drawings no overlay is allowed: another letter, hour or expression is one small patch.
#: At most GRAPHIC_MAX_CHANGED of the content differs, in patches of at most GRAPHIC_MAX_PATCH.
GRAPHIC_MAX_CHANGED = 0.005
GRAPHIC_MAX_PATCH = 0.003
#: Two same-size drawings may differ in at most this share of their content at the best whole-pixel
#: shift. The per-pixel measure above forgives each pixel a shift of its own, which also forgives
#: thicker lines. On the real set: a grid of thicker bars, dots of another size and a redrawn pen
#: differ in 0.16-0.30; re-rendered copies of icons (anti-aliasing) in up to 0.13, and so do the
#: pen-width icons 8, 9 and 10 (0.12-0.13), which this cannot tell apart. Synthetic copies: 0.03.
#: That is for an icon (up to ICON_SIDE). A re-rendering moves outlines by a pixel, and the share of a
#: drawing that this moves is its outline over its area, which falls as the drawing grows: the limit
#: falls with the side compared (the square root of its area) beyond ICON_SIDE. Two red flowers of
#: 333 px, one with outlines on its leaves, differed in 0.0375 at that size (1.3x its limit there);
#: the copies that pass reach 0.84x theirs (the 60 px icons above), the synthetic set's 0.44x.
GRAPHIC_MAX_SHIFTED = 0.15
#: ... and, both on a plain canvas, must hold as much drawing as each other, within this ratio (the
#: summed lightness distance from the background over the overlap): at the same size a copy keeps
#: its ink, and a thicker line adds some. On the real set, same-size copies that pass otherwise are
#: at 0.934-1.0; the pen widths 8/9 and 9/10 at 0.89 and 0.90, edit vs kate (a heavier frame) at
#: 0.83. Each is measured from its own background (one may carry a lightness gain), and only on a
#: canvas, where there is a background: no synthetic verdict changed.
GRAPHIC_MIN_MASS = 0.92
#: ... asked only when the whole-pixel shift leaves some doubt: JPEG ringing around thin lines adds
#: "drawing" too (a 1 px line drawing and its JPEG copy: mass 0.86-0.91, shifted 0), while the pen
#: widths and edit vs kate leave 0.09-0.13 at the best shift.
SHIFT_DOUBT = 0.05
#: Images with less spread than this in lightness and colour (blank, or nearly one colour)
#: carry no evidence; two of them are only ever exact copies.
MIN_SPREAD = 2.0
#: ... unless over FAINT_SPREAD: such a faint picture is compared with its contrast stretched to
#: STRETCH_SPREAD (about an ordinary picture's), as a photo (its flat areas are dark, not drawn),
#: not taken for blank. On the real set Debian's homeworld boot background (navy, its shapes a few
#: levels apart: spread 1.1-1.3) and its 4:3 version were never found; now they are, and no new pair
#: of different pictures passes (near-duplicate recall 0.941 -> 0.944).
FAINT_SPREAD = 0.5
STRETCH_SPREAD = 15.0
#: Two pictures with transparency must also match in it: their alpha bands, laid over each other as the
#: pictures are, may differ by more than ALPHA_DELTA (opacity 0-1, after forgiving a one-pixel shift) in
#: at most MAX_ALPHA_CHANGED of their visible overlap (where either is over ALPHA_VISIBLE). The colour
#: check sees each picture on its backdrop (chosen from its opaque pixels), so two pictures drawn only
#: in their alpha (MATE's Stripes Dark, black at 85% opacity, and Stripes Light, white at 11%) looked
#: alike there. A copy flattened onto a background has no alpha left and is not asked.
#: A copy may be a whole opacity step lighter, down to ALPHA_GAIN of the other (the Debian logo
#: at 71% opacity beside the emblem is labelled a copy; Stripes Light has 13% of Dark's).
ALPHA_DELTA = 0.25
ALPHA_GAIN = 0.6
ALPHA_VISIBLE = 0.1
MAX_ALPHA_CHANGED = 0.05
#: Pictures prepared at FINE_SIZE kept for their other pairs (few pairs get the second look).
FINE_CACHE = 32
#: Largest rotation, in degrees, between copies aligned by features.
MAX_ROTATION = 20.0
#: Every how many overlap pixels the layouts are ranked and the grade fitted.
SAMPLE = 3
#: ORB features and RANSAC settings.
ORB_FEATURES = 500
MIN_INLIERS = 12


@dataclass
class Prepared:
    """One image ready for comparison: CIELAB float32 and grey uint8 at the working size."""

    lab: np.ndarray
    grey: np.ndarray
    box: tuple[int, int, int, int]  # content box (x0, y0, x1, y1)
    #: 1 where the picture has content: off its plain background, if it has one (else everywhere).
    ink: np.ndarray
    #: Share of pixels in flat areas (3x3 neighbourhood): many for drawings, cards and icons, few
    #: for photos; a smooth gradient is flat at this scale too.
    flat: float
    #: ORB keypoints and descriptors, computed on first use and kept for the image's other pairs.
    features: tuple[tuple[cv2.KeyPoint, ...], np.ndarray | None] | None = field(default=None, repr=False)
    #: Share of the preview that the content box covered (before cutting a small drawing to it).
    content_share: float = 1.0
    #: Share of pixels in flat 5x5 neighbourhoods: the uniform areas of a flag or a card; a
    #: gradient wallpaper changes too much over five pixels and has almost none.
    uniform: float = 1.0
    #: How many of its four sides are one plain colour (4: a canvas; 0: a photo, or a decorated frame).
    plain_sides: int = 0
    #: A wallpaper on a textured background (see BACKDROP_SIDE): compared as a photo, whatever its flatness.
    backdrop: bool = False
    #: Stretched from a faint picture (see FAINT_SPREAD): compared as a photo, whatever its flatness.
    faint: bool = False
    #: The part of the whole picture this shows (x0, y0, x1, y1, as shares of its width and height):
    #: a small drawing is cut to its content; an alpha band read later is cut the same way.
    window: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    #: Opacity (0-1, float32, the size of ``lab``) of a picture with transparency, once read
    #: (:meth:`PixelVerifier.verdict` reads it only for pairs that pass on colour); None otherwise.
    alpha: np.ndarray | None = field(default=None, repr=False)
    #: Whether the alpha band was asked for (None above then means: the picture is opaque).
    alpha_read: bool = False

    def set_alpha(self, band: Image.Image | None) -> None:
        """Lay ``band`` (the whole picture's alpha, any size) over this picture, through its window."""
        if band is not None:
            x0, y0, x1, y1 = self.window
            w, h = band.size
            band = band.crop((round(x0 * w), round(y0 * h), max(1, round(x1 * w)), max(1, round(y1 * h))))
            band = band.resize(self.size, Image.Resampling.BOX)
            self.alpha = np.asarray(band, dtype=np.float32) / 255.0
        self.alpha_read = True

    @property
    def canvas(self) -> bool:
        """All four sides are one plain colour: a drawing, icon or cut-out on a canvas."""
        return self.plain_sides == 4

    @property
    def enclosed(self) -> bool:
        """A whole drawing: on a canvas, with a margin on every side (its frame cuts nothing of it)."""
        x0, y0, x1, y1 = self.box
        w, h = self.size
        return self.canvas and x0 > 0 and y0 > 0 and x1 < w and y1 < h

    @property
    def drawn_flat(self) -> bool:
        """Flat like a drawing (a flag, a card, a diagram), not a smooth gradient."""
        return self.flat >= GRAPHIC_FLAT_SHARE and self.uniform >= MIN_UNIFORM

    @property
    def drawing(self) -> bool:
        """A drawing, icon or cut-out on a plain (or transparent) background, not a full-bleed picture."""
        return self.canvas and float(self.ink.mean()) < DRAWING_INK

    @cached_property
    def informative(self) -> bool:
        """Enough to compare: not blank, and not a speck on an empty canvas. Computed once per picture:
        asked for every pair it is in, it was a sixth of a duplicates run."""
        spread = float(cv2.meanStdDev(self.lab)[1].max())
        return spread >= MIN_SPREAD and self.content_share >= MIN_CONTENT

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.grey.shape
        return w, h


@dataclass(frozen=True)
class Comparison:
    """How well B, laid over A the best way found, matches it."""

    changed: float  # share of the content (in the overlap) that differs after alignment and grading
    cover_a: float  # share of A the overlap covers
    cover_b: float  # share of B the overlap covers
    layout: str  # which alignment won
    gain: float  # fitted lightness gain
    offset: float
    chroma: float
    blob: float  # the largest connected changed area, as a share of the content
    graphic: bool = False  # compared as drawings (no grading room, stricter limits)
    overlay: float = 0.0  # the box around every changed patch, as a share of the overlap
    outside: float = 0.0  # what differs outside that box, as a share of the content
    shifted: float = -1.0  # same-size pictures: changed share at the best whole-pixel shift (-1: not same size)
    part: bool = False  # one is a whole drawing that makes only a part of the other drawing
    mass: float = 1.0  # same-size drawings that pass otherwise: the smaller amount of drawing over the larger
    alpha: float = 0.0  # both with transparency: share of the visible overlap whose opacity differs
    #: Photos that pass otherwise: the hue turn of changed patches that kept their light (degrees; 0: none).
    recoloured: float = 0.0
    #: ... and how far the lightness is from a function of the other's, outside the overlay (see MAX_UNEXPLAINED).
    unexplained: float = 0.0
    fine: bool = False  # measured at FINE_SIZE (the second look at two drawings)
    canvas: bool = False  # both on a canvas (all four sides plain)
    side: float = 0.0  # the side at which they were compared (square root of the smaller one's area, pixels)


def prepare(image: Image.Image, size: int = SIZE, frame: tuple[int, int] | None = None) -> Prepared:
    """Shrink (never enlarge) to ``size`` on the longest side and convert to CIELAB.

    A small drawing on a big canvas is first cut to its content (plus a margin), so that
    it is compared at the working size rather than as a speck: the canvas around it is
    what a copy on another canvas changes anyway. A backdrop (see BACKDROP_SIDE) is kept whole;
    ``frame`` is the original's size (width, height) when ``image`` is a preview of it.
    """
    rgb = image.convert("RGB")
    prepared = _prepare(rgb, size)
    if _screen(frame or rgb.size) and _texture(prepared) > BACKDROP_TEXTURE:  # the test only for screen shapes
        return _backdrop(prepared)
    x0, y0, x1, y1 = prepared.box
    w, h = prepared.size
    share = (x1 - x0) * (y1 - y0) / (w * h)
    if share < SMALL_CONTENT:
        fx, fy = rgb.width / w, rgb.height / h
        margin = max(2.0, 0.05 * max(x1 - x0, y1 - y0))
        crop = (
            max(0, round((x0 - margin) * fx)),
            max(0, round((y0 - margin) * fy)),
            min(rgb.width, round((x1 + margin) * fx)),
            min(rgb.height, round((y1 + margin) * fy)),
        )
        if crop[2] - crop[0] >= 8 and crop[3] - crop[1] >= 8:
            prepared = _prepare(rgb.crop(crop), size)
            prepared.window = (crop[0] / rgb.width, crop[1] / rgb.height, crop[2] / rgb.width, crop[3] / rgb.height)
    prepared.content_share = share
    return prepared


def _screen(frame: tuple[int, int]) -> bool:
    """Shaped like a screen: landscape, 5:4 to 16:9, at least BACKDROP_SIDE high (a boot or desktop background)."""
    w, h = frame
    return h >= BACKDROP_SIDE and SCREEN_ASPECT[0] <= w / h <= SCREEN_ASPECT[1]


def _backdrop(p: Prepared) -> Prepared:
    """A wallpaper whose plain-looking sides hide a textured background: all content, compared as a photo."""
    h, w = p.grey.shape
    return Prepared(p.lab, p.grey, (0, 0, w, h), np.ones((h, w), np.uint8), p.flat, uniform=p.uniform, backdrop=True)


def _prepare(rgb: Image.Image, size: int) -> Prepared:
    scale = min(1.0, size / max(rgb.size))
    if scale < 1.0:
        rgb = rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))), Image.Resampling.BOX)
    arr = np.asarray(rgb, dtype=np.uint8)
    lab = _lab(rgb)
    grey = cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)
    lab, grey, faint = _unfaint(lab, grey)
    ink, plain_sides = _ink(lab)
    box = _content_box(cv2.erode(ink, np.ones((5, 5), np.uint8)))
    flat, uniform = _flat_shares(lab)
    return Prepared(lab, grey, box, ink, flat, uniform=uniform, plain_sides=plain_sides, faint=faint)


def _unfaint(lab: np.ndarray, grey: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """A faint picture (spread from FAINT_SPREAD to MIN_SPREAD: a dark boot background whose shapes are
    a few levels apart) with its contrast stretched to STRETCH_SPREAD, so that the check sees its shapes."""
    spread = float(cv2.meanStdDev(lab)[1].max())
    if not FAINT_SPREAD <= spread < MIN_SPREAD:
        return lab, grey, False
    k = STRETCH_SPREAD / spread
    mean = lab.reshape(-1, 3).mean(axis=0)
    stretched = ((lab - mean) * k + mean).astype(np.float32)
    g = float(grey.mean())
    return stretched, np.clip((grey.astype(np.float32) - g) * k + g, 0, 255).astype(np.uint8), True


def _texture(p: Prepared) -> float:
    """Share of the plain background, away from the content, that is off its colour (0 for a canvas).

    Away from the content: a drawing's antialiasing, soft shadow and the JPEG ringing of its
    preview around it are not texture.
    """
    if p.plain_sides < 3 or p.ink.all():
        return 0.0
    off = (p.ink == 0).astype(np.uint8)
    away = cv2.distanceTransform(off, cv2.DIST_L2, 3) >= BACKDROP_AWAY
    if int(away.sum()) < 20:
        return 0.0
    colour = np.median(p.lab[off.astype(bool)], axis=0)
    return float((_squared(p.lab[away] - colour) > BACKDROP_DELTA**2).mean())


def _lab(rgb: Image.Image) -> np.ndarray:
    lab: np.ndarray = cv2.cvtColor(np.asarray(rgb, dtype=np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    return lab


def _flat_shares(lab: np.ndarray) -> tuple[float, float]:
    """Shares of pixels whose 3x3 and 5x5 neighbourhoods are flat (``Prepared.flat``, ``.uniform``)."""
    smooth = cv2.GaussianBlur(lab, (0, 0), FLAT_SMOOTH)
    shares = []
    for side in (3, 5):
        kernel = np.ones((side, side), np.uint8)
        spread = (cv2.dilate(smooth, kernel) - cv2.erode(smooth, kernel)).max(axis=2)
        shares.append(float((spread < FLAT_SPREAD).mean()))
    return shares[0], shares[1]


def _ink(lab: np.ndarray) -> tuple[np.ndarray, int]:
    """Where the picture is not its plain background (uint8 mask, widened by 2 px).

    The background is the colour of the sides that are plain: all four for a drawing on a
    canvas, two opposite ones for the bars of a letterboxed picture; a photo has no plain
    background and is all content. The second value is how many sides are plain.
    Measuring changes against the content rather than the whole canvas keeps a small
    drawing on a big margin as strict as a large one.
    """
    sides = [lab[0], lab[-1], lab[:, 0], lab[:, -1]]  # top, bottom, left, right
    colours = [np.median(side, axis=0) for side in sides]
    is_plain = [
        float((_squared(side - colour) <= DELTA_E**2).mean()) >= BACKGROUND_BORDER
        for side, colour in zip(sides, colours, strict=True)
    ]
    plain = [colour for colour, flat in zip(colours, is_plain, strict=True) if flat]

    def bars(one: int, other: int) -> bool:  # two opposite sides plain in one colour (letterbox bars)
        return is_plain[one] and is_plain[other] and float(_squared(colours[one] - colours[other])) <= DELTA_E**2

    # A plain background shows on all four sides (a drawing on a canvas) or on two opposite
    # sides (the bars of a letterboxed picture).
    if len(plain) < 4 and not (bars(0, 1) or bars(2, 3)):
        return np.ones(lab.shape[:2], np.uint8), len(plain)
    background = np.median(np.array(plain), axis=0)
    far = (_squared(lab - background) > DELTA_E**2).astype(np.uint8)
    return cv2.dilate(far, np.ones((5, 5), np.uint8)), len(plain)


def _content_box(ink: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box of the content (the whole picture when it has no plain background)."""
    h, w = ink.shape
    ys, xs = np.nonzero(ink)
    if len(xs) == 0:
        return 0, 0, w, h
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _layouts(a: Prepared, b: Prepared, graphic: bool) -> Iterator[tuple[str, np.ndarray]]:
    """Candidate affine maps (2x3, B coordinates -> A coordinates), cheapest first.

    Sliding one picture along the other (letterboxes, aspect versions) is for photos and
    wallpapers: a drawing fitted by its width inside a taller one is another drawing (a
    thicker line, a longer bar).
    """
    wa, ha = a.size
    wb, hb = b.size
    if _similar_aspect(wa / wb, ha / hb):
        yield "stretch", np.array([[wa / wb, 0, 0], [0, ha / hb, 0]], np.float64)
    ax0, ay0, ax1, ay1 = a.box
    bx0, by0, bx1, by1 = b.box
    if (ax0, ay0, ax1, ay1) != (0, 0, wa, ha) or (bx0, by0, bx1, by1) != (0, 0, wb, hb):
        sx, sy = (ax1 - ax0) / max(1, bx1 - bx0), (ay1 - ay0) / max(1, by1 - by0)
        if _similar_aspect(sx, sy):
            yield "content", np.array([[sx, 0, ax0 - sx * bx0], [0, sy, ay0 - sy * by0]], np.float64)
    # Full-bleed pictures slide even when compared as drawings: a wallpaper's smooth gradient
    # is flat enough to be one, and its 16:9 and 4:3 versions are the same picture.
    full_bleed = not (a.canvas or b.canvas) and min(*a.size, *b.size) >= ICON_SIDE
    for name, s in () if graphic and not full_bleed else (("fit-width", wa / wb), ("fit-height", ha / hb)):
        m = _slide(a, b, s)
        if m is not None:
            yield name, m
    m = _features(a, b)
    if m is not None:
        yield "features", m


def _similar_aspect(sx: float, sy: float) -> bool:
    """A resize that keeps the proportions (to rounding): stretching a drawing 5% taller is
    what makes a "pen width 10" icon out of "pen width 9", not a copy."""
    return abs(sx / sy - 1.0) <= MAX_STRETCH


def _slide(a: Prepared, b: Prepared, s: float) -> np.ndarray | None:
    """Scale B by ``s`` and find the best offset of the smaller picture inside the larger one."""
    wa, ha = a.size
    wb, hb = max(1, round(b.size[0] * s)), max(1, round(b.size[1] * s))
    if abs(wb - wa) <= 1 and abs(hb - ha) <= 1:
        return None  # that is the stretch layout
    scaled = cv2.resize(b.grey, (wb, hb), interpolation=cv2.INTER_AREA)
    if wb <= wa and hb <= ha:
        big, small, inside = a.grey, scaled, True
    elif wb >= wa and hb >= ha:
        big, small, inside = scaled, a.grey, False
    else:
        return None
    if small.shape[0] < 8 or small.shape[1] < 8:
        return None
    result = cv2.matchTemplate(big.astype(np.float32), small.astype(np.float32), cv2.TM_SQDIFF)
    _, _, (x, y), _ = cv2.minMaxLoc(result)
    dx, dy = (x, y) if inside else (-x, -y)
    return np.array([[s, 0, dx], [0, s, dy]], np.float64)


_local = threading.local()  # one ORB detector per thread: OpenCV's are not safe to share


def _orb_features(p: Prepared) -> tuple[tuple[cv2.KeyPoint, ...], np.ndarray | None]:
    orb = getattr(_local, "orb", None)
    if orb is None:
        orb = _local.orb = cv2.ORB.create(nfeatures=ORB_FEATURES, edgeThreshold=15, patchSize=15, fastThreshold=10)
    if p.features is None:
        keypoints, descriptors = orb.detectAndCompute(p.grey, None)
        p.features = (tuple(keypoints), descriptors)
    return p.features


def _features(a: Prepared, b: Prepared) -> np.ndarray | None:
    """A similarity transform from ORB matches with RANSAC, when both pictures have enough texture."""
    ka, da = _orb_features(a)
    kb, db = _orb_features(b)
    if da is None or db is None or len(ka) < MIN_INLIERS or len(kb) < MIN_INLIERS:
        return None
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    pairs = matcher.knnMatch(db, da, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
    if len(good) < MIN_INLIERS:
        return None
    src = np.array([kb[m.queryIdx].pt for m in good], dtype=np.float32)
    dst = np.array([ka[m.trainIdx].pt for m in good], dtype=np.float32)
    m, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0)
    if m is None or inliers is None or int(inliers.sum()) < MIN_INLIERS:
        return None
    # A copy may be turned a little; a quarter turn or a half turn makes another picture
    # (an arrow pointing up is not the arrow pointing right).
    if abs(np.degrees(np.arctan2(m[1, 0], m[0, 0]))) > MAX_ROTATION:
        return None
    return np.asarray(m, np.float64)


def _grade(src: np.ndarray, dst: np.ndarray, limits: Grade) -> tuple[np.ndarray, float, float, float]:
    """Map ``src`` Lab pixels onto ``dst`` with a mild global grade; returns (graded, gain, offset, chroma).

    Fitted twice, the second time without the quarter of pixels that fitted worst, so that
    an overlay (a dark banner over a seventh of a photo) does not bend the grade of the rest.
    """
    gain, offset, chroma = _fit(src, dst, limits)
    if limits.gain != (1.0, 1.0) and len(src):
        residual = _squared(_apply(src, gain, offset, chroma) - dst)
        k = (3 * (len(residual) - 1)) // 4  # the 75th percentile (lower value), without sorting it all
        keep = residual <= np.partition(residual, k)[k]
        gain, offset, chroma = _fit(src[keep], dst[keep], limits)
    return _apply(src, gain, offset, chroma), gain, offset, chroma


def _fit(src: np.ndarray, dst: np.ndarray, limits: Grade) -> tuple[float, float, float]:
    if len(src) == 0:
        return 1.0, 0.0, 1.0
    ls, ld = src[:, 0], dst[:, 0]
    var = float(ls.var())
    gain = float(((ls - ls.mean()) * (ld - ld.mean())).mean() / var) if var > 1e-6 else 1.0
    gain = float(np.clip(gain, *limits.gain))
    offset = float(np.clip(ld.mean() - gain * ls.mean(), -limits.offset, limits.offset))
    cs, cd = src[:, 1:], dst[:, 1:]
    power = float((cs * cs).sum())
    # A nearly grey picture has no colour to scale: its chroma gain says nothing (and would
    # otherwise count as a strong grade).
    chroma = float((cs * cd).sum() / power) if power > len(src) * FAINT_CHROMA**2 else 1.0
    return gain, offset, float(np.clip(chroma, *limits.chroma))


def _apply(lab: np.ndarray, gain: float, offset: float, chroma: float) -> np.ndarray:
    out = np.empty_like(lab)
    out[..., 0] = gain * lab[..., 0] + offset
    out[..., 1:] = chroma * lab[..., 1:]
    return out


def _tolerant_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared per-pixel colour distance that forgives a one-pixel shift either way.

    Each pixel of A is compared with the range of colours of B's 3x3 neighbourhood
    (per channel, from an erosion and a dilation) and B with A's, and the larger
    distance is kept: resampling seams along edges vanish, while a line or shape
    that only one image has stays.
    """
    kernel = np.ones((3, 3), np.uint8)

    def one_way(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        below = cv2.erode(y, kernel) - x  # > 0 where x is under every neighbour
        above = x - cv2.dilate(y, kernel)  # > 0 where x is over every neighbour
        gap = np.maximum(np.maximum(below, above), 0.0)
        return _squared(gap)

    out: np.ndarray = np.maximum(one_way(a, b), one_way(b, a))
    return out


def _squared(x: np.ndarray) -> np.ndarray:
    """Sum of squares over the last axis (faster than a norm, compared with DELTA_E squared)."""
    out: np.ndarray = np.einsum("...c,...c->...", x, x)
    return out


@dataclass
class _Layout:
    """One way of laying B over A, as ranked by the cheap plain difference."""

    rank: float
    name: str
    matrix: np.ndarray
    warped: np.ndarray
    mask: np.ndarray
    ink_b: np.ndarray  # B's content mask laid the same way
    cover_a: float
    cover_b: float
    gain: float
    offset: float
    chroma: float
    a_richer: bool


def _warp(lab: np.ndarray, m: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``lab`` laid into a ``size`` frame by ``m``, and where it landed (uint8 mask).

    A map that shrinks a lot is done in two steps, an area average first: bilinear
    sampling alone would drop thin lines and make a resized drawing look changed.
    """
    h, w = lab.shape[:2]
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if scale < 0.8:
        f = max(scale, 1.0 / max(w, h))
        small = cv2.resize(lab, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        fx, fy = small.shape[1] / w, small.shape[0] / h
        m = m.copy()
        m[:, 0] /= fx
        m[:, 1] /= fy
        lab, (h, w) = small, small.shape[:2]
    warped = cv2.warpAffine(lab, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    valid = cv2.warpAffine(np.ones((h, w), np.uint8), m, size, flags=cv2.INTER_NEAREST, borderValue=0)
    return warped, valid


def compare(a: Prepared, b: Prepared) -> Comparison:
    """The best layout of B over A and how much differs there.

    Layouts are ranked by a plain per-pixel difference (cheap); only the winner gets
    the shift-tolerant difference that the decision uses.
    """
    if b.size[0] * b.size[1] < a.size[0] * a.size[1]:
        a, b = b, a  # lay the larger picture over the smaller: shrinking loses nothing either has
    wa, ha = a.size
    wb, hb = b.size
    graphic = not (a.backdrop or b.backdrop or a.faint or b.faint) and (
        (a.drawing and b.drawing) or a.drawn_flat or b.drawn_flat or min(*a.size, *b.size) < ICON_SIDE
    )
    tiny = max(*a.size, *b.size) < ICON_SIDE
    limits = (NO_GRADE if tiny else GRAPHIC_GRADE) if graphic else PHOTO_GRADE
    delta = DELTA_E if graphic else PHOTO_DELTA_E
    best: _Layout | None = None
    for name, m in _layouts(a, b, graphic):
        warped, valid = _warp(b.lab, m, (wa, ha))
        valid = cv2.erode(valid, np.ones((3, 3), np.uint8)) if min(wa, ha) > 24 else valid
        mask = valid.astype(bool)
        n = int(mask.sum())
        if n < 64:
            continue
        # How much of each picture's content the overlap holds: plain borders (letterbox bars,
        # a canvas, the corners a rotation added) are not part of the picture.
        scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
        ink_b = cv2.warpAffine(b.ink, m, (wa, ha), flags=cv2.INTER_NEAREST, borderValue=0)  # a mask: no shrinking
        cover_a = float((a.ink.astype(bool) & mask).sum()) / max(1, int(a.ink.sum()))
        cover_b = min(1.0, float((ink_b.astype(bool) & mask).sum()) / max(1.0, float(b.ink.sum()) * scale * scale))
        # Ranking and grading look at every SAMPLE-th pixel of the overlap: the same answer, a
        # third of the work (this loop is most of a duplicates run).
        picked = np.flatnonzero(mask.ravel())[::SAMPLE]
        pa, pb = a.lab.reshape(-1, 3)[picked], warped.reshape(-1, 3)[picked]
        # Grade the paler (less saturated) side from the richer one, so greyscale copies fit.
        a_richer = float(np.abs(pb[:, 1:]).mean()) <= float(np.abs(pa[:, 1:]).mean())
        graded, gain, offset, chroma = _grade(pa, pb, limits) if a_richer else _grade(pb, pa, limits)
        plain = float((_squared(graded - (pb if a_richer else pa)) > delta**2).mean())
        rank = plain + max(0.0, 0.6 - min(cover_a, cover_b))
        if best is None or rank < best.rank:
            best = _Layout(rank, name, m, warped, mask, ink_b, cover_a, cover_b, gain, offset, chroma, a_richer)
        if plain == 0.0 and min(cover_a, cover_b) >= 0.95:
            break  # nothing differs: no other layout can do better
    if best is None:
        return Comparison(1.0, 0.0, 0.0, "none", 1.0, 0.0, 1.0, 1.0)
    if best.rank > CLEARLY_DIFFERENT:
        # Most candidates are different pictures; the finer measures below cannot save them.
        return Comparison(
            best.rank,
            best.cover_a,
            best.cover_b,
            best.name,
            best.gain,
            best.offset,
            best.chroma,
            best.rank,
            graphic,
            overlay=1.0,
            outside=best.rank,
        )
    name, warped, mask, ink_b = best.name, best.warped, best.mask, best.ink_b
    cover_a, cover_b, gain, offset, chroma = best.cover_a, best.cover_b, best.gain, best.offset, best.chroma
    if best.a_richer:
        first, second = _apply(a.lab, gain, offset, chroma), warped
    else:
        first, second = a.lab, _apply(warped, gain, offset, chroma)
    # Same size laid on itself: no resampling, so no seams to forgive (a 1-pixel line counts).
    identity = name == "stretch" and (wa, ha) == (wb, hb)
    distance = _squared(first - second) if identity else _tolerant_diff(first, second)
    changed = ((distance > delta**2) & mask).astype(np.uint8)
    content = max(1, int(((a.ink | ink_b) & mask).sum()))
    # The changed share is measured on slightly smoothed pictures: compression noise and ringing
    # (a JPEG'd drawing's colour edges) are fine grain that smoothing removes, while a missing
    # line or a recoloured part stays far above DELTA_E.
    smooth = (cv2.GaussianBlur(first, (0, 0), SMOOTH), cv2.GaussianBlur(second, (0, 0), SMOOTH)) if graphic else None
    soft = _tolerant_diff(*smooth) if smooth is not None else distance
    share = float(((soft > delta**2) & mask).sum()) / content
    blob = overlay = 0.0
    outside = share
    covered = np.zeros_like(changed)
    labels: np.ndarray | None = None
    overlaid: np.ndarray = np.empty(0, np.int64)  # the labels of the patches the overlay boxes are drawn around
    if changed.any():
        # Patches are what survives an opening: compression noise and one-pixel seams and
        # rings (around a sun, along a JPEG's colour edges) are not a changed part.
        patches = cv2.morphologyEx(changed, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        count, labels, stats, _ = cv2.connectedComponentsWithStats(patches, connectivity=8)
        if count > 1:
            areas = stats[1:, cv2.CC_STAT_AREA]
            blob = float(areas.max()) / content
            # An overlay (banner, logo, watermark) is the box around the patches that are not specks;
            # what differs outside that box is what the photo itself changed.
            kept = areas >= max(4, SPECK * content)
            big = stats[1:][kept]
            if len(big):
                boxes = _overlay_boxes(big, float(mask.sum()))
                overlaid = np.flatnonzero(kept) + 1
                for x0, y0, x1, y1 in boxes:
                    covered[y0:y1, x0:x1] = 1
                overlay = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in boxes) / max(1, int(mask.sum()))
                outside = float((changed & (covered == 0)).sum()) / content
    # Only asked when the drawing passes otherwise: most candidates do not, and it is a tenth of a check.
    passes = share <= GRAPHIC_MAX_CHANGED and blob <= GRAPHIC_MAX_PATCH and min(cover_a, cover_b) >= MIN_COVER
    shifted = _shifted_change(*smooth, a.ink | ink_b, delta) if smooth is not None and identity and passes else -1.0
    part = _part_of(b, a, cover_b, cover_a) or _part_of(a, b, cover_a, cover_b)
    # On a plain canvas, where "how much drawing" has a background to be measured from.
    mass = _mass_ratio(first, second, mask) if identity and a.drawing and b.drawing and passes else 1.0
    alpha = _alpha_change(a.alpha, b.alpha, best.matrix, mask) if a.alpha is not None and b.alpha is not None else 0.0
    recoloured = unexplained = 0.0
    if (
        not (graphic or a.faint or b.faint)
        and min(cover_a, cover_b) >= MIN_COVER
        and _passes_as_photo(overlay, outside, gain, chroma)
    ):
        # The patches' mask only here: most pairs with patches are drawings or fail before.
        patched = np.isin(labels, overlaid) if labels is not None else np.zeros(changed.shape, bool)
        recoloured = _hue_turn(first, second, patched)
        unexplained = _unexplained_light(first, second, mask & (covered == 0))
    return Comparison(
        share,
        cover_a,
        cover_b,
        name,
        gain,
        offset,
        chroma,
        blob,
        graphic,
        overlay,
        outside,
        shifted,
        part,
        mass,
        alpha,
        canvas=a.canvas and b.canvas,
        side=math.sqrt(wa * ha),
        recoloured=recoloured,
        unexplained=unexplained,
    )


def _unexplained_light(x: np.ndarray, y: np.ndarray, where: np.ndarray) -> float:
    """How far each picture's lightness is from a function of the other's over ``where`` (see
    MAX_UNEXPLAINED), the larger of both ways; 0 with too few pixels to tell. Every SAMPLE-th pixel, as
    for the grade: the same figure within 0.003, a third of the work."""
    lx = cv2.GaussianBlur(x[..., 0], (0, 0), LIGHT_SMOOTH)[where][::SAMPLE]
    ly = cv2.GaussianBlur(y[..., 0], (0, 0), LIGHT_SMOOTH)[where][::SAMPLE]
    n = len(lx)
    if n < 16 * LIGHT_LEVELS:
        return 0.0
    # Levels of equal count (a picture mostly one colour still has several): runs of the sorted pixels.
    edges = (np.arange(LIGHT_LEVELS + 1) * n + LIGHT_LEVELS - 1) // LIGHT_LEVELS

    def one_way(given: np.ndarray, other: np.ndarray) -> float:
        ordered = other[np.argsort(given, kind="stable")]
        spread = 0.0
        for k in range(LIGHT_LEVELS):
            here = ordered[edges[k] : edges[k + 1]]
            spread += float(np.abs(here - np.median(here)).sum())
        return spread / n

    return max(one_way(lx, ly), one_way(ly, lx))


def _hue_turn(x: np.ndarray, y: np.ndarray, patches: np.ndarray) -> float:
    """How far the hue turned (median, degrees) inside ``patches`` (a mask, all patches together) of
    two graded Lab pictures that kept their light there (see RECOLOURED_TURN); 0 where the light changed
    (an overlay laid over, or seen through), or there is too little colour."""
    inside = patches
    if not inside.any():
        return 0.0
    px, py = x[inside], y[inside]
    lx, ly = px[:, 0], py[:, 0]
    sx, sy = float(lx.std()), float(ly.std())
    if min(sx, sy) < 1.0 or max(sx, sy) > KEPT_CONTRAST * min(sx, sy):
        return 0.0  # one side is flat, or its contrast was scaled: something was laid over the picture
    if float(((lx - lx.mean()) * (ly - ly.mean())).mean()) / (sx * sy) < KEPT_LIGHT:
        return 0.0
    coloured = (np.hypot(px[:, 1], px[:, 2]) >= HUE_CHROMA) & (np.hypot(py[:, 1], py[:, 2]) >= HUE_CHROMA)
    if coloured.sum() < max(10, HUE_SHARE * len(px)):
        return 0.0
    turn = np.arctan2(px[coloured, 2], px[coloured, 1]) - np.arctan2(py[coloured, 2], py[coloured, 1])
    return float(np.degrees(np.median(np.abs(np.angle(np.exp(1j * turn))))))


def _alpha_change(a: np.ndarray, b: np.ndarray, m: np.ndarray, mask: np.ndarray) -> float:
    """Share of the overlap's visible part (either picture over ALPHA_VISIBLE) whose opacity differs by
    more than ALPHA_DELTA, B's alpha laid over A's by ``m``, forgiving a one-pixel shift (resampling seams)."""
    h, w = a.shape
    warped, _ = _warp(b, m, (w, h))
    # A copy at another opacity (a logo at 71%) is a copy: fit one gain, within ALPHA_GAIN, the
    # more opaque one scaled down.
    both = mask & (a > ALPHA_VISIBLE) & (warped > ALPHA_VISIBLE)
    if both.any():
        sa, sb = float(a[both].sum()), float(warped[both].sum())
        gain = min(sa, sb) / max(sa, sb)
        if gain >= ALPHA_GAIN:
            a, warped = (a * gain, warped) if sa > sb else (a, warped * gain)
    kernel = np.ones((3, 3), np.uint8)
    # The distance to the nearest of the other's 3x3 neighbourhood, both ways (as _tolerant_diff).
    there = np.maximum(a - cv2.dilate(warped, kernel), cv2.erode(warped, kernel) - a)
    back = np.maximum(warped - cv2.dilate(a, kernel), cv2.erode(a, kernel) - warped)
    differs = np.maximum(there, back) > ALPHA_DELTA
    visible = mask & ((a > ALPHA_VISIBLE) | (warped > ALPHA_VISIBLE))
    return float((differs & visible).sum()) / max(1, int(visible.sum()))


def _overlay_boxes(patches: np.ndarray, overlap: float) -> list[tuple[int, int, int, int]]:
    """The box around the changed patches (``connectedComponentsWithStats`` rows), or, when that box is
    over MAX_OVERLAY of the overlap, two boxes of up to half that each: an author's aspect version
    keeps a logo in one corner and an emblem in the other at their own size, over a background that
    is scaled, so they differ at two places far apart (Debian's boot backgrounds: boxes of 2-6%).
    Half the budget each: an icon with a globe, then an arrow, added to its envelope (boxes of
    3-14%) is another picture."""

    def box(rows: np.ndarray) -> tuple[int, int, int, int]:
        x0, y0 = int(rows[:, cv2.CC_STAT_LEFT].min()), int(rows[:, cv2.CC_STAT_TOP].min())
        x1 = int((rows[:, cv2.CC_STAT_LEFT] + rows[:, cv2.CC_STAT_WIDTH]).max())
        y1 = int((rows[:, cv2.CC_STAT_TOP] + rows[:, cv2.CC_STAT_HEIGHT]).max())
        return x0, y0, x1, y1

    def area(b: tuple[int, int, int, int]) -> int:
        return (b[2] - b[0]) * (b[3] - b[1])

    one = box(patches)
    if area(one) <= MAX_OVERLAY * overlap or len(patches) < 2:
        return [one]
    best, best_area = [one], area(one)
    for axis, size in ((cv2.CC_STAT_LEFT, cv2.CC_STAT_WIDTH), (cv2.CC_STAT_TOP, cv2.CC_STAT_HEIGHT)):
        order = patches[np.argsort(patches[:, axis] * 2 + patches[:, size])]  # by centre along the axis
        for i in range(1, len(order)):
            pair = [box(order[:i]), box(order[i:])]
            total = area(pair[0]) + area(pair[1])
            # Each of the two within half the budget of one: two logos, not two new objects.
            if total < best_area and max(area(pair[0]), area(pair[1])) <= MAX_OVERLAY / 2 * overlap:
                best, best_area = pair, total
    return best


def _mass_ratio(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> float:
    """How much drawing each of two same-size pictures holds, the smaller over the larger: the
    summed lightness distance from its background (the median of its border) over the overlap.
    Lightness only: a copy with less colour (a greyscale one) keeps its drawing."""

    def mass(lab: np.ndarray) -> float:
        light = lab[..., 0]  # each from its own background, which absorbs the offset of the grade
        background = float(np.median(np.concatenate([light[0], light[-1], light[:, 0], light[:, -1]])))
        return float(np.abs(light - background)[mask].sum())

    mx, my = mass(x), mass(y)
    if max(mx, my) < 1e-6:
        return 1.0  # nothing drawn on either: nothing to tell apart here
    return min(mx, my) / max(mx, my)


def _part_of(small: Prepared, big: Prepared, small_cover: float, big_cover: float) -> bool:
    """``small`` is a whole drawing found entire inside ``big``, a drawing (three plain sides or more)
    with more than a fifth of its content elsewhere: a logo without its wordmark, not a copy.

    A crop cuts through its picture's content at the frame, so it is not a whole drawing; a photo
    in a decorated frame has no plain side (the synthetic set's crop that leaves out the frame of a
    product photo is a copy)."""
    return small.enclosed and big.plain_sides >= 3 and small_cover >= WHOLE and big_cover < PART_COVER


def _shifted_change(x: np.ndarray, y: np.ndarray, ink: np.ndarray, delta: float) -> float:
    """Changed share of the content for two same-size pictures (smoothed as for the changed share)
    at the best whole-pixel shift (up to 1 px).

    Nothing is forgiven between pixels: a copy (re-encoded, or moved by a pixel) matches at one
    shift, while a line a pixel thicker, or one dot more, differs at every shift.
    """
    h, w = ink.shape
    best = 1.0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            xs = x[max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)]
            ys = y[max(0, -dy) : h + min(0, -dy), max(0, -dx) : w + min(0, -dx)]
            region = ink[max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)].astype(bool)
            n = max(1, int(region.sum()))
            best = min(best, float(((_squared(xs - ys) > delta**2) & region).sum()) / n)
    return best


def _shift_limit(side: float) -> float:
    """GRAPHIC_MAX_SHIFTED for drawings compared at ``side`` pixels: as is up to ICON_SIDE, in proportion beyond."""
    return GRAPHIC_MAX_SHIFTED * min(1.0, ICON_SIDE / side) if side > 0 else GRAPHIC_MAX_SHIFTED


def same_picture(c: Comparison) -> bool:
    """The decision for one compared pair (see the module docstring and the constants)."""
    if min(c.cover_a, c.cover_b) < MIN_COVER or c.part or c.alpha > MAX_ALPHA_CHANGED:
        return False
    if c.graphic:
        if c.canvas and min(c.cover_a, c.cover_b) < GRAPHIC_MIN_COVER:
            return False
        if c.shifted > _shift_limit(c.side) or (c.shifted > SHIFT_DOUBT and c.mass < GRAPHIC_MIN_MASS):
            return False
        return c.changed <= GRAPHIC_MAX_CHANGED and c.blob <= GRAPHIC_MAX_PATCH
    if c.recoloured >= RECOLOURED_TURN or c.unexplained > MAX_UNEXPLAINED:
        return False
    return _passes_as_photo(c.overlay, c.outside, c.gain, c.chroma)


def _passes_as_photo(overlay: float, outside: float, gain: float, chroma: float) -> bool:
    """One overlay (or two) and little else changed, under a mild grade (MAX_GRADE)."""
    strength = abs(math.log(max(gain, 1e-3))) + abs(math.log(max(chroma, 0.05)))
    return overlay <= MAX_OVERLAY and outside <= MAX_CHANGED and strength <= MAX_GRADE


@dataclass(frozen=True)
class Verdict:
    same: bool
    comparison: Comparison | None  # None when one of the images carries no evidence (blank)


#: The check's version: verdicts stored by another version are not reused. Change it with any
#: change to the decision. "pixels-2": the decision changed after "pixels-1" was stored (during
#: the review fixes of 2026-11-25) without a new name, so libraries may hold verdicts of the
#: older check; a benchmark workdir that reused them scored near-duplicate precision 0.736
#: where a fresh run of the same code scores 0.699. "pixels-3": flatness measured after smoothing
#: (FLAT_SMOOTH), so JPEG previews of cards and flags are compared as drawings again. "pixels-4":
#: drawings may differ by a lightness gain within 10% (GRAPHIC_GRADE). "pixels-5": same-size drawings
#: are also compared at their best whole-pixel shift (GRAPHIC_MAX_SHIFTED). "pixels-6": full-bleed
#: pictures compared as drawings (smooth wallpapers) slide too. "pixels-7": a smooth gradient is not
#: flat like a drawing (MIN_UNIFORM). "pixels-8": tiny drawings get no lightness gain (NO_GRADE), and
#: small lossless pictures are read from their files (services.assets.preview_verifier). "pixels-9": a
#: whole drawing that is a part of a bigger drawing is not its copy (_part_of).
#: "pixels-10": screen-shaped wallpapers with a textured background are backdrops, kept whole.
#: "pixels-11": the picture cache is keyed by id and digest (stored verdicts of reused ids were wrong).
#: "pixels-12": same-size drawings on a canvas hold as much drawing (GRAPHIC_MIN_MASS). "pixels-13":
#: that only where the whole-pixel shift leaves doubt (SHIFT_DOUBT: a JPEG copy of thin line art
#: failed it), and a backdrop from 64 px high (a wallpaper's 480x270 copy was cut to its logo).
#: "pixels-14": two pictures with transparency match in their alpha bands too (MAX_ALPHA_CHANGED).
#: "pixels-15": drawings that pass get a second look at FINE_SIZE. "pixels-16": faint pictures are
#: stretched (FAINT_SPREAD). "pixels-18": a photo may carry two overlays of up to half MAX_OVERLAY
#: each (_overlay_boxes). "pixels-19": two drawings on a canvas overlap in GRAPHIC_MIN_COVER.
#: "pixels-20": a changed patch that kept its light in another hue is a recoloured region, not an overlay.
#: "pixels-21": a copy's lightness is a function of the other's (MAX_UNEXPLAINED). "pixels-22": the
#: whole-pixel shift's limit falls with the size compared (_shift_limit). "pixels-23": a see-through
#: overlay (its contrast scaled) is not a recoloured region (KEPT_CONTRAST).
METHOD = "pixels-23"


class VerdictStore(Protocol):
    """Where verdicts outlive a run (the catalog's ``pair_verdicts``)."""

    def all(self, method: str) -> dict[tuple[str, str], bool]: ...

    def add(self, method: str, verdicts: dict[tuple[str, str], bool]) -> None: ...

    def keep_only(self, method: str) -> int: ...


def _prepare_asset(asset: Asset, load: Callable[[Asset], Image.Image | None], size: int) -> Prepared | None:
    """``load(asset)`` prepared at ``size`` (the original's size is the frame), or None if it gave nothing."""
    image = load(asset)
    if image is None:
        return None
    return prepare(image, size=size, frame=(asset.width, asset.height) if asset.width and asset.height else None)


class RecentCache(Generic[K, V]):
    """The last ``size`` values made, by key (the least recently used is dropped); safe between threads.

    The pixel check visits each picture in a few pairs, often close together: its prepared pictures
    and the files it decodes are kept here. Two threads asking for a missing key at once may both
    make it; they make the same value.
    """

    def __init__(self, size: int):
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, make: Callable[[], V]) -> V:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()
        with self._lock:
            self._items[key] = value
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


class PixelVerifier:
    """Verdicts for candidate pairs of assets, from their pictures (``load`` gives one, or None).

    Prepared pictures are kept in a small LRU cache (a duplicates run visits each image
    in a few pairs, often close together), and verdicts are remembered by the pair's file
    digests, so that a later run (after a few images were added or moved to the trash)
    only compares new pairs; with a ``store`` they also outlive the process (the next
    ``visualsearch duplicates`` checks only pairs it has not seen). Safe to share between threads.
    """

    def __init__(
        self,
        load: Callable[[Asset], Image.Image | None],
        cache: int = 256,
        store: VerdictStore | None = None,
        alpha: Callable[[Asset], Image.Image | None] | None = None,
        fine: Callable[[Asset], Image.Image | None] | None = None,
    ):
        self._load = load
        #: The picture's alpha band ("L", upright, any size), None if it has no transparency. Read only
        #: for pairs that pass on colour: it may mean decoding a big file the previews spare.
        self._alpha = alpha
        #: The picture from its file, at least FINE_SIZE where it is that big, for the second look at
        #: drawings (FINE_SIZE); None if it cannot be read. Kept in a cache of its own, smaller.
        self._fine = fine
        self._fine_cache: RecentCache[tuple[int, str | None], Prepared | None] = RecentCache(FINE_CACHE)
        #: Keyed by id *and* content digest: an id is given out again once its asset is deleted or
        #: moved to the trash, and a server's verifier lives long (the new upload was compared with
        #: the old file's picture, and the wrong verdict stored).
        self._cache: RecentCache[tuple[int, str | None], Prepared | None] = RecentCache(cache)
        self._verdicts: dict[tuple[str, str], Verdict] = {}
        self._store = store
        #: The store's verdicts, read on the first lookup of a pair of assets (an upload's check
        #: compares a new picture, which has none, so it never reads them).
        self._stored: dict[tuple[str, str], bool] | None = None
        self._new: dict[tuple[str, str], bool] = {}
        self._pruned = False
        self._lock = threading.Lock()
        self.checked = 0
        self.unreadable = 0

    def flush(self) -> None:
        """Keep the verdicts found since the last flush in the store (one write for a whole run)."""
        with self._lock:
            new, self._new = self._new, {}
        if self._store is not None and new:
            try:
                self._store.add(METHOD, new)
            except BaseException:  # a failed write (or Ctrl-C during it): the next flush tries them again
                with self._lock:
                    self._new = new | self._new
                raise
            if not self._pruned:  # once a run: verdicts of an older check are never read again
                self._store.keep_only(METHOD)
                self._pruned = True
            with self._lock:
                if self._stored is not None:
                    self._stored.update(new)

    def prepared(self, asset: Asset) -> Prepared | None:
        def make() -> Prepared | None:
            p = _prepare_asset(asset, self._load, SIZE)
            if p is None:
                with self._lock:
                    self.unreadable += 1
            return p

        return self._cache.get((asset.id, asset.sha256), make)

    def _second_look(self, a: Asset, b: Asset, c: Comparison) -> Comparison:
        """Two drawings that pass at SIZE, compared again at FINE_SIZE when both are bigger than SIZE."""
        if self._fine is None or min(max(x.width or 0, x.height or 0) for x in (a, b)) <= SIZE:
            return c  # the smaller one is no sharper from its file: nothing finer to see
        fa, fb = self._fine_prepared(a), self._fine_prepared(b)
        if fa is None or fb is None or not (fa.informative and fb.informative):
            return c
        fine = replace(compare(fa, fb), fine=True)
        return c if same_picture(fine) else fine

    def _fine_prepared(self, asset: Asset) -> Prepared | None:
        fine = self._fine
        if fine is None:
            return None
        return self._fine_cache.get((asset.id, asset.sha256), lambda: _prepare_asset(asset, fine, FINE_SIZE))

    def _read_alpha(self, asset: Asset, p: Prepared) -> bool:
        """Lay the asset's alpha band over its prepared picture, once; whether it has one."""
        if not p.alpha_read and self._alpha is not None:
            band = self._alpha(asset)
            with self._lock:
                if not p.alpha_read:
                    p.set_alpha(band)
        return p.alpha is not None

    def verdict(self, a: Asset | Prepared, b: Asset | Prepared) -> Verdict:
        key = None
        if isinstance(a, Asset) and isinstance(b, Asset) and a.sha256 and b.sha256:
            key = (min(a.sha256, b.sha256), max(a.sha256, b.sha256))
            with self._lock:
                if self._stored is None:
                    self._stored = self._store.all(METHOD) if self._store is not None else {}
                known = self._verdicts.get(key)
                stored = self._stored.get(key)
            if known is not None:
                return known
            if stored is not None:
                return Verdict(stored, None)
        pa = a if isinstance(a, Prepared) else self.prepared(a)
        pb = b if isinstance(b, Prepared) else self.prepared(b)
        if pa is None or pb is None or not pa.informative or not pb.informative:
            verdict = Verdict(False, None)
        else:
            c = compare(pa, pb)
            if same_picture(c) and self._alpha is not None and isinstance(a, Asset) and isinstance(b, Asset):
                if self._read_alpha(a, pa) and self._read_alpha(b, pb):
                    c = compare(pa, pb)
            if same_picture(c) and c.graphic and isinstance(a, Asset) and isinstance(b, Asset):
                c = self._second_look(a, b, c)
            verdict = Verdict(same_picture(c), c)
            with self._lock:
                self.checked += 1
        if key is not None and (pa is not None and pb is not None):  # unreadable: try again next time
            with self._lock:
                self._verdicts[key] = verdict
                self._new[key] = verdict.same
        return verdict
