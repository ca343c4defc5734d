"""CLIP-family models (OpenCLIP, Hugging Face CLIP and SigLIP) behind :class:`Embedder`.

These need internet the first time (or a populated Hugging Face cache / a
local folder); they give much better text search than the bundled default.
Text and images share one space, so image similarity uses it too.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from .base import SEMANTIC, Embedder, l2_normalize
from .torch_compat import prepare_torch_imports

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
                prepare_torch_imports()
                import torch

                torch.set_num_threads(os.cpu_count() or 1)
                self._load()
                self._loaded = True

    def _load(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


def _rgb(images: Sequence[Image.Image]) -> list[Image.Image]:
    # Some processors (SigLIP2's) do not convert: a greyscale or RGBA query would fail in them.
    return [im if im.mode == "RGB" else im.convert("RGB") for im in images]


def write_openclip_config(folder: Path, architecture: str, tag: str) -> None:
    """Give a downloaded OpenCLIP folder the ``open_clip_config.json`` that ``local-dir:`` loading reads.

    Some hub repos (LAION's B/32) carry only weights: OpenCLIP then takes the model and
    preprocessing configuration from its built-in architecture and pretrained tag, and
    this writes exactly that beside the weights. A text tower from transformers
    (XLM-RoBERTa) is pointed at its config and tokenizer downloaded into ``text/``, so
    loading never asks the hub for them.
    """
    prepare_torch_imports()
    import open_clip

    path = folder / "open_clip_config.json"
    if path.exists():
        config = json.loads(path.read_text())
    else:
        model_cfg = open_clip.get_model_config(architecture)
        if model_cfg is None:
            raise ValueError(f"OpenCLIP has no architecture {architecture!r}")
        pretrained = open_clip.get_pretrained_cfg(architecture, tag) or {}
        keys = ("mean", "std", "interpolation", "resize_mode")
        preprocess = {k: pretrained[k] for k in keys if pretrained.get(k) is not None}
        config = {"model_cfg": model_cfg, "preprocess_cfg": preprocess}
    text = folder / "text"
    if text.is_dir():
        text_cfg = config["model_cfg"].setdefault("text_cfg", {})
        for key in ("hf_model_name", "hf_tokenizer_name"):
            if key in text_cfg:
                text_cfg[key] = str(text)
        text_cfg["hf_model_pretrained"] = False  # the CLIP checkpoint holds the text tower's weights
    path.write_text(json.dumps(config, indent=1))


class OpenClipEmbedder(_TorchEmbedder):
    """``open_clip`` model by architecture and pretrained tag, ``hf-hub:org/repo`` or ``local-dir:/folder``."""

    def __init__(
        self,
        architecture: str,
        pretrained: str | None,
        model: Any = None,
        preprocess: Callable[[Image.Image], torch.Tensor] | None = None,
        tokenizer: Callable[[list[str]], torch.Tensor] | None = None,
        model_id: str | None = None,
    ):
        super().__init__()
        self.architecture, self.pretrained = architecture, pretrained
        schema = architecture.startswith(("hf-hub:", "local-dir:"))
        self.model_id = model_id or (
            f"open_clip:{architecture}" if schema else f"open_clip:{architecture}/{pretrained or 'random'}"
        )
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
        batch = torch.stack([self._preprocess(im) for im in _rgb(images)])
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

    def __init__(self, name_or_path: str, model: Any = None, processor: Any = None, model_id: str | None = None):
        super().__init__()
        self.name_or_path = name_or_path
        self.model_id = model_id or f"hf-clip:{name_or_path}"
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
        # Every processor output goes in: SigLIP2 needs its patch mask and spatial shapes too.
        inputs = self._processor(images=_rgb(images), return_tensors="pt")
        with torch.inference_mode():
            out = self._tensor(self._model.get_image_features(**inputs))
        return {SEMANTIC: l2_normalize(out.float().numpy())}

    @property
    def _siglip(self) -> bool:
        return str(getattr(self._model.config, "model_type", "")).startswith("siglip")

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        self._ensure()
        if self._siglip:
            # SigLIP pools the last position, so it must see texts padded as in training (to the full
            # length) or a text's vector would depend on the others in its batch; it was trained on
            # lowercased text.
            length = int(self._model.config.text_config.max_position_embeddings)
            inputs = self._processor.tokenizer(
                [t.lower() for t in texts],
                return_tensors="pt",
                padding="max_length",
                max_length=length,
                truncation=True,
            )
        else:  # CLIP pools the end-of-text token: padding to the longest text in the batch is exact
            inputs = self._processor.tokenizer(list(texts), return_tensors="pt", padding=True, truncation=True)
        with torch.inference_mode():
            out = self._tensor(
                self._model.get_text_features(
                    input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask")
                )
            )
        return l2_normalize(out.float().numpy())
