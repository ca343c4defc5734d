#!/usr/bin/env python
"""Words in pictures (OCR): what the reader reads, what search finds by it, and what it costs.

Two sets, both indexed with the bundled default model and text reading on (VISUALSEARCH_OCR):

- **real** (benchmarks/data/text_real, rebuilt from Debian packages by benchmarks/realdata.py):
  81 wallpapers, login screens, logos and clip-art signs with legible words, labelled by looking at
  them (212 words), and 22 pictures without text. Prints the share of labelled words read, the
  pictures without text in which the reader found words anyway, and text search by each labelled
  word: success@1 (the first result shows the word), S@5, and the mean share of the pictures that
  show the word found in the first 10, with and without the read words.
- **signs** (made here, seed 0): the repository's 24 photos at 640x480, each three times with a
  word from WORDS rendered on it (dark on a light sign, 7% of the height; white on the photo with a
  dark outline, 5%; small and turned by 4 degrees, 3.5%), next to the 24 plain photos. Text search
  by the word: R@1 and R@5, per style, with and without the read words. ``quality.py`` prints it too.

Also prints indexing speed on the signs set with reading off and on (2 cores: the reader runs in
the decoding workers beside the model), and the reader's seconds per picture.

Usage: python benchmarks/ocr.py [--workdir DIR] [--only real|signs]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import realdata  # noqa: E402

TEXT_REAL = ROOT / "benchmarks" / "data" / "text_real"
PHOTOS = ROOT / "src" / "visualsearch" / "demo" / "photos"
FONTS = [
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf"),
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
]
#: Words people put on signs, posters and labels; one per sign picture.
WORDS = """
bakery pharmacy garage museum library station hotel market harbour theatre cinema school
hospital police garden gallery florist butcher grocery laundry bistro brewery pizzeria salon
bookshop stadium airport parking entrance exit closed welcome danger warning caution private
office studio kitchen bridge tunnel castle chapel temple forest meadow canyon desert glacier
volcano island lagoon sunrise festival concert summer winter autumn spring holiday bicycle
camping vintage organic jazz dentist bakehouse carnival lighthouse orchard vineyard ferry
""".split()
STYLES = ("sign", "outline", "small")


def settings_for(library: Path, ocr: bool, model: str | None = None):
    from visualsearch.config import Settings

    return Settings.from_env(library, ocr=ocr, **({"model": model} if model else {}))


def make_signs(folder: Path) -> dict[str, tuple[str, str]]:
    """The signs set in ``folder``: file name -> (word, style); plain photos map to ("", "plain")."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    words = rng.sample(WORDS, 3 * 24)
    photos = sorted(PHOTOS.glob("*.jpg"))[:24]
    made: dict[str, tuple[str, str]] = {}
    n = 0
    for photo in photos:
        base = Image.open(photo).convert("RGB").resize((640, 480))
        name = f"plain-{photo.stem}.jpg"
        if not (folder / name).exists():
            base.save(folder / name, quality=90)
        made[name] = ("", "plain")
        for style in STYLES:
            word = words[n]
            n += 1
            name = f"{style}-{word}.jpg"
            if not (folder / name).exists():
                render(base, word.upper() if style != "small" else word.capitalize(), style, rng).save(
                    folder / name, quality=90
                )
            made[name] = (word, style)
    return made


def render(base: Image.Image, text: str, style: str, rng: random.Random) -> Image.Image:
    image = base.copy()
    height = {"sign": 0.07, "outline": 0.05, "small": 0.035}[style]
    font_path = next((f for f in [rng.choice(FONTS), *FONTS] if f.exists()), None)
    size = max(8, round(image.height * height))
    font = ImageFont.truetype(str(font_path), size) if font_path else ImageFont.load_default(size)
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    w, h = right - left, bottom - top
    x = rng.randint(20, max(21, image.width - w - 20))
    y = rng.randint(20, max(21, image.height - h - 20))
    if style == "outline":
        draw.text(
            (x - left, y - top), text, font=font, fill=(255, 255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0, 255)
        )
    else:
        pad = max(4, h // 3)
        draw.rectangle((x - pad, y - pad, x + w + pad, y + h + pad), fill=(246, 244, 232, 255))
        draw.text((x - left, y - top), text, font=font, fill=(30, 30, 30, 255))
    if style == "small":
        layer = layer.rotate(4, resample=Image.Resampling.BICUBIC, center=(x + w / 2, y + h / 2))
    image.paste(layer, (0, 0), layer)
    return image


def index(folder: Path, library_dir: Path, ocr: bool, model: str | None = None):
    from visualsearch.services import Library

    library = Library(settings_for(library_dir, ocr, model))
    library.embedder.encode_images([Image.new("RGB", (64, 64))])  # load the model outside the timing
    started = time.perf_counter()
    report = library.index_folder(folder)
    return library, report, time.perf_counter() - started


def searches(library, queries: list[str]) -> tuple[list[list[int]], list[list[int]]]:
    """Ranked ids per query with the read words, and without them (the search as if nothing were read)."""
    from visualsearch.services import SearchService

    engine = SearchService(library)
    total = len(library.catalog.indexed_assets())
    with_words = [[r.asset_id for r in engine.text(q, limit=total)] for q in queries]
    engine.word_scores = lambda parsed: None  # type: ignore[method-assign]
    without = [[r.asset_id for r in engine.text(q, limit=total)] for q in queries]
    return with_words, without


def signs(work: Path, model: str | None = None) -> dict[str, float]:
    folder = work / "signs"
    made = make_signs(folder)
    print(
        f"\n## Signs set: {sum(1 for w, _ in made.values() if w)} pictures with a word, "
        f"{sum(1 for w, _ in made.values() if not w)} without (640x480, seed 0)"
    )
    _, off, off_time = index(folder, work / "signs-lib-off", ocr=False, model=model)
    library, on, on_time = index(folder, work / "signs-lib-on", ocr=True, model=model)
    per_picture = on.timings.get("ocr", 0.0) / max(1, on.indexed)
    print(
        f"indexing {len(made)} pictures: reading off {off.indexed / off_time:6.1f} images/s, "
        f"on {on.indexed / on_time:6.1f} images/s; the reader {per_picture:.2f} s of CPU per picture"
    )
    id_of = {Path(src).name: state.asset_id for src, state in library.catalog.file_states().items()}
    named = [(name, word, style) for name, (word, style) in made.items() if word]
    with_words, without = searches(library, [word for _, word, _ in named])
    texts = library.catalog.texts.of(id_of.values())
    from visualsearch.catalog.words import words_of

    out: dict[str, float] = {}
    print(f"{'style':10} {'n':>3} {'read':>6} {'R@1':>6} {'R@5':>6}   {'without: R@1':>12} {'R@5':>6}")
    for style in (*STYLES, "all"):
        rows = [(i, n) for i, (n, _, s) in enumerate(named) if style in (s, "all")]
        read = np.mean([named[i][1] in words_of(texts.get(id_of[n], "")) for i, n in rows])
        ranks = [with_words[i].index(id_of[n]) for i, n in rows]
        ranks0 = [without[i].index(id_of[n]) for i, n in rows]
        r1, r5 = np.mean([r < 1 for r in ranks]), np.mean([r < 5 for r in ranks])
        print(
            f"{style:10} {len(rows):3d} {read:6.3f} {r1:6.3f} {r5:6.3f}   {np.mean([r < 1 for r in ranks0]):12.3f} "
            f"{np.mean([r < 5 for r in ranks0]):6.3f}"
        )
        if style == "all":
            out = {"read": float(read), "r1": float(r1), "r5": float(r5)}
    stray = [texts[id_of[n]] for n, (w, _) in made.items() if not w and words_of(texts.get(id_of[n], ""))]
    print(f"plain photos with words read in them: {len(stray)} of 24 {stray[:5]}")
    library.close()
    return out


def real(work: Path) -> None:
    from visualsearch.catalog.words import normalise_text, words_of

    labels = [json.loads(x) for x in (TEXT_REAL / "labels.jsonl").read_text().splitlines() if x.strip()]
    folder = work / "real"
    ref_of = realdata.copy_refs(TEXT_REAL / "images.txt", folder)
    library, report, elapsed = index(folder, work / "real-lib", ocr=True)
    print(
        f"\n## Real set (benchmarks/data/text_real): {len(labels)} pictures, "
        f"{sum(1 for x in labels if x['words'])} with labelled words ({sum(len(x['words']) for x in labels)} words)"
    )
    print(
        f"indexed {report.indexed} (failed {report.failed}) in {elapsed:.0f} s; "
        f"the reader {report.timings.get('ocr', 0.0) / max(1, report.indexed):.2f} s of CPU per picture"
    )
    id_of_ref = {
        ref: state.asset_id
        for src, state in library.catalog.file_states().items()
        if (ref := ref_of.get(str(Path(src).resolve())))
    }
    texts = library.catalog.texts.of(id_of_ref.values())
    found_word = found_sub = total = 0
    small = [0, 0]
    misses = []
    for label in labels:
        text = texts.get(id_of_ref[label["ref"]], "")
        words, squashed = set(words_of(text)), normalise_text(text).replace(" ", "").replace("\n", "")
        for word in label["words"]:
            w = normalise_text(word)
            total += 1
            found_word += w in words
            found_sub += w in squashed
            if label.get("small"):
                small[0] += 1
                small[1] += w in words
            if w not in words:
                misses.append(f"{w} ({Path(label['ref']).name})")
    print(
        f"labelled words read as words: {found_word}/{total} = {found_word / total:.3f} "
        f"(anywhere in the text, ignoring spaces: {found_sub / total:.3f}; on small text: {small[1]}/{small[0]})"
    )
    print(f"  not read, first 12: {', '.join(misses[:12])}")
    controls = [x for x in labels if not x["words"]]
    stray = [
        (Path(x["ref"]).name, texts[id_of_ref[x["ref"]]])
        for x in controls
        if words_of(texts.get(id_of_ref[x["ref"]], ""))
    ]
    print(f"pictures without text in which words were read: {len(stray)}/{len(controls)} {stray[:4]}")
    relevant: dict[str, set[int]] = {}
    for label in labels:
        for word in label["words"]:
            relevant.setdefault(normalise_text(word), set()).add(id_of_ref[label["ref"]])
    queries = sorted(relevant)
    with_words, without = searches(library, queries)
    print(f"text search by each of the {len(queries)} distinct labelled words:")
    print(f"{'':22} {'S@1':>6} {'S@5':>6} {'recall@10':>10}")
    for name, ranked in (("with the read words", with_words), ("without them", without)):
        s1 = np.mean([ids[0] in relevant[q] for q, ids in zip(queries, ranked)])
        s5 = np.mean([bool(set(ids[:5]) & relevant[q]) for q, ids in zip(queries, ranked)])
        r10 = np.mean([len(set(ids[:10]) & relevant[q]) / len(relevant[q]) for q, ids in zip(queries, ranked)])
        print(f"{name:22} {s1:6.3f} {s5:6.3f} {r10:10.3f}")
    library.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=None, help="keep pictures and libraries here")
    parser.add_argument("--only", choices=("real", "signs"), default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="vs-ocr-"))
    print(f"workdir: {work}")
    if args.only in (None, "signs"):
        signs(work)
    if args.only in (None, "real"):
        real(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
