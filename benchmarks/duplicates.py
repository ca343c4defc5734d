#!/usr/bin/env python
"""Duplicate detection benchmark: real labelled images, and a seeded transformed-copies set.

**Real set** (benchmarks/data/duplicates_real: 5,569 wallpapers, artwork, icons and clip art
from Debian packages, labelled by looking at them; rebuilt from the packages by
benchmarks/realdata.py). Prints, scored as its README says (every pair inside a found group
is a claimed pair):
- recall of exact copies and of near-duplicates (labelled pairs found in one group);
- near-duplicate precision: of the claimed pairs that are not pixel-identical, the share
  labelled exact or near-duplicate; look-alike pairs claimed (the labelled hard negatives)
  and other pairs claimed;
- the time of the duplicates run and how many candidate pairs the pixel check looked at;
- with the copy check at indexing (``VISUALSEARCH_COPIES_AT_INDEX``, on by default): the real set
  indexed into two fresh libraries, without and with it, and the duplicates run after it against
  the search alone (``--no-index-cost`` skips this, about 4 minutes).

**Synthetic set** (from ../shared/eval, copy-detection style):

Builds the set as ../shared/eval/README.md describes (copy-detection style): a seeded
sample of originals, one copy per transformation (resize, crops, JPEG, colour, grayscale,
flip, rotation, padding, text banner, combinations), plus every other eval photo as a
distractor; same-class / same-category photos that are not copies are the hard negatives.
Indexes it all with the default model, then prints, at the default threshold:
- precision and recall of duplicate detection over all transformations except the 50% crops
  and the flip (reported separately), recall per transformation, top-1 recovery;
- false positives among hard negatives (COCO photos sharing a category, ImageNet photos of
  the same group, e.g. two dog breeds);
- a threshold sweep, and the time to find all duplicates among 100,000 synthetic vectors.

Usage: python benchmarks/duplicates.py [--eval ../shared/eval] [--originals 150] [--synthetic 100000]
       [--no-real] [--no-transformed]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import realdata
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

from visualsearch.config import Settings
from visualsearch.duplicates import DEFAULT_THRESHOLD, find_duplicates
from visualsearch.duplicates.finder import candidate_pairs, exact_kind
from visualsearch.services import DuplicatesService, Library

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "benchmarks" / "data" / "duplicates_real"
#: Reported apart from the main recall: half crops and mirror images are beyond "a crop that
#: keeps most of it", and a greyscale version is a colour variant, which the tiers call a
#: look-alike (pixels cannot tell it from an author's grey variant of a drawing).
SEPARATE = {"crop50_centre", "crop50_offcentre", "flip", "grayscale", "combo_gray_resize"}


def crop(im, frac, dx=0.5, dy=0.5):
    w, h = im.size
    cw, ch = int(w * frac), int(h * frac)
    x, y = int((w - cw) * dx), int((h - ch) * dy)
    return im.crop((x, y, x + cw, y + ch))


def banner(im, text="SALE  -50%  visualsearch.example"):
    im = im.copy()
    draw = ImageDraw.Draw(im)
    w, h = im.size
    band = max(16, h // 7)
    draw.rectangle((0, h - band, w, h), fill=(20, 20, 20))
    try:
        font = ImageFont.load_default(size=max(10, band // 2))
    except TypeError:
        font = ImageFont.load_default()
    draw.text((8, h - band + band // 4), text, fill=(255, 255, 255), font=font)
    return im


def letterbox(im, ratio=16 / 9):
    w, h = im.size
    if w / h < ratio:
        canvas = Image.new("RGB", (int(h * ratio), h), (0, 0, 0))
        canvas.paste(im, ((canvas.width - w) // 2, 0))
    else:
        canvas = Image.new("RGB", (w, int(w / ratio)), (0, 0, 0))
        canvas.paste(im, (0, (canvas.height - h) // 2))
    return canvas


def transformations(rng: random.Random):
    q = lambda: rng.randint(20, 50)  # noqa: E731
    angle = lambda: rng.uniform(5, 15) * rng.choice((-1, 1))  # noqa: E731
    return {
        "resize50": lambda im: (im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS), 90),
        "resize25": lambda im: (
            im.resize((max(1, im.width // 4), max(1, im.height // 4)), Image.Resampling.LANCZOS),
            90,
        ),
        "crop80_centre": lambda im: (crop(im, 0.8), 90),
        "crop80_offcentre": lambda im: (crop(im, 0.8, 0.0, 1.0), 90),
        "crop50_centre": lambda im: (crop(im, 0.5), 90),
        "crop50_offcentre": lambda im: (crop(im, 0.5, 1.0, 0.0), 90),
        "jpeg": lambda im: (im, q()),
        "brightness": lambda im: (ImageEnhance.Brightness(im).enhance(rng.choice((0.6, 1.4))), 90),
        "contrast": lambda im: (ImageEnhance.Contrast(im).enhance(rng.choice((0.6, 1.5))), 90),
        "saturation": lambda im: (ImageEnhance.Color(im).enhance(rng.choice((0.3, 1.8))), 90),
        "grayscale": lambda im: (ImageOps.grayscale(im).convert("RGB"), 90),
        "flip": lambda im: (ImageOps.mirror(im), 90),
        "rotate": lambda im: (
            im.rotate(angle(), resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(0, 0, 0)),
            90,
        ),
        "letterbox": lambda im: (letterbox(im), 90),
        "banner": lambda im: (banner(im), 90),
        "combo_resize_jpeg": lambda im: (im.resize((im.width // 2, im.height // 2)), q()),
        "combo_crop80_brightness": lambda im: (ImageEnhance.Brightness(crop(im, 0.8, 0.2, 0.3)).enhance(1.3), 90),
        "combo_gray_resize": lambda im: (
            ImageOps.grayscale(im).convert("RGB").resize((im.width // 2, im.height // 2)),
            90,
        ),
        "combo_rotate_jpeg": lambda im: (im.rotate(angle(), expand=True, fillcolor=(0, 0, 0)), q()),
        "combo_banner_crop80_jpeg": lambda im: (banner(crop(im, 0.8)), q()),
    }


def load_labels(eval_dir: Path) -> dict[str, set[str]]:
    """photo file name -> its classes (COCO categories, or the ImageNet label and its group)."""
    from visualsearch.models.imagenet_vocab import class_groups

    labels: dict[str, set[str]] = {}
    for line in (eval_dir / "coco-239" / "captions.jsonl").read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            labels[Path(row["image"]).stem + ".jpg"] = {f"coco:{c}" for c in row["categories"]}
    groups = class_groups()
    with open(eval_dir / "imagenet-sample" / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    index_of = {wnid: i for i, wnid in enumerate(sorted({r["wnid"] for r in rows}))}  # ImageNet order
    for row in rows:
        extra = {f"group:{g}" for g in groups[index_of[row["wnid"]]]}
        labels[Path(row["image"]).stem + ".jpg"] = {f"wnid:{row['wnid']}"} | extra
    return labels


def build_set(eval_dir: Path, folder: Path, originals: int, seed: int):
    rng = random.Random(seed)
    photos = sorted((eval_dir / "coco-239" / "images").glob("*.jpg")) + sorted(
        (eval_dir / "imagenet-sample" / "images").glob("*")
    )
    chosen = rng.sample(photos, originals)
    truth: dict[str, tuple[str, str]] = {}  # file name -> (original name, transformation)
    (folder / "photos").mkdir(parents=True, exist_ok=True)
    (folder / "copies").mkdir(parents=True, exist_ok=True)
    for p in photos:
        if (folder / "photos" / (p.stem + ".jpg")).exists():  # a kept --workdir: reuse (and its index)
            continue
        with Image.open(p) as im:
            ImageOps.exif_transpose(im).convert("RGB").save(folder / "photos" / (p.stem + ".jpg"), quality=92)
    for p in chosen:
        with Image.open(folder / "photos" / (p.stem + ".jpg")) as im:
            im = im.convert("RGB")
            for name, fn in transformations(rng).items():
                out, quality = fn(im)
                target = folder / "copies" / f"{p.stem}__{name}.jpg"
                if not target.exists():
                    out.convert("RGB").save(target, quality=quality)
                truth[target.name] = (p.stem + ".jpg", name)
    return truth, {p.stem + ".jpg" for p in chosen}


def origin_of(name: str, truth) -> str:
    return truth[name][0] if name in truth else name


def evaluate(service: DuplicatesService, truth, labels, threshold: float, verbose: bool):
    started = time.perf_counter()
    groups = service.duplicates(threshold)
    took = time.perf_counter() - started
    group_of: dict[str, int] = {}
    flagged = correct = 0
    hard_fp = other_fp = 0
    for g_index, group in enumerate(groups):
        keeper = Path(group.keeper.asset.source).name
        group_of[keeper] = g_index
        for m in group.others:
            name = Path(m.asset.source).name
            group_of[name] = g_index
            flagged += 1
            a, b = origin_of(keeper, truth), origin_of(name, truth)
            if a == b:
                correct += 1
            elif labels.get(a, set()) & labels.get(b, set()):
                hard_fp += 1
            else:
                other_fp += 1
    per_kind: dict[str, list[bool]] = defaultdict(list)
    for copy, (original, kind) in truth.items():
        per_kind[kind].append(copy in group_of and group_of.get(original) == group_of[copy])
    main = [hit for kind, hits in per_kind.items() if kind not in SEPARATE for hit in hits]
    precision = correct / flagged if flagged else 1.0
    recall = sum(main) / len(main)
    if verbose:
        print(
            f"threshold {threshold:.2f}: {len(groups)} groups, {flagged} images flagged as extras, "
            f"found in {took:.2f} s (pixel check of {service.pairs_checked:,} candidate pairs)"
        )
        print(
            f"  precision {_figure(precision, TARGET_PRECISION)}   recall {_figure(recall, TARGET_RECALL)}   "
            "(all transformations except crop 50%, flip, greyscale)"
        )
        print(f"  false positives: {hard_fp} among hard negatives (same class/category), {other_fp} others")
        print(f"  {_targets(precision, recall)}")
        print("  recall per transformation:")
        for kind in sorted(per_kind):
            hits = per_kind[kind]
            mark = "  (reported separately)" if kind in SEPARATE else ""
            print(f"    {kind:26} {sum(hits) / len(hits):.3f}{mark}")
    return precision, recall, hard_fp, other_fp


def top1_recovery(library, truth) -> float:
    manager = library.similarity_index
    exact = manager.exact()
    ids, _ = exact.search_many(exact.vectors, 2)
    names = {a.id: Path(a.source).name for a in library.catalog.get_many(exact.ids.tolist()).values()}
    hits = total = 0
    for row, asset_id in enumerate(exact.ids.tolist()):
        name = names.get(asset_id)
        if name not in truth:
            continue
        total += 1
        other = ids[row, 1] if ids[row, 0] == asset_id else ids[row, 0]
        hits += origin_of(names.get(int(other), ""), truth) == truth[name][0]
    return hits / total


def synthetic_timing(n: int, dim: int, seed: int) -> float:
    """Prints and returns the all-duplicates search time (candidates, no pixels) over n vectors."""
    from visualsearch.index.ann import HnswIndex
    from visualsearch.index.exact import ExactIndex

    rng = np.random.default_rng(seed)
    # Clustered like real image embeddings (1,000 clusters), not uniform noise, with 1% planted copies.
    centres = rng.normal(size=(max(1, n // 100), dim)).astype(np.float32)
    vectors = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.normal(size=(n, dim)).astype(np.float32)
    copies = n // 100
    vectors[-copies:] = vectors[:copies] + 0.15 * rng.normal(size=(copies, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(1, n + 1, dtype=np.int64)
    t = time.perf_counter()
    index = HnswIndex(dim)
    for start in range(0, n, 20000):
        index.upsert(ids[start : start + 20000], vectors[start : start + 20000])
    build = time.perf_counter() - t
    t = time.perf_counter()
    from visualsearch.duplicates.finder import DUPLICATE_EF

    nbr_ids, nbr_scores = index.search_many(vectors, 11, ef=DUPLICATE_EF)
    from visualsearch.duplicates.finder import _components, _pairs

    a, b, s = _pairs(ExactIndex(ids, vectors), nbr_ids, nbr_scores, DEFAULT_THRESHOLD)
    groups = _components(a, b)
    search = time.perf_counter() - t
    found = sum(1 for g in groups if len(g) == 2 and g[1] - g[0] == n - copies)
    print(
        f"\n{n:,} synthetic {dim}-d vectors ({copies:,} planted copies): HNSW build {build:.1f} s (done once, "
        f"at indexing), all-duplicates search {search:.1f} s ({search / n * 1e3:.2f} ms per image); "
        f"{len(groups):,} groups, {found:,} of the planted pairs found"
    )
    return search


def build_real(work: Path) -> dict[str, str]:
    """Hard-link (or copy) every image of the real set into ``work``; returns file path -> reference."""
    refs = realdata.read_refs(REAL / "images.txt")
    work.mkdir(parents=True, exist_ok=True)
    ref_of: dict[str, str] = {}
    for ref in refs:
        source = realdata.resolve(ref)
        package, inside = realdata.split_ref(ref)
        target = work / (package + "__" + inside.replace("/", "__"))[-200:]
        if not target.exists():
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
        ref_of[str(target)] = ref
    return ref_of


def real_labels() -> dict[frozenset[str], str]:
    with open(REAL / "pairs.csv") as f:
        return {frozenset((r["a"], r["b"])): r["tier"] for r in csv.DictReader(f)}


def evaluate_real(
    library: Library, ref_of: dict[str, str], threshold: float, dump: Path | None = None
) -> tuple[float, float]:
    """Prints the per-tier figures; returns (seconds of pixel check per candidate pair, pairs per image).

    ``dump``: write the wrongly claimed and the missed near-duplicate pairs there (CSV), to look at."""
    labels = real_labels()
    # A workdir re-used from an earlier run holds that run's verdicts: the check would look at no pair,
    # and its time per pair would come out as nothing (or less).
    library.catalog.verdicts.forget()
    service = DuplicatesService(library)
    started = time.perf_counter()
    find_duplicates(library.catalog, library.similarity_index, threshold=threshold)  # candidates only
    base = time.perf_counter() - started
    started = time.perf_counter()
    groups = service.duplicates(threshold)
    took = time.perf_counter() - started
    claimed: dict[frozenset[str], bool] = {}  # pair -> pixel-identical
    for group in groups:
        members = [group.keeper.asset, *(m.asset for m in group.others)]
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                same = exact_kind(a, b) is not None
                claimed[frozenset((ref_of[str(a.path or a.source)], ref_of[str(b.path or b.source)]))] = same
    tiers = {t: {p for p, tier in labels.items() if tier == t} for t in ("exact", "near_duplicate", "look_alike")}
    copies = tiers["exact"] | tiers["near_duplicate"]
    near_claims = [p for p, identical in claimed.items() if not identical]
    right = sum(p in copies for p in near_claims)
    lookalike_fp = sum(p in tiers["look_alike"] for p in near_claims)
    other_fp = len(near_claims) - right - lookalike_fp
    if dump is not None:
        with open(dump, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["a", "b", "what"])
            for p in sorted(near_claims, key=sorted):
                if p not in copies:
                    writer.writerow(
                        [
                            *sorted(p),
                            "claimed, labelled look-alike" if p in tiers["look_alike"] else "claimed, unlabelled",
                        ]
                    )
            for p in sorted(tiers["near_duplicate"] - claimed.keys(), key=sorted):
                writer.writerow([*sorted(p), "labelled near-duplicate, missed"])
    indexed = len(library.catalog.indexed_assets())
    near_recall = len(claimed.keys() & tiers["near_duplicate"]) / len(tiers["near_duplicate"])
    print(
        f"real set: {indexed:,} of {len(ref_of):,} images indexed (the rest fail the decode caps), "
        f"threshold {threshold:.2f}; found {len(groups)} groups in {took:.1f} s, the pixel check looked at "
        f"{service.pairs_checked:,} candidate pairs "
        f"({service.pairs_checked / max(1, indexed) * 1000:.0f} per 1,000 images)"
    )
    print(
        f"  exact copies:    recall {len(claimed.keys() & tiers['exact']) / len(tiers['exact']):.3f} "
        f"({len(claimed.keys() & tiers['exact'])} of {len(tiers['exact'])} labelled pairs)"
    )
    print(
        f"  near-duplicates: recall {_figure(near_recall, TARGET_RECALL)} "
        f"({len(claimed.keys() & tiers['near_duplicate'])} of {len(tiers['near_duplicate'])}), "
        f"precision {_figure(right / max(1, len(near_claims)), TARGET_PRECISION)} "
        f"({right} of {len(near_claims)} claimed pairs that are not "
        f"pixel-identical); false: {lookalike_fp} look-alike pairs, {other_fp} other pairs"
    )
    extras = [(g.keeper.asset, m.asset) for g in groups for m in g.others if m.kind == "near_duplicate"]
    good = sum(
        frozenset((ref_of[str(k.path or k.source)], ref_of[str(o.path or o.source)])) in copies for k, o in extras
    )
    print(
        f"  near-duplicate extras pre-ticked: {len(extras)}, of which {good} are copies of their keeper "
        f"({good / max(1, len(extras)):.3f})"
    )
    per_pair = (took - base) / max(1, service.pairs_checked)
    print(
        f"  time: {base:.1f} s without the pixel check, {took:.1f} s with it "
        f"({per_pair * 1000:.1f} ms per candidate pair, previews loaded and prepared included)"
    )
    print(f"  {_targets(right / max(1, len(near_claims)), near_recall)}")
    return per_pair, service.pairs_checked / max(1, indexed)


#: Issue 14's targets for near-duplicates, on the real set and the synthetic set alike.
TARGET_PRECISION = 0.99
TARGET_RECALL = 0.95


def _figure(value: float, target: float) -> str:
    """``value`` to three decimals, or more where fewer would round it up to ``target`` (0.9898 is not 0.990)."""
    for places in range(3, 9):
        figure = f"{value:.{places}f}"
        if not value < target <= float(figure):
            break
    return figure


def _targets(precision: float, recall: float) -> str:
    """One line: each target of issue 14 with the figure measured and whether it is met."""

    def one(name: str, value: float, target: float) -> str:
        return f"{name} {_figure(value, target)} (target >= {target:.2f}: {'met' if value >= target else 'NOT MET'})"

    return f"targets: {one('precision', precision, TARGET_PRECISION)}, {one('recall', recall, TARGET_RECALL)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--originals", type=int, default=150)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--synthetic", type=int, default=100_000)
    parser.add_argument("--synthetic-dim", type=int, default=1280)
    parser.add_argument("--sweep", default="0.75,0.78,0.80,0.85,0.90,0.95")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--no-real", action="store_true", help="skip the real labelled set")
    parser.add_argument("--no-transformed", action="store_true", help="skip the synthetic transformed-copies set")
    parser.add_argument(
        "--no-index-cost", action="store_true", help="skip indexing the real set again without and with the copy check"
    )
    parser.add_argument(
        "--dump", type=Path, default=None, help="write the real set's false and missed pairs here (CSV)"
    )
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="vs-dups-"))
    cost: tuple[float, float] | None = None
    after: float | None = None
    if not args.no_real:
        ref_of = build_real(work / "real")
        real = Library(Settings.from_env(work / "real-library"))
        t = time.perf_counter()
        real.index_folder(work / "real")
        print(f"real set indexed in {time.perf_counter() - t:.0f} s; model {real.embedder.model_id}")
        cost = evaluate_real(real, ref_of, DEFAULT_THRESHOLD, args.dump)
        if not args.no_index_cost:
            after = index_cost(work / "real", work / "index-cost")
        print()
    if args.no_transformed:
        if args.synthetic:
            projected(
                synthetic_timing(args.synthetic, args.synthetic_dim, args.seed), args.synthetic, cost, after=after
            )
        return 0
    truth, originals = build_set(args.eval, work / "set", args.originals, args.seed)
    labels = load_labels(args.eval)
    print(
        f"set: {len(originals)} originals x {len(transformations(random.Random(0)))} transformations = "
        f"{len(truth)} copies, among {len(list((work / 'set' / 'photos').iterdir()))} photos"
    )
    library = Library(Settings.from_env(work / "library"))
    t = time.perf_counter()
    library.index_folder(work / "set")
    print(f"indexed in {time.perf_counter() - t:.0f} s; model {library.embedder.model_id}")
    print(
        f"top-1 recovery (nearest other image is the original or comes from it): {top1_recovery(library, truth):.3f}\n"
    )
    library.catalog.verdicts.forget()  # as for the real set: time the check, not an earlier run's verdicts
    service = DuplicatesService(library)  # one service: pixel verdicts carry over through the sweep
    evaluate(service, truth, labels, DEFAULT_THRESHOLD, verbose=True)
    photo_rate = unrelated_candidates(library, truth)
    print("\nsweep:  threshold  precision  recall  hard-FP  other-FP")
    for value in [float(v) for v in args.sweep.split(",")]:
        p, r, hfp, ofp = evaluate(service, truth, labels, value, verbose=False)
        print(f"        {value:9.2f}  {p:9.3f}  {r:6.3f}  {hfp:7d}  {ofp:8d}")
    if args.synthetic:
        search = synthetic_timing(args.synthetic, args.synthetic_dim, args.seed)
        projected(search, args.synthetic, cost, photo_rate, after)
    return 0


def index_cost(folder: Path, work: Path) -> float:
    """Index ``folder`` into two fresh libraries, without and with the copy check after indexing (as
    `visualsearch index` and the server's jobs do), and time the duplicates run that follows. Prints
    the figures; returns that run's time over the search alone (the candidate stage, no pixel check)."""
    took: dict[bool, tuple[float, float]] = {}
    for copies in (False, True):
        shutil.rmtree(work / str(copies), ignore_errors=True)
        library = Library(Settings.from_env(work / str(copies), copies_at_index=copies))
        started = time.perf_counter()
        library.index_folder(folder)
        indexed = time.perf_counter() - started
        if copies:
            DuplicatesService(library).duplicates()
        took[copies] = (indexed, time.perf_counter() - started)
        if copies:
            started = time.perf_counter()
            find_duplicates(library.catalog, library.similarity_index)  # the search alone
            search = time.perf_counter() - started
            started = time.perf_counter()
            groups = DuplicatesService(library).duplicates()  # a new service: verdicts from the catalog
            run = time.perf_counter() - started
        library.close()
    without, with_check = took[False][1], took[True][1]
    print(
        f"  copy check at indexing (VISUALSEARCH_COPIES_AT_INDEX): indexing {without:.0f} s without it, "
        f"{with_check:.0f} s with it (+{(with_check - without) / without:.0%}); the duplicates run after it: "
        f"{run:.1f} s for {len(groups)} groups, the search alone {search:.1f} s ({run / search:.1f}x)"
    )
    return run / search


def unrelated_candidates(library: Library, truth) -> float:
    """Prints and returns the candidate pairs per image among the set's photos that are not copies
    of each other (COCO and ImageNet photos): what a library of photos costs besides its copies."""
    assets = library.catalog.indexed_assets()
    name = {i: Path(a.source).name for i, a in assets.items()}
    photos = [i for i, n in name.items() if n not in truth]
    unrelated = [
        (x, y)
        for x, y in candidate_pairs(library.catalog, library.similarity_index)
        if name.get(x) not in truth and name.get(y) not in truth
    ]
    print(
        f"  candidate pairs among the {len(photos):,} photos that are not copies of each other: {len(unrelated)} "
        f"({len(unrelated) / max(1, len(photos)) * 1000:.1f} per 1,000)"
    )
    return len(unrelated) / max(1, len(photos))


def projected(
    search: float, n: int, cost: tuple[float, float] | None, photo_rate: float | None = None, after: float | None = None
) -> None:
    """The duplicates run on n images with the pixel check, from the real set's measured cost.

    No n-image set of real pictures fits here; the candidate pairs per image and the cost per
    pair are what the real set measured (clip art and icons: many look-alike candidates). With
    ``photo_rate`` (candidate pairs per image among unrelated photos), also for a library of photos:
    its look-alike candidates, plus one check for each copy it holds. With ``after`` (the real set's
    duplicates run after the copy check at indexing, over the search alone), that run too.
    """
    if cost is None:
        return
    per_pair, rate = cost
    check = per_pair * rate * n
    print(
        f"projected for {n:,} images like the real set ({rate * 1000:.0f} candidate pairs per 1,000 images, "
        f"{per_pair * 1000:.1f} ms each): pixel check {check:.0f} s on top of the {search:.1f} s search = "
        f"{(search + check) / search:.1f}x the search alone"
    )
    if photo_rate is not None:
        photos = per_pair * photo_rate * n
        print(
            f"projected for {n:,} photos like the synthetic set's unrelated ones ({photo_rate * 1000:.1f} candidate "
            f"pairs per 1,000): pixel check {photos:.0f} s = {(search + photos) / search:.1f}x the search alone, "
            f"plus {per_pair * 1000:.1f} ms for each copy the library holds (5,000 copies: "
            f"{(search + photos + 5000 * per_pair) / search:.1f}x)"
        )
    if after is not None:
        print(
            f"projected for {n:,} images checked at indexing (VISUALSEARCH_COPIES_AT_INDEX, the default): the "
            f"duplicates run reads the verdicts, {after:.1f}x the search alone as on the real set; the check is "
            f"in the indexing time instead ({per_pair * rate * n:.0f} s for {n:,} images like the real set)"
        )


if __name__ == "__main__":
    sys.exit(main())
