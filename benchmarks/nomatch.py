#!/usr/bin/env python
"""Knowing when nothing matches: how the model's text cut-off sorts queries, and where it was set.

A text query has close matches when its best score reaches the model's ``absolute`` threshold
or stands ``margin`` above the mean of its next 49 results (src/visualsearch/search/relevance.py).
This prints, for the model's thresholds:

  scenes (development set: 61 real images; the thresholds were chosen here)
    labelled      share of the 204 labelled queries, which all have a matching image, that lose
                  their close match (wrongly: lower is better)
    no match      share of the 18 queries with no matching image that get "no close matches"
                  (higher is better), and which ones
  demo library (the 24 bundled photos) with a few keyboard mashes and everyday queries
  coco-239 captions (when ../shared/eval is there; not used to set anything): share of captions,
                  which all have a matching photo, that lose their close match

and, on the scenes set, the grid search that chose the thresholds: the largest share of no-match
queries flagged while at most 5% of labelled queries are.

Usage: python benchmarks/nomatch.py [--workdir DIR] [--eval DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import realdata  # noqa: E402

SCENES = ROOT / "benchmarks" / "data" / "scenes"
DEMO = ROOT / "src" / "visualsearch" / "demo" / "photos"
NONSENSE = ["asdfqwer", "xkcd zzq lorem", "qwertyuiop", "zxcv bnm", "lorem ipsum dolor"]
EVERYDAY = ["a cat", "a dog", "a red sports car", "a rocket", "flowers", "a tripod", "cold night", "purple", "teal"]


def library_of(folder: Path, work: Path):
    from visualsearch.config import Settings
    from visualsearch.services import Library

    library = Library(Settings.from_env(work))
    library.index_folder(folder)
    return library


def features(library, queries: list[str], probe: int = 50) -> np.ndarray:
    vectors = library.embedder.embed_texts(queries)
    out = []
    for v in vectors:
        scores = library.text_index.search(v, probe).scores.astype(np.float64)
        out.append((scores[0], scores[0] - scores[1:].mean()))
    return np.asarray(out)


def verdict(library, query: str) -> bool:
    """Whether the product says the query has close matches (SearchService's own verdict)."""
    from visualsearch.services import SearchService

    _, judged = SearchService(library).text_with_verdict(query, limit=1)
    return bool(judged is None or judged.close)


def flagged(f: np.ndarray, absolute: float, margin: float) -> np.ndarray:
    return ~((f[:, 0] >= absolute) | (f[:, 1] >= margin))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the libraries here (temporary otherwise)")
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="nomatch-"))

    folder = work / "scenes-images"
    realdata.copy_refs(SCENES / "images.txt", folder)
    scenes = library_of(folder, work / "scenes-library")
    absolute, margin = scenes.embedder.match_thresholds
    print(f"model {scenes.embedder.model_id}: close match when best >= {absolute} or margin >= {margin}")
    labelled = [json.loads(x)["query"] for x in (SCENES / "queries.jsonl").read_text().splitlines() if x.strip()]
    nomatch = [json.loads(x)["query"] for x in (SCENES / "nomatch.jsonl").read_text().splitlines() if x.strip()]
    fl, fn = features(scenes, labelled), features(scenes, nomatch)
    print("scenes (development set, 61 images), as the product judges (colour and light words included):")
    lost = np.asarray([not verdict(scenes, q) for q in labelled])
    print(f"  labelled queries losing their close match  {lost.mean():.3f} of {len(labelled)}")
    hit = np.asarray([not verdict(scenes, q) for q in nomatch])
    print(
        f"  no-match queries told 'no close matches'   {hit.mean():.3f} of {len(nomatch)}: "
        + ", ".join(q for q, h in zip(nomatch, hit) if h)
    )
    print(
        "  the text score alone (what the thresholds were set on): "
        f"labelled {flagged(fl, absolute, margin).mean():.3f}, no-match {flagged(fn, absolute, margin).mean():.3f}"
    )
    grid = []
    for a in np.arange(0.15, 0.6, 0.01):
        for m in np.arange(0.0, 0.3, 0.005):
            bad, good = flagged(fl, a, m).mean(), flagged(fn, a, m).mean()
            if bad <= 0.05:
                grid.append((good, -bad, round(a, 2), round(m, 3)))
    grid.sort(reverse=True)
    print(
        "  grid search (no-match flagged, labelled flagged, absolute, margin), best 3:",
        [(round(g, 3), round(-b, 3), a, m) for g, b, a, m in grid[:3]],
    )

    demo = library_of(DEMO, work / "demo-library")
    fd = features(demo, NONSENSE + EVERYDAY)
    hit = [not verdict(demo, q) for q in NONSENSE + EVERYDAY]
    print("demo library (24 photos):")
    for q, h, (best, gap) in zip(NONSENSE + EVERYDAY, hit, fd):
        print(f"  {q:20} {'no close matches' if h else 'close match':16} best {best:.3f} margin {gap:.3f}")

    coco = args.eval / "coco-239"
    if coco.is_dir():
        captions_file = next((p for p in coco.glob("*.json*") if "caption" in p.name), None)
        images = coco / "images" if (coco / "images").is_dir() else coco
        if captions_file is not None:
            lib = library_of(images, work / "coco-library")
            text = captions_file.read_text()
            rows = (
                json.loads(text) if captions_file.suffix == ".json" else [json.loads(x) for x in text.splitlines() if x]
            )
            captions = []
            for row in rows if isinstance(rows, list) else rows.get("annotations", []):
                caps = row.get("captions") or ([row["caption"]] if "caption" in row else [])
                captions.extend(caps[:1])
            lost_coco = np.mean([not verdict(lib, c) for c in captions])
            print(f"coco-239 captions (held out): {lost_coco:.3f} of {len(captions)} lose their close match")
        else:
            print(f"coco-239: no captions file found in {coco}")
    else:
        print(f"coco-239: {coco} not there, skipped")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
