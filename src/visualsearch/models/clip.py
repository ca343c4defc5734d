"""CLIP-family models (OpenCLIP, Hugging Face CLIP and SigLIP) behind :class:`Embedder`.

These need internet the first time (or a populated Hugging Face cache / a
local folder); they give much better text search than the bundled default.
Text and images share one space, so image similarity uses it too.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from .base import SEMANTIC, Embedder, l2_normalize

if TYPE_CHECKING:
    import torch


class _TorchEmbedder(Embedder):
    similarity_space = SEMANTIC

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded = False

    def _ensure(self) -> None:
        with self._lock:
            if not self._loaded:
                import torch

                torch.set_num_threads(os.cpu_count() or 1)
                self._load()
                self._loaded = True

    def _load(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class OpenClipEmbedder(_TorchEmbedder):
    """``open_clip`` model by architecture and pretrained tag (or checkpoint path)."""

    def __init__(
        self,
        architecture: str,
        pretrained: str | None,
        model: Any = None,
        preprocess: Callable[[Image.Image], torch.Tensor] | None = None,
        tokenizer: Callable[[list[str]], torch.Tensor] | None = None,
    ):
        super().__init__()
        self.architecture, self.pretrained = architecture, pretrained
        self.model_id = f"open_clip:{architecture}/{pretrained or 'random'}"
        # open_clip's model, image transform and tokenizer (the package has no type information).
        self._model: Any = model
        self._preprocess: Any = preprocess
        self._tokenizer: Any = tokenizer
        if model is not None:
            self._loaded = True
            self._set_spaces()

    def _load(self) -> None:
        import open_clip

        self._model, _, self._preprocess = open_clip.create_model_and_transforms(
            self.architecture, pretrained=self.pretrained
        )
        self._model.eval()
        self._tokenizer = open_clip.get_tokenizer(self.architecture)
        self._set_spaces()

    def _set_spaces(self) -> None:
        dim = int(getattr(self._model, "embed_dim", 0) or self._model.text_projection.shape[-1])
        self.spaces = {SEMANTIC: dim}

    @property
    def spaces(self) -> dict[str, int]:
        self._ensure()
        return self._spaces

    @spaces.setter
    def spaces(self, value: dict[str, int]) -> None:
        self._spaces = value

    def encode_images(self, images: Sequence[Image.Image]) -> dict[str, np.ndarray]:
        import torch

        self._ensure()
        batch = torch.stack([self._preprocess(im) for im in images])
        with torch.inference_mode():
            out = self._model.encode_image(batch)
        return {SEMANTIC: l2_normalize(out.float().numpy())}

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        self._ensure()
        with torch.inference_mode():
            out = self._model.encode_text(self._tokenizer(list(texts)))
        return l2_normalize(out.float().numpy())


class HFClipEmbedder(_TorchEmbedder):
    """Hugging Face ``transformers`` CLIP/SigLIP from a hub id or a local folder."""

    def __init__(self, name_or_path: str, model: Any = None, processor: Any = None):
        super().__init__()
        self.name_or_path = name_or_path
        self.model_id = f"hf-clip:{name_or_path}"
        # AutoModel / AutoProcessor pick the class (CLIP, SigLIP...) at run time.
        self._model: Any = model
        self._processor: Any = processor
        if model is not None:
            self._loaded = True
        self._spaces: dict[str, int] | None = None

    def _load(self) -> None:
        from transformers import AutoModel, AutoProcessor
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # we show our own progress

        self._model = AutoModel.from_pretrained(self.name_or_path).eval()
        self._processor = AutoProcessor.from_pretrained(self.name_or_path)  # type: ignore[no-untyped-call]

    @property
    def spaces(self) -> dict[str, int]:  # type: ignore[override]
        self._ensure()
        config = self._model.config
        dim = getattr(config, "projection_dim", None) or config.text_config.hidden_size
        return {SEMANTIC: int(dim)}

    @staticmethod
    def _tensor(out: Any) -> torch.Tensor:
        # transformers >= 5 may return a model output object rather than a tensor.
        tensor: torch.Tensor = out if hasattr(out, "numpy") else out.pooler_output
        return tensor

    def encode_images(self, images: Sequence[Image.Image]) -> dict[str, np.ndarray]:
        import torch

        self._ensure()
        inputs = self._processor(images=list(images), return_tensors="pt")
        with torch.inference_mode():
            out = self._tensor(self._model.get_image_features(pixel_values=inputs["pixel_values"]))
        return {SEMANTIC: l2_normalize(out.float().numpy())}

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        self._ensure()
        inputs = self._processor(text=list(texts), return_tensors="pt", padding=True, truncation=True)
        with torch.inference_mode():
            out = self._tensor(
                self._model.get_text_features(
                    input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask")
                )
            )
        return l2_normalize(out.float().numpy())
