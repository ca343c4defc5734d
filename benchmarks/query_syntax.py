#!/usr/bin/env python
"""Do negative terms and weights do what they say? Measured on the scenes development set.

The set (benchmarks/data/scenes: 61 real wallpapers and sample photos, 204 labelled queries)
is indexed with the model (default: the bundled one). Then, for every pair of labelled
queries (q, n) whose relevant sets overlap without being equal, the query ``q -n`` should
push the images relevant to both (what the user said to leave out) down, and keep the images
relevant to q only where they were or lift them. It prints, over all such pairs:

  left-out down   share of pairs where the mean rank of the q-and-n images got worse (larger)
  kept up         share of pairs where the best rank of the q-only images got better or stayed
  success@1       share of pairs whose first result is a q-only image, for q and for "q -n"
  mean ranks      of both groups, for q and for "q -n"

and, for weights, the same success@1 for ``q + n^0.5`` against ``q`` on pairs whose sets are
disjoint (the first result should stay a q image while n images come up the list).
This is a development set: it was written by looking at these images, so these figures
show the mechanism works, not held-out quality.

Usage: python benchmarks/query_syntax.py [--model NAME] [--workdir DIR] [--weight 1.0]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model name (default: the bundled one)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the library here (temporary otherwise)")
    parser.add_argument("--weight", type=float, default=1.0, help="weight of the negative part")
    args = parser.parse_args()

    from visualsearch.config import Settings
    from visualsearch.services import Library, SearchService

    queries = [json.loads(line) for line in (SCENES / "queries.jsonl").read_text().splitlines() if line.strip()]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="qsyntax-"))
    folder = work / "images"
    name_of = realdata.copy_refs(SCENES / "images.txt", folder)
    overrides = {"model": args.model} if args.model else {}
    library = Library(Settings.from_env(work / "library", **overrides))
    library.index_folder(folder)
    engine = SearchService(library)
    n_images = len(name_of)

    def ranking(text: str) -> list[str]:
        return [name_of[str(Path(r.source).resolve())] for r in engine.text(text, limit=n_images)]

    def rank_of(order: list[str], items: set[str]) -> list[int]:
        return [order.index(x) + 1 for x in items if x in order]

    pairs = []
    for q in queries:
        for n in queries:
            rq, rn = set(q["relevant"]), set(n["relevant"])
            both, only = rq & rn, rq - rn
            if q is n or not both or not only or q["query"] == n["query"]:
                continue
            pairs.append((q["query"], n["query"], both, only))
    down = kept = first_q = first_neg = 0
    ranks = {"both_q": [], "both_neg": [], "only_q": [], "only_neg": []}
    for q, n, both, only in pairs:
        plain, negated = ranking(q), ranking(f'{q} -"{n}"' if args.weight == 1 else f'{q} -"{n}"^{args.weight:g}')
        b0, b1 = np.mean(rank_of(plain, both)), np.mean(rank_of(negated, both))
        o0, o1 = min(rank_of(plain, only)), min(rank_of(negated, only))
        down += b1 > b0
        kept += o1 <= o0
        first_q += plain[0] in only
        first_neg += negated[0] in only
        ranks["both_q"].append(b0)
        ranks["both_neg"].append(b1)
        ranks["only_q"].append(o0)
        ranks["only_neg"].append(o1)
    total = len(pairs)
    print(f"model {library.embedder.model_id}; {n_images} images, {len(queries)} queries; {total} (q, n) pairs")
    print(f'negative terms (q -"n", weight {args.weight:g}):')
    print(
        f"  left-out down   {down / total:.3f}   (mean rank of q-and-n images {np.mean(ranks['both_q']):.1f} "
        f"-> {np.mean(ranks['both_neg']):.1f})"
    )
    print(
        f"  kept up         {kept / total:.3f}   (best rank of q-only images {np.mean(ranks['only_q']):.2f} "
        f"-> {np.mean(ranks['only_neg']):.2f})"
    )
    print(f'  success@1       {first_q / total:.3f} for q -> {first_neg / total:.3f} for "q -n"')

    disjoint = [
        (q, n, set(q["relevant"]), set(n["relevant"]))
        for q in queries
        for n in queries
        if q is not n and q["relevant"] and n["relevant"] and not set(q["relevant"]) & set(n["relevant"])
    ]
    disjoint = disjoint[:: max(1, len(disjoint) // 400)]  # a spread sample: all pairs would take minutes
    keep1 = lift = 0
    for q, n, rq, rn in disjoint:
        plain, added = ranking(q["query"]), ranking(f'{q["query"]} + "{n["query"]}"^0.5')
        keep1 += added[0] in rq
        lift += min(rank_of(added, rn)) < min(rank_of(plain, rn))
    print(f'weights (q + "n"^0.5, {len(disjoint)} pairs with disjoint sets):')
    print(f"  first result still a q image  {keep1 / len(disjoint):.3f}")
    print(f"  best n image moved up          {lift / len(disjoint):.3f}")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
