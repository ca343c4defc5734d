#!/usr/bin/env python
"""Search-quality and indexing-speed benchmark on ../shared/eval (protocols in its README).

Prints:
- indexing throughput (images/s) for coco-239 (median 640x480 JPEGs) and imagenet-sample;
- text -> image Recall@1/5/10 and MRR: COCO captions over the 239 COCO photos and over all
  1,239 photos; ImageNet "a photo of a {label}" over its 1,000 photos;
- COCO category queries ("a photo of a {category}"): mAP and nDCG@10 (our tuning signal:
  captions are never used for tuning);
- image -> image top-1 recovery of seeded transformed copies (resize, crop, JPEG q30,
  colour shift, flip), for each vector space, which is how the similarity space was chosen;
- text in images (OCR on): R@1/R@5 of a search by the word on signs rendered on the repository's
  photos (benchmarks/ocr.py's signs set; that script also has the real labelled set).

Usage: python benchmarks/quality.py [--eval ../shared/eval] [--model NAME] [--copies 200] [--no-text-in-image]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from visualsearch.config import Settings
from visualsearch.ingest.decode import decode_bytes
from visualsearch.services import Library, SearchService

ROOT = Path(__file__).resolve().parents[1]


def ranks_of(gold: list[int], results_per_query: list[list[int]]) -> np.ndarray:
    out = []
    for g, ids in zip(gold, results_per_query):
        out.append(ids.index(g) if g in ids else len(ids))
    return np.asarray(out)


def recall_mrr(ranks: np.ndarray) -> dict[str, float]:
    return {
        "R@1": float((ranks < 1).mean()),
        "R@5": float((ranks < 5).mean()),
        "R@10": float((ranks < 10).mean()),
        "MRR": float((1.0 / (ranks + 1)).mean()),
    }


def average_precision(ranked_relevance: np.ndarray) -> float:
    hits = np.cumsum(ranked_relevance)
    precision = hits / np.arange(1, len(ranked_relevance) + 1)
    return float((precision * ranked_relevance).sum() / max(1, ranked_relevance.sum()))


def ndcg_at(ranked_relevance: np.ndarray, k: int = 10) -> float:
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = float((ranked_relevance[:k] * discounts[: len(ranked_relevance[:k])]).sum())
    ideal = float(discounts[: int(min(k, ranked_relevance.sum()))].sum())
    return dcg / ideal if ideal else 0.0


TRANSFORMS = {
    "resize 0.5x": lambda im, rng: im.resize((im.width // 2, im.height // 2), Image.BICUBIC),
    "crop 80%": lambda im, rng: im.crop(_crop_box(im, 0.8, rng)),
    "jpeg q30": lambda im, rng: Image.open(io.BytesIO(_jpeg(im, 30))).convert("RGB"),
    "colour shift": lambda im, rng: ImageEnhance.Brightness(
        ImageEnhance.Color(im).enhance(rng.uniform(0.5, 1.5))
    ).enhance(rng.uniform(0.7, 1.3)),
    "flip": lambda im, rng: ImageOps.mirror(im),
}


def _crop_box(im, frac, rng):
    w, h = im.size
    cw, ch = int(w * frac), int(h * frac)
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    return (x, y, x + cw, y + ch)


def _jpeg(im, quality) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--model", default=None, help="embedding model (default: the bundled default)")
    parser.add_argument("--copies", type=int, default=200, help="originals used for image->image copies")
    parser.add_argument("--library", type=Path, default=None, help="keep the library here (default: temporary)")
    parser.add_argument("--no-text-in-image", action="store_true", help="skip the text-in-image (OCR) part")
    args = parser.parse_args()

    coco = [json.loads(line) for line in (args.eval / "coco-239" / "captions.jsonl").open()]
    inet = list(csv.DictReader((args.eval / "imagenet-sample" / "labels.csv").open()))
    workdir = Path(tempfile.mkdtemp(prefix="vs-quality-"))
    settings = Settings.from_env(args.library or workdir / "library", model=args.model)
    lib = Library(settings)
    engine = SearchService(lib)
    print(f"model: {lib.embedder.model_id}")
    lib.embedder.embed_texts(["warm-up"])  # load models outside the timings
    lib.embedder.encode_images([Image.new("RGB", (64, 64))])

    print("\n## Indexing throughput (2 cores)")
    for name in ("coco-239", "imagenet-sample"):
        folder = args.eval / name / "images"
        started = time.perf_counter()
        report = lib.index_folder(folder)
        elapsed = time.perf_counter() - started
        print(
            f"{name:16} {report.indexed:5d} images in {elapsed:6.1f} s = {report.indexed / elapsed:6.1f} images/s"
            f" (failed {report.failed})"
        )

    by_source = {}
    for state in lib.catalog.file_states().items():
        by_source[state[0]] = state[1].asset_id
    coco_ids = [by_source[str((args.eval / "coco-239" / c["image"]).resolve())] for c in coco]
    inet_ids = [by_source[str((args.eval / "imagenet-sample" / r["image"]).resolve())] for r in inet]
    coco_set = set(coco_ids)
    total = len(by_source)

    print("\n## Text -> image")
    captions = [(cap, coco_ids[i]) for i, c in enumerate(coco) for cap in c["captions"]]
    started = time.perf_counter()
    all_results = [[r.asset_id for r in engine.text(q, limit=total)] for q, _ in captions]
    per_query = (time.perf_counter() - started) / len(captions) * 1000
    gold = [g for _, g in captions]
    within = [[i for i in ids if i in coco_set] for ids in all_results]
    for label, lists in (
        ("COCO captions / 239 COCO photos", within),
        ("COCO captions / all 1,239 photos", all_results),
    ):
        m = recall_mrr(ranks_of(gold, lists))
        print(
            f"{label:36} R@1 {m['R@1']:.3f}  R@5 {m['R@5']:.3f}  R@10 {m['R@10']:.3f}  MRR {m['MRR']:.3f}"
            f"  ({len(captions)} queries)"
        )
    print(f"{'':36} {per_query:.1f} ms per text query (embed + search + catalog)")

    inet_set = set(inet_ids)
    results = [
        [i for i in (r.asset_id for r in engine.text(f"a photo of a {row['label']}", limit=total)) if i in inet_set]
        for row in inet
    ]
    m = recall_mrr(ranks_of(inet_ids, results))
    print(
        f"{'ImageNet labels / 1,000 photos':36} R@1 {m['R@1']:.3f}  R@5 {m['R@5']:.3f}  R@10 {m['R@10']:.3f}"
        f"  MRR {m['MRR']:.3f}  (1,000 queries)"
    )

    categories = sorted({cat for c in coco for cat in c["categories"]})
    aps, ndcgs = [], []
    for cat in categories:
        relevant = {coco_ids[i] for i, c in enumerate(coco) if cat in c["categories"]}
        ids = [i for i in (r.asset_id for r in engine.text(f"a photo of a {cat}", limit=total)) if i in coco_set]
        rel = np.array([i in relevant for i in ids], dtype=float)
        aps.append(average_precision(rel))
        ndcgs.append(ndcg_at(rel, 10))
    print(
        f"{'COCO categories / 239 photos':36} mAP {np.mean(aps):.3f}  nDCG@10 {np.mean(ndcgs):.3f}"
        f"  ({len(categories)} category queries)"
    )

    print("\n## Image -> image: top-1 recovery of transformed copies among all photos")
    rng = random.Random(0)
    originals = [(args.eval / "coco-239" / c["image"], coco_ids[i]) for i, c in enumerate(coco)] + [
        (args.eval / "imagenet-sample" / r["image"], inet_ids[i]) for i, r in enumerate(inet)
    ]
    sample = rng.sample(originals, min(args.copies, len(originals)))
    embedder = lib.embedder
    spaces = list(embedder.spaces)
    indexes = {space: lib.indexes(space).index() for space in spaces}
    hits: dict[str, dict[str, int]] = {space: defaultdict(int) for space in spaces}
    started = time.perf_counter()
    n = 0
    for path, asset_id in sample:
        with Image.open(path) as im:
            base = im.convert("RGB")
        for tname, fn in TRANSFORMS.items():
            copy = fn(base, rng)
            decoded = decode_bytes(_jpeg(copy, 95))
            vectors = embedder.encode_images([decoded.image])
            for space in spaces:
                top = indexes[space].search(vectors[space][0], 1).ids
                hits[space][tname] += int(len(top) and top[0] == asset_id)
            n += 1
    per_copy = (time.perf_counter() - started) / n * 1000
    header = f"{'space':10}" + "".join(f"{t:>14}" for t in TRANSFORMS) + f"{'all':>8}"
    print(header)
    for space in spaces:
        row = [hits[space][t] / len(sample) for t in TRANSFORMS]
        marker = "  <- used for similarity" if space == embedder.similarity_space else ""
        print(f"{space:10}" + "".join(f"{v:14.3f}" for v in row) + f"{np.mean(row):8.3f}{marker}")
    print(f"({len(sample)} originals x {len(TRANSFORMS)} transformations, seed 0; {per_copy:.0f} ms per image query)")
    lib.close()
    if not args.no_text_in_image:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        import importlib.util

        import ocr

        print("\n## Text in images (OCR on)")
        if importlib.util.find_spec("rapidocr") is None:
            print("skipped: the OCR extra is not installed (pip install 'visualsearch[ocr]')")
        else:
            ocr.signs(workdir / "text-in-image", model=args.model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
