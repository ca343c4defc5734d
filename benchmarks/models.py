#!/usr/bin/env python
"""CPU speed and memory of each curated model's architecture, at its real size, on this machine.

Speed does not depend on the weights, so each architecture is built with random weights
(no download: this runs offline) in the layout `visualsearch models use` installs, and
loaded through the same classes the product uses. For each model it prints:

  images/s   encode_images on 640x480 photos in batches of 32 (preprocessing + image tower),
             with the image tower in the runtime the product uses for the model (ModelCard.runtime),
             and in the other one (PyTorch / ONNX Runtime), so that choice stays measured
  text ms    one query text, median of 20
  RSS MB     peak resident memory of the process that loaded and ran the model
  disk MB    the weights file at float32

Each model runs in its own process (clean memory figures). `--write` stores the figures in
src/visualsearch/models/data/model_speeds.json, which `visualsearch models list` shows.
Tokenizers: the OpenAI/OpenCLIP CLIP vocabulary ships with open_clip and is used as is;
SigLIP 2's Gemma vocabulary (256k) is not here, so a small BPE stands in; its texts are
padded to 64 tokens either way, so the text time is the same.

Usage: python benchmarks/models.py [--only NAME] [--images 64] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

OUT = ROOT / "src" / "visualsearch" / "models" / "data" / "model_speeds.json"
#: The multilingual model's image tower is OpenCLIP's ViT-B-32: its images/s are that model's.
SAME_IMAGE_TOWER = {"clip-vit-b32-multilingual": "clip-vit-b32-laion2b"}


def _photos(n: int):
    from PIL import Image, ImageOps

    files = sorted((ROOT / "src/visualsearch/demo/photos").glob("*.jpg"))
    out = []
    while len(out) < n:
        for f in files:
            with Image.open(f) as im:
                out.append(ImageOps.fit(im.convert("RGB"), (640, 480)))
            if len(out) == n:
                break
    return out


def _clip_tokenizer():
    """OpenAI CLIP's BPE vocabulary (the file open_clip ships) as a transformers CLIPTokenizer."""
    import gzip

    import open_clip.tokenizer as oct
    from transformers import CLIPTokenizer

    merges = gzip.open(oct.default_bpe()).read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    merges = [tuple(m.split()) for m in merges]
    vocab = list(oct.bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(vocab={v: i for i, v in enumerate(vocab)}, merges=merges, model_max_length=77)


def build(name: str, folder: Path) -> str:
    """Write a random-weight model of ``name``'s architecture into ``folder``; return the loader spec."""
    from visualsearch.models.torch_compat import prepare_torch_imports

    prepare_torch_imports()
    import torch

    torch.manual_seed(0)
    if name == "clip-vit-b32-openai":
        from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

        model = CLIPModel(CLIPConfig()).eval()  # the default configuration is ViT-B/32
        model.save_pretrained(folder)
        CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=_clip_tokenizer()).save_pretrained(folder)
        return str(folder)
    if name == "siglip2-base":
        from transformers import GemmaTokenizer, SiglipConfig, SiglipImageProcessorPil, SiglipModel, SiglipProcessor

        from tests.support.tiny_models import _gemma_style_bpe

        vocab, merges = _gemma_style_bpe()
        config = SiglipConfig(  # google/siglip2-base-patch16-224: SigLIP B/16 with a 256k Gemma vocabulary
            text_config={"vocab_size": 256000, "max_position_embeddings": 64},
            vision_config={"image_size": 224, "patch_size": 16},
        )
        SiglipModel(config).eval().save_pretrained(folder)
        processor = SiglipProcessor(
            image_processor=SiglipImageProcessorPil(size={"height": 224, "width": 224}),
            tokenizer=GemmaTokenizer(vocab=vocab, merges=merges, model_max_length=64),
        )
        processor.save_pretrained(folder)
        return str(folder)
    import open_clip
    from safetensors.torch import save_file

    from visualsearch.models.zoo import BY_NAME

    arch, tag = BY_NAME[name].openclip_arch
    model = open_clip.create_model(arch, pretrained=None)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    from visualsearch.models.clip import write_openclip_config

    write_openclip_config(folder, arch, tag)
    return f"local-dir:{folder}"


def measure_one(name: str, images: int) -> dict:
    from visualsearch.models.clip import HFClipEmbedder, OpenClipEmbedder
    from visualsearch.models.zoo import BY_NAME

    photos = _photos(images)
    result: dict = {"name": name}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        card = BY_NAME[name]
        if card.repo is None:
            from visualsearch.models import load_embedder

            models = {"default": lambda: load_embedder(name, tmp)}  # its own runtime (ONNX)
            result["disk_mb"] = 0
        else:
            spec = build(name, tmp / "model")
            result["disk_mb"] = round(sum(p.stat().st_size for p in (tmp / "model").rglob("*")) / 1e6)
            cls = HFClipEmbedder if card.loader == "hf-clip" else OpenClipEmbedder
            other = "onnx" if card.runtime == "torch" else "torch"
            models = {
                key: (lambda runtime=runtime: cls(spec, None, runtime=runtime, cache_dir=tmp))
                for key, runtime in (("default", card.runtime), ("other", other))
            }
            result["runtime"], result["other_runtime"] = card.runtime, other
        for runtime, make in models.items():
            model = make()
            model.encode_images(photos[:2])  # load, export (ONNX), warm up
            started = time.perf_counter()
            for i in range(0, len(photos), 32):
                model.encode_images(photos[i : i + 32])
            result[f"images_per_s_{runtime}"] = round(len(photos) / (time.perf_counter() - started), 1)
            if runtime == "default":
                model.embed_texts(["warm up"])
                times = []
                for i in range(20):
                    t = time.perf_counter()
                    model.embed_texts([f"a photo of a dog on a beach at night {i}"])
                    times.append((time.perf_counter() - t) * 1000)
                result["text_ms"] = round(statistics.median(times), 1)
            del model
    result["rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", help="measure this model (repeatable)")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--write", action="store_true", help=f"store the figures in {OUT.relative_to(ROOT)}")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process: measure one model, print JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one, args.images)))
        return
    from visualsearch.models.zoo import CARDS

    names = args.only or [c.name for c in CARDS if c.name not in SAME_IMAGE_TOWER]
    print(f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}; {args.images} photos at 640x480")
    print(f"{'model':34} {'images/s':>8} {'runtime':>8} {'other':>14} {'text ms':>8} {'RSS MB':>7} {'disk MB':>8}")
    results = {}
    for name in names:
        proc = subprocess.run(
            [sys.executable, __file__, "--one", name, "--images", str(args.images)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            print(f"{name:34} failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results[name] = r
        print(
            f"{name:34} {r['images_per_s_default']:>8} {r.get('runtime', 'onnx'):>8} "
            f"{str(r.get('images_per_s_other', '-')) + ' ' + r.get('other_runtime', ''):>14} {r['text_ms']:>8} "
            f"{r['rss_mb']:>7} {r['disk_mb']:>8}"
        )
    if args.write:
        stored = json.loads(OUT.read_text()) if OUT.exists() else {}
        machine = f"{os.cpu_count()} CPU cores ({platform.machine()}), measured by benchmarks/models.py"
        for name, r in results.items():
            stored[name] = {
                "images_per_s": r["images_per_s_default"],
                "runtime": r.get("runtime", "onnx"),
                "images_per_s_other_runtime": r.get("images_per_s_other"),
                "text_ms": r["text_ms"],
                "rss_mb": r["rss_mb"],
                "disk_mb": r["disk_mb"],
                "machine": machine,
            }
        for name, same in SAME_IMAGE_TOWER.items():
            if same in stored:
                stored[name] = {
                    **stored[same],
                    "text_ms": None,
                    "rss_mb": None,
                    "disk_mb": None,
                    "note": f"image tower of {same}; text tower not measured",
                }
        OUT.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
        print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
