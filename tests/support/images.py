"""Synthetic test pictures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def gradient_image(seed: int, size=(96, 64)) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.integers(0, 255, 3)
    x = np.linspace(0, 1, w)[None, :, None]
    y = np.linspace(0, 1, h)[:, None, None]
    arr = (base * (1 - x) + rng.integers(0, 255, 3) * y) % 255
    return Image.fromarray(arr.astype(np.uint8), "RGB")


def solid(colour, size=(40, 30)) -> Image.Image:
    return Image.new("RGB", size, colour)


def make_folder(root: Path, n: int = 10) -> Path:
    """``n`` solid-colour PNGs in five colours (red first), each a different size, under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (200, 200, 0), (0, 200, 200)]
    for i in range(n):
        solid(colours[i % 5], (40 + i, 30)).save(root / f"img{i:02}.png")
    return root
