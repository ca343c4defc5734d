"""The one interface every model implements.

An embedder maps images and texts into vectors. Text search compares a text
vector with images' ``semantic`` vectors (the shared text-image space).
Image-to-image search uses whichever space finds look-alikes best: for CLIP
that is the same shared space; for the bundled default it is the network's
pooled ``visual`` features (chosen by measurement, see the README).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

SEMANTIC = "semantic"
VISUAL = "visual"
#: Colour and light attributes (visualsearch.models.attributes), for models that provide them.
ATTRIBUTES = "attributes"


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation that leaves all-zero rows at zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    normalized: np.ndarray = vectors / np.maximum(norms, 1e-12)
    return normalized


class Embedder(ABC):
    """Maps images and texts into L2-normalised float32 vectors."""

    #: Stable identifier stored with every vector, so switching models re-embeds.
    model_id: str
    #: The vector spaces :meth:`encode_images` returns, name -> dimension.
    spaces: dict[str, int]
    #: The space used for image -> image similarity.
    similarity_space: str = SEMANTIC
    #: (absolute, margin) score thresholds of a text query with close matches, measured for this
    #: model by benchmarks/nomatch.py (see visualsearch.search.relevance); None: never claims no match.
    match_thresholds: tuple[float, float] | None = None

    @abstractmethod
    def encode_images(self, images: Sequence[Image.Image]) -> dict[str, np.ndarray]:
        """One forward pass: every space's float32[n, d] for the RGB images."""

    @abstractmethod
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """float32[n, d] in the ``semantic`` space, L2-normalised."""

    def concepts(self, semantic: np.ndarray, k: int = 3) -> list[list[str]] | None:
        """What each image (a row of ``semantic`` vectors) is seen as, in words, best first; None if unknown.

        Used to explain a text match. Models with a vocabulary (the bundled ConSE: ImageNet
        classes) say it; others return None.
        """
        return None

    def image_preprocessor(self) -> Callable[[Image.Image], np.ndarray] | None:
        """A picklable function from one decoded image to the model's input array, or None.

        When a model offers one, ingest runs it in its decoding worker processes and
        calls :meth:`encode_prepared` on the stacked results, so resampling happens
        in parallel with inference instead of before it.
        """
        return None

    def encode_prepared(self, inputs: np.ndarray) -> dict[str, np.ndarray]:
        """Like :meth:`encode_images`, for a stack of :meth:`image_preprocessor` outputs."""
        raise NotImplementedError(f"{type(self).__name__} has no separate preprocessing step")

    def warm_up(self) -> None:
        """Run the image and text paths once, so the first real query is as fast as the rest.

        Runtimes initialise lazily (ONNX Runtime picks kernels and allocates arenas on the
        first run): measured on 2 cores, a server's first search by image took 1.1 s and the
        next ones 35 ms; the first text search 240 ms, the next 10 ms.
        """
        self.embed_texts(["a photo"])
        # Search by image goes through encode_images; indexing's encode_prepared runs the same session.
        self.encode_images([Image.new("RGB", (320, 240), (128, 128, 128))])

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """float32[n, d] in the ``semantic`` (shared text-image) space."""
        return self.encode_images(images)[SEMANTIC]
