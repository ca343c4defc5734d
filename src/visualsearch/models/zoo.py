"""The curated models: what `visualsearch models list` offers, and how each one loads.

Each entry names a model by a short, stable name and says where its files come from
(a Hugging Face Hub repo), which files a loader needs (nothing else is downloaded:
no TensorFlow/Flax copies, no duplicate pickles), how it loads (``hf-clip`` through
transformers or ``open_clip``), and what a user needs to choose: embedding size,
download size, languages and published text->image retrieval, each figure with the
place it was published. CPU speed is not published data: it is measured on the
machine that runs ``benchmarks/models.py`` (each architecture at its real size with
random weights, since speed does not depend on the weights) and read from
``data/model_speeds.json``.

Published figures are text->image Recall@1 in %, COCO 5k test / Flickr30k 1k test,
zero-shot. They come from two protocols (CLIP_benchmark, used by OpenCLIP and Apple;
Google's own for SigLIP 2); the ``source`` column says which.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

DEFAULT_NAME = "conse-efficientnet-lite0-minilm"

#: Sources of the published figures, by key.
SOURCES = {
    "openclip": "OpenCLIP retrieval results (docs/openclip_retrieval_results.csv, CLIP_benchmark)",
    "mobileclip": "apple/ml-mobileclip results/*.jsonl (CLIP_benchmark / DataComp protocol)",
    "siglip2": "big_vision SigLIP 2 README (Google's protocol; Flickr30k not published there)",
    "measured": "measured by benchmarks/quality.py on COCO-239 (not COCO 5k; see docs/benchmarks.md)",
}


@dataclass(frozen=True)
class ModelCard:
    name: str
    family: str
    loader: Literal["bundled", "hf-clip", "open_clip"]
    dim: int
    #: Approximate download in MB (decimal, as the Hub shows it); 0 for the bundled model.
    download_mb: int
    languages: str
    coco_r1: float | None
    flickr_r1: float | None
    source: str
    #: When to pick it, in a few words.
    pick: str
    repo: str | None = None
    #: Groups of file names: from each group the first one the repo has is downloaded
    #: (weights: safetensors before pickles); groups marked optional may be absent.
    files: tuple[tuple[str, ...], ...] = ()
    optional: tuple[tuple[str, ...], ...] = ()
    #: For OpenCLIP repos without an ``open_clip_config.json``: the built-in architecture and
    #: pretrained tag whose configuration (model and preprocessing) describes these weights.
    openclip_arch: tuple[str, str] | None = None
    licence: str = ""
    #: Where the image tower runs, chosen by benchmarks/models.py: PyTorch for the ViTs (as fast as
    #: ONNX Runtime here), ONNX Runtime for MobileCLIP's convolutions (2x faster).
    runtime: Literal["torch", "onnx"] = "torch"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def downloadable(self) -> bool:
        return self.repo is not None

    @property
    def model_id(self) -> str:
        """The stem of the id its vectors are stored under (the loader appends ``@<revision>``)."""
        if self.repo is None:
            return self.name
        prefix = "hf-clip:" if self.loader == "hf-clip" else "open_clip:hf-hub:"
        return prefix + self.repo


_HF_CLIP_FILES = (("config.json",), ("model.safetensors", "pytorch_model.bin"))
_HF_CLIP_OPTIONAL = (
    ("preprocessor_config.json",),
    ("processor_config.json",),
    ("tokenizer.json",),
    ("tokenizer_config.json",),
    ("special_tokens_map.json",),
    ("vocab.json",),
    ("merges.txt",),
    ("tokenizer.model",),
    ("spiece.model",),
)
_OPENCLIP_FILES = (
    ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin"),
)
_OPENCLIP_OPTIONAL = (("open_clip_config.json",),)

CARDS: tuple[ModelCard, ...] = (
    ModelCard(
        name=DEFAULT_NAME,
        family="bundled ConSE (EfficientNet-Lite0 + MiniLM)",
        loader="bundled",
        dim=384,
        download_mb=0,
        languages="English",
        coco_r1=None,
        flickr_r1=None,
        source="measured",
        pick="works offline straight after install; good at objects and animals, weak at scenes",
    ),
    ModelCard(
        name="clip-vit-b32-openai",
        family="CLIP ViT-B/32 (OpenAI), transformers",
        loader="hf-clip",
        repo="openai/clip-vit-base-patch32",
        files=_HF_CLIP_FILES,
        optional=_HF_CLIP_OPTIONAL,
        dim=512,
        download_mb=605,
        languages="English",
        coco_r1=30.4,
        flickr_r1=58.8,
        source="openclip",
        pick="the classic; what Immich ships by default",
    ),
    ModelCard(
        name="clip-vit-b32-laion2b",
        family="CLIP ViT-B/32 (LAION-2B), OpenCLIP",
        loader="open_clip",
        repo="laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
        files=_OPENCLIP_FILES,
        optional=_OPENCLIP_OPTIONAL,
        openclip_arch=("ViT-B-32", "laion2b_s34b_b79k"),
        dim=512,
        download_mb=605,
        languages="English",
        coco_r1=39.3,
        flickr_r1=66.8,
        source="openclip",
        pick="the fastest CLIP here, and clearly better than OpenAI's B/32 at the same cost",
    ),
    ModelCard(
        name="mobileclip2-s2",
        family="MobileCLIP2-S2, OpenCLIP",
        loader="open_clip",
        repo="timm/MobileCLIP2-S2-OpenCLIP",
        files=_OPENCLIP_FILES,
        optional=_OPENCLIP_OPTIONAL,
        openclip_arch=("MobileCLIP2-S2", "dfndr2b"),
        dim=512,
        download_mb=398,
        languages="English",
        coco_r1=48.8,
        flickr_r1=74.8,
        source="mobileclip",
        pick="near SigLIP 2's retrieval at twice its speed here (image tower under ONNX Runtime)",
        runtime="onnx",
        licence="apple-amlr (Apple's research licence: check it before commercial use)",
    ),
    ModelCard(
        name="siglip2-base",
        family="SigLIP 2 B/16 224 px, transformers",
        loader="hf-clip",
        repo="google/siglip2-base-patch16-224",
        files=_HF_CLIP_FILES,
        optional=_HF_CLIP_OPTIONAL,
        dim=768,
        download_mb=1500,
        languages="multilingual",
        coco_r1=52.1,
        flickr_r1=None,
        source="siglip2",
        pick="best retrieval here, multilingual (Gemma tokenizer); the slowest on CPU",
    ),
    ModelCard(
        name="clip-vit-b32-multilingual",
        family="CLIP ViT-B/32 + XLM-RoBERTa base (LAION-5B), OpenCLIP",
        loader="open_clip",
        repo="laion/CLIP-ViT-B-32-xlm-roberta-base-laion5B-s13B-b90k",
        files=_OPENCLIP_FILES,
        optional=_OPENCLIP_OPTIONAL,
        openclip_arch=("xlm-roberta-base-ViT-B-32", "laion5b_s13b_b90k"),
        dim=512,
        download_mb=1460,
        languages="multilingual",
        coco_r1=37.8,
        flickr_r1=64.5,
        source="openclip",
        pick="queries in about 100 languages (XLM-RoBERTa text tower), B/32 image speed; English figures shown",
        extra={"text_repo": "FacebookAI/xlm-roberta-base"},
    ),
)

BY_NAME = {card.name: card for card in CARDS}


def missing_extra(card: ModelCard) -> str | None:
    """What to install before ``card`` can load (OpenCLIP is an optional extra), or None."""
    import importlib.util

    if card.loader == "open_clip" and importlib.util.find_spec("open_clip") is None:
        return (
            f"{card.name} needs OpenCLIP, an optional extra: run `scripts/setup clip` "
            "(or `pip install 'visualsearch[clip]'`) first"
        )
    return None


def card(name: str) -> ModelCard | None:
    return BY_NAME.get(name)


@lru_cache(maxsize=1)
def measured_speeds() -> dict[str, Any]:
    """``{name: {"images_per_s": .., "text_ms": .., "machine": ..}}`` from benchmarks/models.py, or empty."""
    try:
        text = resources.files("visualsearch.models").joinpath("data/model_speeds.json").read_text()
    except (FileNotFoundError, OSError):
        return {}
    data: dict[str, Any] = json.loads(text)
    return data
