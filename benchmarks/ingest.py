#!/usr/bin/env python
"""Ingestion throughput: images/s for 640x480 JPEGs (and 12 MP photos), and where the time goes.

Builds (once, cached in --workdir) a folder of N 640x480 JPEGs (quality 90)
from the photos in ../shared/eval (each photo fitted to 640x480, plus mirrored
and shifted crops until there are N), or from synthetic pictures when the
evaluation set is not there. Then indexes the folder into a fresh library with
the default model, as `visualsearch index` does, once per configuration, and
prints images/s and seconds per image for each stage:

  decode       read the file + JPEG decode (+ EXIF orientation)      } in the worker
  fingerprint  SHA-256 of the pixels + pHash                         } processes,
  thumbnail    the 256 px JPEG preview the page shows                } summed
  preprocess   resample and centre-crop to the model's input         } over workers
  model        the forward pass + the ConSE mix (main process)
  write        catalog transaction per batch (main process)
  wait         main process blocked on workers (0 = model-bound)

The rows compare the defaults (the model on every core, as many decoding
processes as cores) with other splits of the cores, so the choice is measured.

With --large N (default 300) it then indexes N 12-megapixel JPEGs (4000x3000,
q90), made the same way, enlarged, with a little noise so that they cost what a
camera's photos cost to decode (3-4 MB a file), and reports them separately.

It also runs the model alone on already prepared inputs (the ceiling for the
pipeline), under ONNX Runtime and PyTorch, so the runtime choice is measured.

Usage: python benchmarks/ingest.py [--images 2000] [--large 300] [--workers 2] [--batch 32]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from visualsearch.config import Settings  # noqa: E402
from visualsearch.models.efficientnet import normalize  # noqa: E402
from visualsearch.models.registry import load_embedder  # noqa: E402
from visualsearch.services import Library  # noqa: E402

SIZE = (640, 480)
LARGE = (4000, 3000)


def _sources(eval_dir: Path) -> list[Path]:
    return sorted((eval_dir / "coco-239" / "images").glob("*.jpg")) + sorted(
        (eval_dir / "imagenet-sample" / "images").glob("*")
    )


def _synthetic(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize(SIZE, Image.BICUBIC)
    noise = Image.fromarray(rng.integers(0, 40, (SIZE[1], SIZE[0], 3), dtype=np.uint8))
    return Image.blend(image, noise, 0.15).filter(ImageFilter.SMOOTH)


def build_folder(folder: Path, count: int, eval_dir: Path, size: tuple[int, int] = SIZE) -> list[Path]:
    """N distinct JPEGs of ``size`` (q90); reused when already built."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:06d}.jpg" for i in range(count)]
    missing = [p for p in paths if not p.exists()]
    if not missing:
        return paths
    sources = _sources(eval_dir)
    rng = random.Random(0)
    for i, path in enumerate(paths):
        if path.exists():
            continue
        if sources:
            with Image.open(sources[i % len(sources)]) as im:
                im = ImageOps.exif_transpose(im).convert("RGB")
                variant = i // len(sources)
                if variant % 2:
                    im = ImageOps.mirror(im)
                if variant > 1:  # a different crop for each further round
                    w, h = im.size
                    dx, dy = rng.randint(0, w // 10), rng.randint(0, h // 10)
                    im = im.crop((dx, dy, w - w // 10 + dx, h - h // 10 + dy))
                im = ImageOps.fit(im, SIZE, Image.LANCZOS)
        else:
            im = _synthetic(i)
        if size != SIZE:
            im = im.resize(size, Image.BICUBIC)
            grain = np.random.default_rng(i).normal(0, 4, (size[1], size[0], 3))
            im = Image.fromarray(np.clip(np.asarray(im) + grain, 0, 255).astype(np.uint8))
        im.save(path, quality=90)
    return paths


def run_index(
    folder: Path, workers: int, batch: int, processes: bool | None, thumbnails: bool = True, model_threads: int = 0
) -> dict:
    """Index ``folder`` into a throwaway library (``model_threads`` 0: the default, every core)."""
    from visualsearch.ingest.indexer import IndexReport, index_files
    from visualsearch.ingest.scan import scan_folder

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env(
            Path(tmp) / "lib", decode_workers=workers, batch_size=batch, model_threads=model_threads
        )
        lib = Library(settings)
        embedder = lib.embedder
        embedder.encode_images([Image.new("RGB", SIZE)])  # load weights + class matrix outside the timing
        files = list(scan_folder(folder))
        report = IndexReport()
        index_files(
            lib.catalog,
            embedder,
            files,
            lib.settings,
            report,
            processes=processes,
            thumbnails=lib.media.thumbnails if thumbnails else None,
        )
        lib.close()
    assert report.indexed == len(files), report.failures[:3]
    return {"images": report.indexed, "seconds": report.seconds, **report.timings}


def model_only(paths: list[Path], batch: int, runtime: str, count: int, threads: int = 0) -> float:
    """images/s of the forward pass alone on prepared inputs (no decoding, no writes)."""
    from visualsearch.ingest.decode import decode_file

    embedder = load_embedder("conse-efficientnet-lite0-minilm", threads=threads)
    embedder.backbone.runtime = runtime
    prep = embedder.image_preprocessor()
    inputs = np.stack([prep(decode_file(p).image) for p in paths[:batch]])
    embedder.encode_prepared(inputs)  # warm-up
    runs = max(1, count // batch)
    start = time.perf_counter()
    for _ in range(runs):
        embedder.backbone.run_preprocessed(normalize(inputs))
    return runs * batch / (time.perf_counter() - start)


def print_row(name: str, r: dict) -> None:
    n, wall = r["images"], r["seconds"]
    stages = ("decode", "fingerprint", "thumbnail", "preprocess", "model", "write", "wait")
    per = {k: r.get(k, 0.0) / n * 1000 for k in stages}
    print(
        f"{name:<28} {n / wall:7.1f} img/s   "
        + "  ".join(f"{k} {v:5.2f}" for k, v in per.items())
        + f"   model {r.get('model', 0.0) / wall:4.0%} of wall"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--large", type=int, default=300, help="12 MP JPEGs to index separately (0: none)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "visualsearch-bench-ingest")
    parser.add_argument("--skip-torch", action="store_true", help="do not measure the PyTorch runtime")
    args = parser.parse_args()

    folder = args.workdir / f"jpeg-640x480-{args.images}"
    t = time.perf_counter()
    paths = build_folder(folder, args.images, args.eval)
    size_mb = sum(p.stat().st_size for p in paths) / 2**20
    print(f"{len(paths)} JPEGs 640x480 q90 ({size_mb:.0f} MB) in {folder} ({time.perf_counter() - t:.0f} s to prepare)")
    print(
        f"{os.cpu_count()} cores; batch {args.batch}; times in ms per image "
        "(decode/fingerprint/thumbnail/preprocess: worker time summed over workers)\n"
    )

    cores = os.cpu_count() or 1
    default = f"processes x{args.workers} (default)"
    print_row(default, run_index(folder, args.workers, args.batch, True))
    print_row("  same, no thumbnails", run_index(folder, args.workers, args.batch, True, thumbnails=False))
    print_row("  one decoding process", run_index(folder, 1, args.batch, True))
    print_row("  model on one core", run_index(folder, args.workers, args.batch, True, model_threads=1))
    print_row(f"threads x{args.workers} (no processes)", run_index(folder, args.workers, args.batch, False))

    if args.large:
        big = args.workdir / f"jpeg-{LARGE[0]}x{LARGE[1]}-{args.large}"
        t = time.perf_counter()
        big_paths = build_folder(big, args.large, args.eval, LARGE)
        mb = sum(p.stat().st_size for p in big_paths) / 2**20
        print(
            f"\n{len(big_paths)} JPEGs {LARGE[0]}x{LARGE[1]} q90 ({mb:.0f} MB) in {big} "
            f"({time.perf_counter() - t:.0f} s to prepare)"
        )
        print_row(default, run_index(big, args.workers, args.batch, True))
        print_row("  one decoding process", run_index(big, 1, args.batch, True))
        print_row("  model on one core", run_index(big, args.workers, args.batch, True, model_threads=1))

    print()
    sample = min(len(paths), 512)
    onnx = model_only(paths, args.batch, "onnx", sample)
    print(f"model alone, ONNX Runtime, {cores} threads: {onnx:6.1f} img/s  (ceiling for the pipeline)")
    onnx_one = model_only(paths, args.batch, "onnx", sample, 1)
    print(f"model alone, ONNX Runtime, 1 thread:  {onnx_one:6.1f} img/s")
    if not args.skip_torch:
        torch_rate = model_only(paths, args.batch, "torch", min(sample, 192), cores)
        print(f"model alone, PyTorch, {cores} threads:           {torch_rate:6.1f} img/s")


if __name__ == "__main__":
    main()
