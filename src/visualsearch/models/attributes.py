"""Colour and light attributes of an image, and the words of a query that ask for them.

The bundled model sees ImageNet classes, not colour or light: on the scenes development set
its colour queries found the right image in the top 5 only 24% of the time, light and
time-of-day queries 9% and 0% (benchmarks/scenes.py). So each image also gets a small
attribute vector, computed from the pixels the model already reads (the 224 px centre crop):

- the share of pixels nearest each named colour (red, orange, yellow, green, teal, blue,
  purple, pink, brown, black, grey, white), by CIELAB distance to a few sRGB prototypes each;
- light: how dark and how bright the picture is (shares of pixels with L* < 25 and > 75);
- colourfulness: the share of clearly coloured pixels (chroma > 30) and of greyish ones
  (chroma < 8: black-and-white pictures are nearly all greyish);
- warm (red to yellow hues) and cool (teal to blue) shares among coloured pixels.

A query's attribute words (:data:`WORDS`: "purple", "night", "sunset", "foggy", "black and
white"...) become a target over the same dimensions; an image's attribute score is the
cosine of its vector with the target. :mod:`visualsearch.services.search` adds it, weighted,
to the text score of queries that contain such words. The vocabulary is small and says what
each word means visually; no query has a hard-coded answer.
"""

from __future__ import annotations

import re

import cv2
import numpy as np

from .base import l2_normalize

#: Named colours and their sRGB prototypes (several per name: dark and light shades).
PALETTE: dict[str, list[tuple[int, int, int]]] = {
    "red": [(200, 30, 30), (150, 20, 25), (235, 80, 70)],
    "orange": [(245, 140, 30), (220, 100, 20), (250, 180, 100)],
    "yellow": [(240, 220, 40), (250, 240, 130), (200, 170, 30)],
    "green": [(50, 160, 60), (30, 90, 40), (140, 200, 90), (90, 110, 50)],
    "teal": [(30, 170, 170), (20, 100, 110), (120, 210, 210)],
    "blue": [(40, 90, 210), (20, 35, 110), (110, 160, 230), (60, 110, 160)],
    "purple": [(130, 50, 170), (70, 30, 100), (170, 120, 210)],
    "pink": [(240, 120, 180), (210, 60, 130), (250, 190, 210)],
    "brown": [(120, 75, 40), (80, 50, 30), (170, 120, 80)],
    "black": [(10, 10, 12), (35, 35, 40)],
    "grey": [(128, 128, 128), (90, 92, 95), (175, 175, 178)],
    "white": [(245, 245, 245), (220, 222, 225)],
}
COLOURS = list(PALETTE)
EXTRA = ["dark", "bright", "colourful", "greyish", "warm", "cool"]
DIMS = COLOURS + EXTRA
DIM = len(DIMS)
#: Bumped when the attributes change (part of the model id, so libraries recompute them).
VERSION = "a1"


def _lab(rgb: np.ndarray) -> np.ndarray:
    """uint8[..., 3] sRGB -> float32[..., 3] CIELAB (L* 0-100, a*, b* about -128..127)."""
    flat = rgb.reshape(-1, 1, 3).astype(np.uint8)
    lab = cv2.cvtColor(flat, cv2.COLOR_RGB2LAB).astype(np.float32).reshape(*rgb.shape)
    lab[..., 0] *= 100.0 / 255.0
    lab[..., 1:] -= 128.0
    return lab


_PROTOTYPES = _lab(np.asarray([rgb for name in COLOURS for rgb in PALETTE[name]], np.uint8))
_OWNER = np.asarray([i for i, name in enumerate(COLOURS) for _ in PALETTE[name]])


def attributes(crops: np.ndarray, step: int = 8) -> np.ndarray:
    """float32[n, DIM] attribute vectors (L2-normalised) of uint8[n, h, w, 3] RGB crops.

    Every ``step``-th pixel in each direction is enough for shares of a picture (a 224 px crop
    gives 784 pixels), and the whole batch goes through OpenCV and numpy at once: about 0.3 ms
    an image, next to the network's 10 ms (every 4th pixel, one image at a time, cost 3-6 ms).
    """
    n = len(crops)
    if n == 0:
        return np.zeros((0, DIM), np.float32)
    sample = np.ascontiguousarray(np.asarray(crops)[:, ::step, ::step])
    lab = _lab(sample).reshape(n, -1, 3)
    pixels = lab.shape[1]
    # squared distances to every prototype as one matrix product: |x|^2 - 2 x.p + |p|^2 (|x|^2 is
    # the same for every prototype, so it does not change the nearest)
    d = (_PROTOTYPES**2).sum(axis=1)[None, :] - 2.0 * (lab.reshape(-1, 3) @ _PROTOTYPES.T)
    names = _OWNER[d.argmin(axis=1)].reshape(n, pixels)
    out = np.zeros((n, DIM), np.float32)
    counts = np.bincount((np.arange(n)[:, None] * len(COLOURS) + names).ravel(), minlength=n * len(COLOURS))
    out[:, : len(COLOURS)] = counts.reshape(n, len(COLOURS)) / pixels
    lightness, chroma = lab[..., 0], np.hypot(lab[..., 1], lab[..., 2])
    hue = np.degrees(np.arctan2(lab[..., 2], lab[..., 1])) % 360
    coloured = chroma > 15
    extra = {
        "dark": (lightness < 25).mean(axis=1),
        "bright": (lightness > 75).mean(axis=1),
        "colourful": (chroma > 30).mean(axis=1),
        "greyish": (chroma < 8).mean(axis=1),
        # warm: reds, oranges and yellows (Lab hue 0-100 degrees and 330-360); cool: teal to blue
        "warm": (coloured & ((hue < 100) | (hue > 330))).mean(axis=1),
        "cool": (coloured & (hue > 180) & (hue < 300)).mean(axis=1),
    }
    for j, name in enumerate(EXTRA):
        out[:, len(COLOURS) + j] = extra[name]
    return l2_normalize(out)


#: What attribute words mean, as weights over :data:`DIMS`. Longest phrases are matched first.
WORDS: dict[str, dict[str, float]] = {
    **{name: {name: 1.0} for name in COLOURS},
    "gray": {"grey": 1.0},
    "violet": {"purple": 1.0},
    "lilac": {"purple": 0.7, "pink": 0.3, "bright": 0.3},
    "magenta": {"pink": 0.6, "purple": 0.5},
    "turquoise": {"teal": 1.0},
    "cyan": {"teal": 1.0},
    "navy": {"blue": 1.0, "dark": 0.4},
    "gold": {"yellow": 0.7, "orange": 0.5, "brown": 0.3},
    "golden": {"yellow": 0.7, "orange": 0.6, "warm": 0.4},
    "silver": {"grey": 0.8, "white": 0.4},
    "dark": {"dark": 1.0, "black": 0.5},
    "night": {"dark": 1.0, "black": 0.6, "blue": 0.3},
    "bright": {"bright": 1.0, "white": 0.3},
    "light": {"bright": 1.0, "white": 0.3},
    "sunny": {"bright": 0.7, "yellow": 0.4, "warm": 0.5},
    "sunset": {"orange": 0.8, "red": 0.4, "purple": 0.3, "warm": 0.7},
    "sunrise": {"orange": 0.8, "pink": 0.4, "yellow": 0.3, "warm": 0.7},
    "dusk": {"purple": 0.5, "blue": 0.5, "orange": 0.4, "dark": 0.4},
    "fog": {"grey": 0.8, "white": 0.6, "greyish": 0.6},
    "foggy": {"grey": 0.8, "white": 0.6, "greyish": 0.6},
    "misty": {"grey": 0.8, "white": 0.6, "greyish": 0.6},
    "snow": {"white": 1.0, "bright": 0.5},
    "snowy": {"white": 1.0, "bright": 0.5},
    "cold": {"cool": 1.0, "blue": 0.6, "white": 0.4},
    "icy": {"cool": 0.8, "white": 0.7, "teal": 0.3},
    "warm": {"warm": 1.0, "orange": 0.5},
    "black and white": {"greyish": 1.0, "grey": 0.5},
    "monochrome": {"greyish": 1.0, "grey": 0.5},
    "grayscale": {"greyish": 1.0, "grey": 0.5},
    "greyscale": {"greyish": 1.0, "grey": 0.5},
    "colourful": {"colourful": 1.0},
    "colorful": {"colourful": 1.0},
    "vivid": {"colourful": 1.0},
    "pastel": {"pink": 0.4, "bright": 0.6},
}
_PHRASES = sorted(WORDS, key=len, reverse=True)
# The words of a phrase may be joined by spaces or hyphens ("black-and-white" is "black and white",
# not the colours black and white).
_PATTERN = re.compile(
    r"\b(" + "|".join(r"[\s-]+".join(map(re.escape, p.split())) for p in _PHRASES) + r")\b", re.IGNORECASE
)


def query_target(text: str) -> tuple[np.ndarray | None, list[str]]:
    """The attribute target of a query's words (L2-normalised), and the words it was made from."""
    words = [" ".join(re.split(r"[\s-]+", m.group(1).lower())) for m in _PATTERN.finditer(text)]
    if not words:
        return None, []
    target = np.zeros(DIM, np.float32)
    for word in words:
        for dim, weight in WORDS[word].items():
            target[DIMS.index(dim)] += weight
    return l2_normalize(target), words
