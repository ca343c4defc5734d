#!/usr/bin/env python
"""Updating a large embedded index: what publishing a small change costs, and search meanwhile.

Fills a SQLite catalog with --n clustered unit vectors (--dim dimensions), builds the on-disk
index once (a full generation with its HNSW graph), then prints:

- **before**: the cost of today's alternative, a full rewrite of the generation for the change
  (vectors.npy rewritten, hnsw.bin copied and updated), timed on the same change;
- **publish**: ``IndexManager.sync()`` after adding --add images (and, separately, removing
  --add images): a delta generation, with the catalog read and the bytes written. The manager
  runs as in a server (``background=True``): superseded generations are deleted by a thread
  after the new one is live; compaction is started explicitly below;
- **search** p50/p99 and recall@10 against brute force over the catalog's vectors, on the
  live delta, *during* a background compaction (queries run while it works) and after it.

The catalog and index are kept in --workdir, so a second run skips the fill and the build.

Usage: python benchmarks/index_update.py [--n 1000000] [--add 1000] [--dim 384] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np
from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from index_scale import clustered  # noqa: E402

from visualsearch.catalog import Catalog  # noqa: E402
from visualsearch.catalog.schema import AssetRow, Embedding  # noqa: E402
from visualsearch.index.manager import IndexManager  # noqa: E402

MODEL, SPACE = "bench", "s"


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def add_rows(catalog: Catalog, vectors: np.ndarray, first_id: int, ids: np.ndarray | None = None) -> np.ndarray:
    """Insert assets ``first_id..`` (or ``ids``) with one vector each, in large transactions."""
    if ids is None:
        ids = np.arange(first_id, first_id + len(vectors), dtype=np.int64)
    with catalog.write_session() as s, s.begin():
        for start in range(0, len(vectors), 50_000):
            chunk = range(start, min(len(vectors), start + 50_000))
            s.execute(
                insert(AssetRow),
                [
                    {
                        "id": int(ids[i]),
                        "source": f"/photos/{ids[i] // 1000:04d}/img-{ids[i]:07d}.jpg",
                        "name": f"img-{ids[i]:07d}.jpg",
                        "format": "JPEG",
                        "width": 640,
                        "height": 480,
                        "byte_size": 80_000,
                        "status": "indexed",
                        "origin": "folder",
                    }
                    for i in chunk
                ],
            )
            s.execute(
                insert(Embedding),
                [
                    {
                        "asset_id": int(ids[i]),
                        "model_id": MODEL,
                        "space": SPACE,
                        "dim": vectors.shape[1],
                        "vector": vectors[i].astype("<f4").tobytes(),
                    }
                    for i in chunk
                ],
            )
    return ids


def stored(catalog: Catalog) -> int:
    with catalog.session() as s:
        return int(s.scalar(select(func.count()).select_from(Embedding).where(Embedding.model_id == MODEL)) or 0)


def all_vectors(catalog: Catalog) -> tuple[np.ndarray, np.ndarray]:
    ids, mats = [], []
    for chunk_ids, chunk in catalog.vectors(MODEL, SPACE, chunk=20_000):
        ids.append(chunk_ids)
        mats.append(chunk)
    return np.concatenate(ids), np.concatenate(mats)


def measure(manager: IndexManager, truth: tuple[np.ndarray, np.ndarray], queries: np.ndarray) -> tuple[float, ...]:
    """p50 and p99 latency (ms) and recall@10 of ``manager.search`` on ``queries``."""
    ids, vectors = truth
    times, found = [], 0
    for q in queries:
        t = time.perf_counter()
        hits = manager.search(q, 10)
        times.append((time.perf_counter() - t) * 1000)
        best = ids[np.argpartition(-(vectors @ q), 10)[:10]]
        found += len(set(hits.ids.tolist()) & set(best.tolist()))
    return float(np.percentile(times, 50)), float(np.percentile(times, 99)), found / (10 * len(queries))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--add", type=int, default=1_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/vs-index-update"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} cores; {args.n:,} vectors x {args.dim} dims; change of {args.add:,}", flush=True)

    if (args.workdir / "catalog.db").exists() and stored(Catalog(args.workdir / "catalog.db")) != args.n:
        shutil.rmtree(args.workdir)  # made for another --n
        args.workdir.mkdir(parents=True)
    catalog = Catalog(args.workdir / "catalog.db")
    if stored(catalog) != args.n:
        print("filling the catalog (once per workdir) ...", flush=True)
        t = time.perf_counter()
        matrix = np.empty((args.n, args.dim), np.float32)
        clustered(args.n, args.dim, 0, matrix)
        add_rows(catalog, matrix, 1)
        del matrix
        print(f"  {time.perf_counter() - t:.0f} s", flush=True)
    manager = IndexManager(catalog, args.workdir / "index", MODEL, SPACE)
    print("building the index, or catching up with the last run's restore ...", flush=True)
    t = time.perf_counter()
    manager.sync()
    manager.compact()
    print(f"  {time.perf_counter() - t:.0f} s", flush=True)
    base = manager._current()
    assert base is not None
    print(f"full generation on disk: {folder_bytes(base) / 2**30:.2f} GiB", flush=True)

    rng = np.random.default_rng(42)
    extra = np.empty((args.add, args.dim), np.float32)
    clustered(args.add, args.dim, 7, extra)
    new_ids = add_rows(catalog, extra, args.n + 1)
    gone: np.ndarray | None = None
    gone_vectors = np.empty((0, args.dim), np.float32)
    try:
        t = time.perf_counter()
        ids, seqs = catalog.embedding_ids(MODEL, SPACE)
        read = time.perf_counter() - t
        print(f"catalog id list ({len(ids):,} rows): {read:.2f} s", flush=True)

        snapshot = manager._snapshot()
        t = time.perf_counter()
        full = manager._write_full(ids, seqs, snapshot, finish=False)
        before = time.perf_counter() - t
        print(
            f"before (full rewrite for +{args.add:,}): {before:.1f} s, {folder_bytes(full) / 2**30:.2f} GiB written",
            flush=True,
        )
        shutil.rmtree(full)

        t = time.perf_counter()
        counts = manager.sync()
        publish = time.perf_counter() - t
        live = manager._current()
        assert live is not None
        print(
            f"publish +{args.add:,} (delta): {publish:.2f} s, {folder_bytes(live) / 2**20:.1f} MiB written {counts}",
            flush=True,
        )
        truth = all_vectors(catalog)
        # Queries near stored vectors, as benchmarks/index_scale.py makes them (a random direction
        # far from every cluster has no meaningful top 10 to recall).
        picks = rng.integers(0, len(truth[0]), args.queries)
        queries = truth[1][picks] + 0.05 * rng.normal(size=(args.queries, args.dim)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        manager.index()  # load the base graph once, as a server does
        p50, p99, recall = measure(manager, truth, queries)
        print(f"search on the delta: p50 {p50:.2f} ms, p99 {p99:.2f} ms, recall@10 {recall:.3f}", flush=True)

        gone = np.sort(rng.choice(np.arange(1, args.n + 1), args.add, replace=False))
        gone_vectors = truth[1][np.searchsorted(truth[0], gone)]
        catalog.remove(gone.tolist())
        t = time.perf_counter()
        counts = manager.sync()
        print(f"publish -{args.add:,} (delta): {time.perf_counter() - t:.2f} s {counts}", flush=True)
        truth = all_vectors(catalog)
        p50, p99, recall = measure(manager, truth, queries)
        print(f"search on the delta: p50 {p50:.2f} ms, p99 {p99:.2f} ms, recall@10 {recall:.3f}", flush=True)

        done = threading.Event()
        took: list[float] = []

        def compact() -> None:
            t = time.perf_counter()
            manager.compact()
            took.append(time.perf_counter() - t)
            done.set()

        threading.Thread(target=compact).start()
        during: list[tuple[float, ...]] = []
        while not done.is_set():
            during.append(measure(manager, truth, queries[:50]))
        if during:
            p50 = float(np.median([d[0] for d in during]))
            p99 = float(np.max([d[1] for d in during]))
            recall = float(np.mean([d[2] for d in during]))
            print(
                f"search during compaction ({50 * len(during)} queries): p50 {p50:.2f} ms, p99 {p99:.2f} ms,"
                f" recall@10 {recall:.3f}",
                flush=True,
            )
        print(f"compaction: {took[0]:.0f} s in the background", flush=True)
        p50, p99, recall = measure(manager, truth, queries)
        print(f"search after compaction: p50 {p50:.2f} ms, p99 {p99:.2f} ms, recall@10 {recall:.3f}", flush=True)
    finally:
        # Leave the catalog as it was (--n vectors) for the next run.
        catalog.remove(new_ids.tolist())
        if gone is not None:
            add_rows(catalog, gone_vectors, int(gone[0]), ids=gone)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
