"""Make ``torchvision`` importable next to the CPU build of PyTorch.

The optional OpenCLIP extra needs ``torchvision`` (``open_clip`` and ``timm`` import it
at import time). PyPI only has CUDA builds of it: next to our pinned CPU torch its
compiled operators cannot load, and ``import torchvision`` then fails with
``RuntimeError: operator torchvision::nms does not exist`` while registering fake
kernels for them. Once it is installed, that failure also breaks every package that
probes for torchvision: transformers' image processors and CLIP models,
``sentence_transformers`` (and so the bundled default model), ``timm`` and ``open_clip``.

Declaring the two operator schemas it registers against lets the Python part import;
CLIP-style models use only its image transforms, never its detection operators.
Measured here (torchvision 0.28.0+cu130, torch 2.13.0+cpu): without this ``import
open_clip`` fails; with it OpenCLIP, timm, transformers and sentence-transformers load.
A working torchvision (a CPU build) is left alone: the schemas are only declared when
the plain import fails for this reason.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from typing import Any

_lock = threading.Lock()
_done = False
#: Keeps the operator declarations alive: a collected ``torch.library.Library`` removes them.
_library: Any = None


def prepare_torch_imports() -> None:
    """Call before importing transformers, open_clip, timm or sentence_transformers.

    Cheap when torchvision is not installed (a lookup) or after the first call.
    """
    global _done, _library
    if _done:
        return
    with _lock:
        if _done:
            return
        _done = True
        if importlib.util.find_spec("torchvision") is None:
            return
        try:
            import torchvision  # noqa: F401

            return
        except RuntimeError as exc:
            if "torchvision::" not in str(exc):
                raise
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        import torch

        library = torch.library.Library("torchvision", "FRAGMENT")  # type: ignore[no-untyped-call]
        library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")  # type: ignore[no-untyped-call]
        library.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")  # type: ignore[no-untyped-call]
        _library = library
        import torchvision  # noqa: F401,F811
