"""Pick an embedder by name, so a backend is swapped by configuration.

Names:
- ``conse-efficientnet-lite0-minilm`` (default), ``...-lite1-...``, ``...-lite2-...``:
  bundled, offline.
- ``open_clip:<architecture>/<pretrained tag or checkpoint path>``, e.g.
  ``open_clip:ViT-B-32/laion2b_s34b_b79k``: OpenCLIP (``pip install visualsearch[clip]``);
  weights from the Hugging Face cache or downloaded on first use.
- ``hf-clip:<hub id or local folder>``, e.g. ``hf-clip:openai/clip-vit-base-patch32``:
  Hugging Face transformers CLIP or SigLIP.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import ConfigError
from .base import Embedder

_CONSE = re.compile(r"^conse-efficientnet-(lite[012])-minilm$")


def load_embedder(name: str, cache_dir: Path | None = None) -> Embedder:
    match = _CONSE.match(name)
    if match:
        from .conse import ConSEEmbedder

        return ConSEEmbedder(match.group(1), cache_dir=cache_dir)
    if name.startswith("open_clip:"):
        from .clip import OpenClipEmbedder

        arch, _, pretrained = name.removeprefix("open_clip:").partition("/")
        return OpenClipEmbedder(arch, pretrained or None)
    if name.startswith("hf-clip:"):
        from .clip import HFClipEmbedder

        return HFClipEmbedder(name.removeprefix("hf-clip:"))
    raise ConfigError(
        f"unknown model {name!r}; use conse-efficientnet-lite0-minilm (default), "
        "open_clip:<arch>/<pretrained> or hf-clip:<hub id or folder>"
    )
