"""CLIP-family models (OpenCLIP, Hugging Face CLIP and SigLIP) behind :class:`Embedder`.

These need internet the first time (or a populated Hugging Face cache / a
local folder); they give much better text search than the bundled default.
Text and images share one space, so image similarity uses it too.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from .base import SEMANTIC, Embedder, l2_normalize
from .onnx import OnnxSession, cached_onnx_path, export_onnx, open_session
from .torch_compat import prepare_torch_imports

if TYPE_CHECKING:
    import torch


#: Bumped when the exported image graph changes, so cached exports are made again.
ONNX_VERSION = "clip-image-v1"

log = logging.getLogger(__name__)


class _TorchEmbedder(Embedder):
    """Loading, and the image tower in PyTorch or, when asked, ONNX Runtime.

    Measured here (benchmarks/models.py, 2 cores, 640x480 photos, real-size architectures):
    PyTorch runs these transformer towers as fast as ONNX Runtime or faster: ViT-B/32
    (OpenCLIP) 32.6 images/s against 28.8, ViT-B/32 (transformers) 30.6 against 29.9,
    SigLIP B/16 7.6 against 6.8 (a second run: 27.3 / 31.7, 32.5 / 27.0, 7.4 / 6.5: within
    the noise); ONNX Runtime's transformer optimiser fused no attention in these graphs.
    Convolutional towers are another matter: MobileCLIP2-S2 ran 16.0 images/s under ONNX
    Runtime against 7.8 in PyTorch. So the runtime is chosen per model
    (:attr:`visualsearch.models.zoo.ModelCard.runtime`), PyTorch by default. ``runtime="onnx"``
    exports the image tower once per model folder (keyed by the weights file's path, size
    and time) and is tested to give the same vectors; a model whose image inputs are more
    than one pixel tensor (SigLIP2 NaFlex: patches, a mask and shapes) or that cannot be
    exported stays in PyTorch.
    """

    similarity_space = SEMANTIC
    #: The loaded torch model (transformers or open_clip; neither has type information).
    _model: Any

    def __init__(self, runtime: str = "torch", cache_dir: Path | None = None, threads: int = 0) -> None:
        # Every core by default: the forward pass of these towers is most of an image's cost.
        self.threads = threads or os.cpu_count() or 1
        self._lock = threading.Lock()
        self._loaded = False
        self.runtime = runtime
        self.cache_dir = cache_dir
        self._session: OnnxSession | None = None
        self._onnx_failed = False

    def _weights_stamp(self) -> str | None:
        """What identifies the weights on disk (None: not a local folder, so no cached export)."""
        return None

    def _torch_image(self, pixel_values: torch.Tensor) -> torch.Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    def _image_features(self, inputs: dict[str, Any]) -> np.ndarray:
        if self.runtime == "onnx" and set(inputs) == {"pixel_values"}:
            session = self._onnx_session(inputs["pixel_values"])
            if session is not None:
                return session.run(None, {"pixel_values": inputs["pixel_values"].numpy()})[0]
        import torch

        with torch.inference_mode():
            if set(inputs) == {"pixel_values"}:
                return self._torch_image(inputs["pixel_values"]).float().numpy()
            return self._torch_image_inputs(inputs).float().numpy()

    def _torch_image_inputs(self, inputs: dict[str, Any]) -> torch.Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    def _onnx_session(self, example: torch.Tensor) -> OnnxSession | None:
        with self._lock:
            if self._session is not None or self._onnx_failed:
                return self._session
            stamp = self._weights_stamp()
            if stamp is None:
                self._onnx_failed = True
                return None
            import torch

            path = cached_onnx_path(self.cache_dir, "clip-image", f"{stamp}:{ONNX_VERSION}")
            try:
                if not path.exists():
                    tower = self

                    class ImageTower(torch.nn.Module):
                        def __init__(self) -> None:
                            super().__init__()
                            self.model = tower._model  # a submodule: its weights export as weights

                        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
                            return tower._torch_image(pixel_values)

                    # nn.MultiheadAttention's fused fast path (OpenCLIP's towers) has no ONNX form.
                    fastpath = torch.backends.mha.get_fastpath_enabled()
                    torch.backends.mha.set_fastpath_enabled(False)
                    try:
                        with torch.no_grad():
                            export_onnx(
                                ImageTower().eval(),
                                (example[:1].contiguous(),),
                                path,
                                ["pixel_values"],
                                ["features"],
                                {"pixel_values": {0: "batch"}, "features": {0: "batch"}},
                            )
                    finally:
                        torch.backends.mha.set_fastpath_enabled(fastpath)
                self._session = open_session(path, self.threads, spin=False)  # runs beside decoders
            except Exception as exc:  # an architecture the exporter cannot handle: PyTorch it is
                log.warning("%s: image tower stays in PyTorch (ONNX export failed: %s)", self.model_id, exc)
                self._onnx_failed = True
            return self._session

    def _ensure(self) -> None:
        with self._lock:
            if not self._loaded:
                prepare_torch_imports()
                import torch

                torch.set_num_threads(self.threads)
                self._load()
                self._loaded = True

    def _load(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


def _folder_stamp(folder: Path) -> str | None:
    """Path, size and time of the weights in a model folder: a new download means a new export."""
    weights = (
        sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".pth")) if folder.is_dir() else []
    )
    if not weights:
        return None
    return ";".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in weights)


def _rgb(images: Sequence[Image.Image]) -> list[Image.Image]:
    # Some processors (SigLIP2's) do not convert: a greyscale or RGBA query would fail in them.
    return [im if im.mode == "RGB" else im.convert("RGB") for im in images]


def write_openclip_config(folder: Path, architecture: str, tag: str) -> None:
    """Give a downloaded OpenCLIP folder the ``open_clip_config.json`` that ``local-dir:`` loading reads.

    Some hub repos (LAION's B/32) carry only weights: OpenCLIP then takes the model and
    preprocessing configuration from its built-in architecture and pretrained tag, and
    this writes exactly that beside the weights. A text tower from transformers
    (XLM-RoBERTa) is pointed at its config and tokenizer, downloaded with it, so
    loading never asks the hub for them: they sit beside the weights (OpenCLIP reads a
    local folder's tokenizer from the folder itself), marked by the text model's
    ``config.json``.
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
    text_cfg = config["model_cfg"].setdefault("text_cfg", {})
    if (folder / "config.json").is_file() and "hf_model_name" in text_cfg:
        for key in ("hf_model_name", "hf_tokenizer_name"):
            text_cfg[key] = str(folder)
        text_cfg["hf_model_pretrained"] = False  # the CLIP checkpoint holds the text tower's weights
    text = json.dumps(config, indent=1)
    if not path.exists() or path.read_text() != text:  # loaded on every start: write only a change, atomically
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)


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
        runtime: str = "torch",
        cache_dir: Path | None = None,
        threads: int = 0,
    ):
        super().__init__(runtime, cache_dir, threads)
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
        try:  # MobileCLIP's branches fold into single convolutions for inference (Apple's advice)
            from timm.utils.model import reparameterize_model

            self._model = reparameterize_model(self._model)
        except ImportError:  # pragma: no cover - timm comes with open_clip
            pass
        self._model.eval()
        self._tokenizer = open_clip.get_tokenizer(self.architecture)
        self._set_spaces()

    def _weights_stamp(self) -> str | None:
        if not self.architecture.startswith("local-dir:"):
            return None
        return _folder_stamp(Path(self.architecture.removeprefix("local-dir:")))

    def _torch_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self._model.encode_image(pixel_values)
        return out

    def _set_spaces(self) -> None:
        # CLIP has embed_dim; CustomTextCLIP (a transformers text tower) only its towers' output size.
        dim = getattr(self._model, "embed_dim", 0) or getattr(self._model.visual, "output_dim", 0)
        if not dim:  # a timm image tower (MobileCLIP) with a transformers-style text tower: ask the model
            import torch

            with torch.inference_mode():
                dim = self._model.encode_text(self._tokenizer(["a"])).shape[-1]
        dim = int(dim)
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
        return {SEMANTIC: l2_normalize(self._image_features({"pixel_values": batch}))}

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        self._ensure()
        with torch.inference_mode():
            out = self._model.encode_text(self._tokenizer(list(texts)))
        return l2_normalize(out.float().numpy())


class HFClipEmbedder(_TorchEmbedder):
    """Hugging Face ``transformers`` CLIP/SigLIP from a hub id or a local folder."""

    def __init__(
        self,
        name_or_path: str,
        model: Any = None,
        processor: Any = None,
        model_id: str | None = None,
        runtime: str = "torch",
        cache_dir: Path | None = None,
        threads: int = 0,
    ):
        super().__init__(runtime, cache_dir, threads)
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

        self._ensure()
        # Every processor output goes in: SigLIP2 needs its patch mask and spatial shapes too.
        inputs = dict(self._processor(images=_rgb(images), return_tensors="pt"))
        return {SEMANTIC: l2_normalize(self._image_features(inputs))}

    def _weights_stamp(self) -> str | None:
        folder = Path(self.name_or_path)
        return _folder_stamp(folder) if folder.is_dir() else None

    def _torch_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self._tensor(self._model.get_image_features(pixel_values=pixel_values))

    def _torch_image_inputs(self, inputs: dict[str, Any]) -> torch.Tensor:
        return self._tensor(self._model.get_image_features(**inputs))

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
