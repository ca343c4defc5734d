#!/usr/bin/env python
"""Vector index at scale: exact vs approximate (HNSW) over up to a million vectors.

For each dimension (384 = the default model's text space, 512 = CLIP ViT-B/32; the default
model's image-similarity space is 1280-d), builds over --n clustered random unit vectors and
prints: build time, resident memory, on-disk size, query latency p50/p99 for top-10 and top-100
(single queries, 2 cores), recall@10 against exact search, and the raw size of the vectors for
the "within 2x" memory target. Exact search is also measured on float16 vectors, and filtered
search (filters keeping 1%, 3%, 10% and 30% of the library) through the product's own rule.

Usage: python benchmarks/index_scale.py [--n 1000000] [--dims 384,512] [--queries 300]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from visualsearch.index.ann import DEFAULT_EF_CONSTRUCTION, DEFAULT_M, HnswIndex, default_ef_search
from visualsearch.index.exact import ExactIndex
from visualsearch.index.manager import EXACT_FILTER_SHARE, search_filtered


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def clustered(n: int, dim: int, seed: int, out: np.ndarray) -> None:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(1, n // 1000), dim)).astype(np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        block = centres[rng.integers(0, len(centres), m)] + 0.7 * rng.normal(size=(m, dim)).astype(np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + m] = block


def latency(fn, queries: np.ndarray) -> tuple[float, float]:
    times = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - t) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def run(n: int, dim: int, n_queries: int, workdir: Path, m: int, ef_construction: int, ef_search: int | None) -> None:
    ef_search = ef_search or default_ef_search(n)
    print(f"\n== {n:,} vectors x {dim} dims (raw float32 {n * dim * 4 / 2**20:,.0f} MB) ==", flush=True)
    path = workdir / f"vectors-{dim}.npy"
    vectors = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
    clustered(n, dim, dim, vectors)
    vectors.flush()
    ids = np.arange(1, n + 1, dtype=np.int64)
    rng = np.random.default_rng(1)
    picks = rng.integers(0, n, n_queries)
    queries = np.asarray(vectors[picks]) + 0.05 * rng.normal(size=(n_queries, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    # Exact, memory-mapped (what libraries below the ANN threshold use).
    base = rss_mb()
    exact = ExactIndex(ids, np.load(path, mmap_mode="r"))
    exact.search(queries[0], 10)  # page the matrix in
    truth = np.stack([exact.search(q, 10).ids for q in queries[:200]])
    p50, p99 = latency(lambda q: exact.search(q, 10), queries[:100])
    p50h, p99h = latency(lambda q: exact.search(q, 100), queries[:100])
    print(
        f"exact float32  : disk {path.stat().st_size / 2**20:,.0f} MB, RSS +{rss_mb() - base:,.0f} MB, "
        f"top-10 p50 {p50:.1f} ms p99 {p99:.1f} ms, top-100 p50 {p50h:.1f} ms p99 {p99h:.1f} ms",
        flush=True,
    )
    # numpy has no float16 matrix kernels (about 1.5 s a query at 1M), so fewer queries, each
    # timed and scored in the same pass.
    half = ExactIndex(ids, np.asarray(vectors, dtype=np.float16))
    found = []
    p50, p99 = latency(lambda q: found.append(half.search(q.astype(np.float16), 10).ids), queries[:40])
    agree = np.mean([len(set(f.tolist()) & set(t.tolist())) / 10 for f, t in zip(found, truth)])
    print(
        f"exact float16  : memory {n * dim * 2 / 2**20:,.0f} MB, top-10 p50 {p50:.1f} ms p99 {p99:.1f} ms, "
        f"recall@10 {agree:.3f}",
        flush=True,
    )
    del half, exact
    gc.collect()

    # Approximate: hnswlib HNSW.
    base = rss_mb()
    t = time.perf_counter()
    ann = HnswIndex(dim, M=m, ef_construction=ef_construction, ef_search=ef_search)
    ann._index.resize_index(n)
    for start in range(0, n, 50_000):
        ann.upsert(ids[start : start + 50_000], np.asarray(vectors[start : start + 50_000]))
    build = time.perf_counter() - t
    mem = rss_mb() - base
    ann_path = workdir / f"hnsw-{dim}.bin"
    ann.save(ann_path)
    raw = n * dim * 4 / 2**20
    print(
        f"hnsw M={m} efC={ef_construction}: build {build:,.0f} s, RSS +{mem:,.0f} MB ({mem / raw:.2f}x raw), "
        f"disk {ann_path.stat().st_size / 2**20:,.0f} MB",
        flush=True,
    )
    # The search breadth trades latency for recall on the same graph: print the curve.
    for ef in sorted({64, 128, 256, 384, ef_search, 512, 1024}):
        ann.ef_search = ef
        found = np.stack([ann.search(q, 10).ids for q in queries[:200]])
        recall = np.mean([len(set(f.tolist()) & set(t.tolist())) / 10 for f, t in zip(found, truth)])
        p50, p99 = latency(lambda q: ann.search(q, 10), queries)
        p50h, p99h = latency(lambda q: ann.search(q, 100), queries)
        mark = "  <- product default at this size" if ef == ef_search else ""
        print(
            f"  ef={ef:5d}: top-10 p50 {p50:.2f} ms p99 {p99:.2f} ms, top-100 p50 {p50h:.2f} ms p99 {p99h:.2f} ms, "
            f"recall@10 {recall:.3f}{mark}",
            flush=True,
        )
    # Filtered search through the product's own rule (index.manager.search_filtered): an exact
    # scan of the allowed rows below EXACT_FILTER_SHARE of the library, above it the graph walk
    # checking the filter as it goes. Never "top-k, then filter".
    ann.ef_search = None  # the product sizes the breadth for the allowed subset
    exact = ExactIndex(ids, np.load(path, mmap_mode="r"))
    for share in (0.01, 0.03, 0.10, 0.30):
        allow = np.sort(rng.choice(ids, int(n * share), replace=False))

        def filtered(q: np.ndarray, k: int = 10):
            return search_filtered(ann, lambda: exact, q, k, allow=allow)

        truth_f = [exact.search(q, 10, allow=allow).ids for q in queries[:100]]
        found = [filtered(q).ids for q in queries[:100]]
        recall = np.mean([len(set(f.tolist()) & set(t.tolist())) / 10 for f, t in zip(found, truth_f)])
        short = sum(len(f) < 10 for f in found)
        p50, p99 = latency(filtered, queries[:100])
        how = (
            "exact scan of the allowed rows"
            if share < EXACT_FILTER_SHARE
            else f"hnsw ef={default_ef_search(len(allow))}, filter checked in the walk"
        )
        print(
            f"filter keeps {share:.0%} ({len(allow):,} ids), {how}: top-10 p50 {p50:.2f} ms p99 {p99:.2f} ms, "
            f"recall@10 {recall:.3f}, {short} of 100 queries returned fewer than 10",
            flush=True,
        )
    del ann, exact
    gc.collect()
    path.unlink()
    ann_path.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dims", default="384,512")
    parser.add_argument("--queries", type=int, default=300)
    # Defaults: the product's own HNSW parameters (visualsearch.index.ann).
    parser.add_argument("--m", type=int, default=DEFAULT_M)
    parser.add_argument("--ef-construction", type=int, default=DEFAULT_EF_CONSTRUCTION)
    parser.add_argument("--ef-search", type=int, default=None, help="default: the product's choice for --n vectors")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vs-scale-"))
    print(f"{os.cpu_count()} cores; workdir {workdir}")
    for dim in [int(d) for d in args.dims.split(",")]:
        run(args.n, dim, args.queries, workdir, args.m, args.ef_construction, args.ef_search)
    return 0


if __name__ == "__main__":
    sys.exit(main())
