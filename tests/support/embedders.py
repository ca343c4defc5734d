"""A tiny deterministic model that implements the real model contract."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from visualsearch.models import Embedder


class TinyEmbedder(Embedder):
    """A deterministic stand-in model for testing indexing logic quickly.

    Vectors are the normalised mean colour of the image's quadrants, so
    similar pictures get similar vectors; texts map to a fixed colour word.

    ``calls`` counts :meth:`encode_images` calls; set ``fail_after`` to raise
    ``KeyboardInterrupt`` on the call after that many (a simulated Ctrl-C).
    """

    model_id = "tiny-test-model"
    spaces = {"semantic": 12, "visual": 12}
    similarity_space = "visual"
    COLOURS = {"red": (1, 0, 0), "green": (0, 1, 0), "blue": (0, 0, 1)}

    def __init__(self):
        self.calls = 0
        self.fail_after: int | None = None

    def encode_images(self, images: Sequence[Image.Image]) -> dict[str, np.ndarray]:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt  # simulates Ctrl-C in the middle of a run
        out = []
        for im in images:
            arr = np.asarray(im.resize((8, 8)), dtype=np.float32) / 255.0
            quads = [arr[:4, :4], arr[:4, 4:], arr[4:, :4], arr[4:, 4:]]
            out.append(np.concatenate([q.mean(axis=(0, 1)) for q in quads]) + 1e-3)
        v = np.asarray(out, dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return {"semantic": v, "visual": v}

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.encode_images(images)["semantic"]

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        v = np.asarray([list(self.COLOURS.get(t, (1, 1, 1))) * 4 for t in texts], dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)
