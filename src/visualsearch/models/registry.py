"""Pick an embedder by name, so a backend is swapped by configuration.

Names:
- ``conse-efficientnet-lite0-minilm`` (default), ``...-lite1-...``, ``...-lite2-...``:
  bundled, offline.
- ``open_clip:<architecture>/<pretrained tag or checkpoint path>``, e.g.
  ``open_clip:ViT-B-32/laion2b_s34b_b79k``: OpenCLIP (``pip install visualsearch[clip]``);
  weights from the Hugging Face cache or downloaded on first use.
  Also ``open_clip:hf-hub:<org/repo>`` and ``open_clip:local-dir:<folder>``.
- ``hf-clip:<hub id or local folder>``, e.g. ``hf-clip:openai/clip-vit-base-patch32``:
  Hugging Face transformers CLIP, SigLIP or SigLIP2.
- A curated name from :mod:`visualsearch.models.zoo` (``clip-vit-b32-laion2b``,
  ``siglip2-base``...), once ``visualsearch models use NAME`` has downloaded it: it loads
  from the model store, never from the network.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..config import default_cache_dir
from ..errors import ConfigError, ModelNotInstalled
from .base import Embedder
from .hub import installed_manifest, model_dir
from .zoo import card as curated

_CONSE = re.compile(r"^conse-efficientnet-(lite[012])-minilm$")


def load_embedder(name: str, cache_dir: Path | None = None, threads: int = 0) -> Embedder:
    """The embedder called ``name``; ``threads`` for its image model (0: the model's own choice)."""
    match = _CONSE.match(name)
    if match:
        from .conse import ConSEEmbedder

        return ConSEEmbedder(match.group(1), cache_dir=cache_dir, threads=threads)
    found = curated(name)
    if found is not None and found.repo is not None:
        return _load_curated(name, cache_dir or default_cache_dir(), threads)
    if name.startswith("open_clip:"):
        from .clip import OpenClipEmbedder

        rest = name.removeprefix("open_clip:")
        if rest.startswith(("hf-hub:", "local-dir:")):  # OpenCLIP's own schemas: the rest is a repo or a path
            return OpenClipEmbedder(rest, None, threads=threads)
        arch, _, pretrained = rest.partition("/")
        return OpenClipEmbedder(arch, pretrained or None, threads=threads)
    if name.startswith("hf-clip:"):
        from .clip import HFClipEmbedder

        return HFClipEmbedder(name.removeprefix("hf-clip:"), threads=threads)
    raise ConfigError(
        f"unknown model {name!r}; use conse-efficientnet-lite0-minilm (default), a name from "
        "`visualsearch models list`, open_clip:<arch>/<pretrained> or hf-clip:<hub id or folder>"
    )


def _load_curated(name: str, cache_dir: Path, threads: int = 0) -> Embedder:
    card = curated(name)
    assert card is not None
    manifest = installed_manifest(cache_dir, name)
    if manifest is None:
        raise ModelNotInstalled(f"model {name} is not downloaded yet: run `visualsearch models use {name}`")
    folder = model_dir(cache_dir, name)
    # The Hub revision is part of the id: new weights under the same name never meet the old vectors.
    model_id = f"{card.model_id}@{str(manifest['revision'])[:12]}"
    if card.loader == "hf-clip":
        from .clip import HFClipEmbedder

        return HFClipEmbedder(
            str(folder), model_id=model_id, runtime=card.runtime, cache_dir=cache_dir, threads=threads
        )
    from .clip import OpenClipEmbedder, write_openclip_config

    if card.openclip_arch and (not (folder / "open_clip_config.json").exists() or (folder / "config.json").exists()):
        write_openclip_config(folder, *card.openclip_arch)
    return OpenClipEmbedder(
        f"local-dir:{folder}", None, model_id=model_id, runtime=card.runtime, cache_dir=cache_dir, threads=threads
    )
