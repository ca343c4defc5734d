#!/usr/bin/env python
"""Text -> image search on the scenes development set: R@1/5/10 and MRR, overall and per kind.

The set (benchmarks/data/scenes: 61 real wallpapers and sample photos from Debian packages and
scikit-image, 204 plain-language queries about colours, light, time of day, weather, scenes and
objects, labelled by looking at the images) is the development set of issue 16: tune here, report
held-out quality elsewhere. A query counts as found at k when one of its "relevant" images is in
the first k results ("partial" ones do not count). Prints one line per query kind and the total.

Usage: python benchmarks/scenes.py [--model NAME] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import realdata  # noqa: E402

SCENES = ROOT / "benchmarks" / "data" / "scenes"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the library here (temporary otherwise)")
    parser.add_argument(
        "--attribute-weight",
        type=float,
        nargs="*",
        default=None,
        help="weights of the colour-and-light score to compare (default: the product's)",
    )
    args = parser.parse_args()

    from visualsearch.config import Settings
    from visualsearch.services import Library, SearchService

    work = args.workdir or Path(tempfile.mkdtemp(prefix="scenes-"))
    folder = work / "images"
    ref_of = realdata.copy_refs(SCENES / "images.txt", folder)
    overrides = {"model": args.model} if args.model else {}
    library = Library(Settings.from_env(work / "library", **overrides))
    library.index_folder(folder)
    engine = SearchService(library)
    queries = [json.loads(x) for x in (SCENES / "queries.jsonl").read_text().splitlines() if x.strip()]
    import visualsearch.services.search as search_module

    for weight in args.attribute_weight or [search_module.ATTRIBUTE_WEIGHT]:
        search_module.ATTRIBUTE_WEIGHT = weight
        report(engine, queries, ref_of, library.embedder.model_id, weight)
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def report(engine, queries, ref_of, model_id: str, weight: float) -> None:
    ranks: dict[str, list[float]] = defaultdict(list)
    for q in queries:
        order = [ref_of[str(Path(r.source).resolve())] for r in engine.text(q["query"], limit=len(ref_of))]
        relevant = set(q["relevant"])
        rank = next((n for n, ref in enumerate(order, 1) if ref in relevant), np.inf)
        ranks[q.get("kind", "other")].append(rank)
        ranks["all"].append(rank)
    print(
        f"model {model_id}; attribute weight {weight:g}; {len(ref_of)} images, {len(queries)} queries (development set)"
    )
    print(f"{'kind':12} {'n':>4} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'MRR':>6}")
    for kind in sorted(ranks, key=lambda k: (k == "all", k)):
        r = np.asarray(ranks[kind])
        print(
            f"{kind:12} {len(r):>4} {np.mean(r <= 1):>6.3f} {np.mean(r <= 5):>6.3f} {np.mean(r <= 10):>6.3f} "
            f"{np.mean(1 / r):>6.3f}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
