"""Tiny randomly initialised models of each family, in the layout their hub repos use.

Built offline in well under a second each, so the model-download tests can publish
them on the fake hub (tests/support/fakehub.py) under the curated models' real repo
ids and run ``visualsearch models use`` end to end. Sizes: CLIP about 0.2 MB,
SigLIP2 0.3 MB, OpenCLIP 3.2 MB (its bundled tokenizer fixes the vocabulary at 49,408).
"""

from __future__ import annotations

import json
from pathlib import Path

from visualsearch.models.torch_compat import prepare_torch_imports

TINY_TEXT = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4}
TINY_VISION = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4}


def build_tiny_clip(out: Path, seed: int = 0) -> Path:
    """A transformers CLIP (like ``openai/clip-vit-base-patch32``) with a byte-level BPE tokenizer."""
    prepare_torch_imports()
    import torch
    from tokenizers import pre_tokenizers
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    merges: list[tuple[str, str]] = []
    for word in ["cat", "dog", "red", "photo", "night"]:
        cur = list(word[:-1]) + [word[-1] + "</w>"]
        while len(cur) > 1:
            merges.append((cur[0], cur[1]))
            vocab.setdefault(cur[0] + cur[1], len(vocab))
            cur = [cur[0] + cur[1]] + cur[2:]
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=16)
    config = CLIPConfig(
        text_config=dict(
            TINY_TEXT,
            vocab_size=len(tokenizer),
            max_position_embeddings=16,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        ),
        vision_config=dict(TINY_VISION, image_size=32, patch_size=8),
        projection_dim=16,
    )
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    model.save_pretrained(out)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)
    return out


def _gemma_style_bpe() -> tuple[dict[str, int], list[tuple[str, ...]]]:
    """A small BPE vocabulary with byte fallback, as SigLIP 2's Gemma tokenizer has (no sentencepiece needed)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    corpus = ["a photo of a cat", "a photo of a dog", "a red car", "a blue sky over the sea", "a night"] * 20
    bpe = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    bpe.normalizer = normalizers.Replace(" ", "\u2581")
    bpe.pre_tokenizer = pre_tokenizers.Split(" ", behavior="merged_with_previous")
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"] + [f"<0x{i:02X}>" for i in range(256)]
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=specials))
    state = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    return state["vocab"], merges


def build_tiny_siglip2(out: Path, seed: int = 0) -> Path:
    """SigLIP 2 at a fixed resolution, like ``google/siglip2-base-patch16-224``: the SigLIP architecture
    (``SiglipModel``, 224 px squashed, mean/std 0.5) with a Gemma-style tokenizer and 64 text positions."""
    prepare_torch_imports()
    import torch
    from transformers import GemmaTokenizer, SiglipConfig, SiglipImageProcessorPil, SiglipModel, SiglipProcessor

    vocab, merges = _gemma_style_bpe()
    tokenizer = GemmaTokenizer(vocab=vocab, merges=merges, model_max_length=64)
    config = SiglipConfig(
        text_config=dict(TINY_TEXT, vocab_size=len(tokenizer), max_position_embeddings=64),
        vision_config=dict(TINY_VISION, image_size=32, patch_size=8),
    )
    torch.manual_seed(seed)
    model = SiglipModel(config).eval()
    processor = SiglipProcessor(
        image_processor=SiglipImageProcessorPil(size={"height": 32, "width": 32}), tokenizer=tokenizer
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def build_tiny_siglip2_naflex(out: Path, seed: int = 0) -> Path:
    """SigLIP 2 NaFlex (like ``google/siglip2-base-patch16-naflex``): aspect-preserving patches.

    ``Siglip2Processor`` forces 16-pixel patches, 256 patches and 64 text positions,
    so the tiny model keeps those and shrinks everything else.
    """
    prepare_torch_imports()
    import torch
    from transformers import Siglip2Config, Siglip2ImageProcessorPil, Siglip2Model, Siglip2Processor, Siglip2Tokenizer

    vocab, merges = _gemma_style_bpe()
    tokenizer = Siglip2Tokenizer(vocab=vocab, merges=merges, model_max_length=64)
    config = Siglip2Config(
        text_config=dict(TINY_TEXT, vocab_size=len(tokenizer), max_position_embeddings=64),
        vision_config=dict(TINY_VISION, patch_size=16, num_patches=256),
    )
    torch.manual_seed(seed)
    model = Siglip2Model(config).eval()
    processor = Siglip2Processor(
        image_processor=Siglip2ImageProcessorPil(patch_size=16, max_num_patches=256), tokenizer=tokenizer
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


TINY_OPENCLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1},
}


def build_tiny_openclip(out: Path, seed: int = 0, preprocess: dict[str, object] | None = None) -> Path:
    """An OpenCLIP model in the hub layout ``hf-hub:`` / ``local-dir:`` read: config + safetensors."""
    prepare_torch_imports()
    import open_clip
    import torch
    from open_clip.factory import _MODEL_CONFIGS
    from safetensors.torch import save_file

    _MODEL_CONFIGS["visualsearch-tiny-ViT"] = json.loads(json.dumps(TINY_OPENCLIP))
    torch.manual_seed(seed)
    model = open_clip.create_model("visualsearch-tiny-ViT", pretrained=None)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "open_clip_model.safetensors"))
    preprocess_cfg = preprocess or {
        "mean": [0.5] * 3,
        "std": [0.5] * 3,
        "interpolation": "bilinear",
        "resize_mode": "squash",
    }
    (out / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": TINY_OPENCLIP, "preprocess_cfg": preprocess_cfg})
    )
    return out


def build_tiny_multilingual_openclip(out: Path, text_repo: Path, seed: int = 0) -> Path:
    """OpenCLIP with a transformers text tower, like ``xlm-roberta-base-ViT-B-32``: two repos.

    ``out`` gets the CLIP weights and an ``open_clip_config.json`` naming ``xlm-roberta-base``
    (as LAION's does); ``text_repo`` gets what OpenCLIP then reads from the hub: the text
    model's ``config.json`` and its tokenizer (a small Unigram vocabulary, no sentencepiece).
    """
    prepare_torch_imports()
    import open_clip
    import torch
    from open_clip.factory import _MODEL_CONFIGS
    from safetensors.torch import save_file
    from transformers import XLMRobertaConfig, XLMRobertaTokenizer

    words = ["a", "photo", "of", "cat", "dog", "night", "chat", "perro", "foto", "noche", "un", "de", "la"]
    pieces = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(c, -3.0) for c in "abcdefghijklmnopqrstuvwxyz"] + [("\u2581" + w, -1.0) for w in words]
    tokenizer = XLMRobertaTokenizer(vocab=pieces + [("<mask>", 0.0)], model_max_length=77)
    text_config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=80,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    text_repo.mkdir(parents=True, exist_ok=True)
    text_config.save_pretrained(text_repo)
    tokenizer.save_pretrained(text_repo)
    model_cfg = {
        "embed_dim": 16,
        "vision_cfg": TINY_OPENCLIP["vision_cfg"],
        "text_cfg": {
            "hf_model_name": str(text_repo),
            "hf_tokenizer_name": str(text_repo),
            "hf_pooler_type": "mean_pooler",
        },
    }
    _MODEL_CONFIGS["visualsearch-tiny-xlmr"] = json.loads(json.dumps(model_cfg))
    torch.manual_seed(seed)
    # pretrained_text=False: a random text tower (there are no text weights to read)
    model = open_clip.create_model("visualsearch-tiny-xlmr", pretrained=None, pretrained_text=False)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "open_clip_model.safetensors"))
    published = dict(
        model_cfg,
        text_cfg=dict(model_cfg["text_cfg"], hf_model_name="xlm-roberta-base", hf_tokenizer_name="xlm-roberta-base"),
    )
    preprocess = {
        "mean": [0.48145466, 0.4578275, 0.40821073],
        "std": [0.26862954, 0.26130258, 0.27577711],
        "interpolation": "bicubic",
        "resize_mode": "shortest",
    }
    (out / "open_clip_config.json").write_text(json.dumps({"model_cfg": published, "preprocess_cfg": preprocess}))
    return out
