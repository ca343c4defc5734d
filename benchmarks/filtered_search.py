#!/usr/bin/env python
"""Filtered vector search on a large library: the catalog side and the vector side.

A filtered search asks the catalog for the ids that pass the filter (SQL), then searches only
those vectors (index.manager.search_filtered: an exact scan of the allowed rows below 2.5% of the library,
the HNSW walk with the filter checked as it goes above). This fills a SQLite catalog with --n
synthetic assets laid out so that each filter keeps 1% of them (100 folders, 1% PNG, 100 tags,
100 days of additions), and --n random unit vectors of --dim dimensions, then prints, per
filter: the number of ids, catalog time, vector time and recall against brute force (a filtered
search must return the true top-k of the allowed images, never "top-k, then filter").

Usage: python benchmarks/filtered_search.py [--n 1000000] [--dim 384] [--queries 50]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from visualsearch.catalog import Catalog
from visualsearch.catalog.schema import AssetRow as Asset
from visualsearch.catalog.schema import AssetTag
from visualsearch.catalog.store import AssetFilter
from visualsearch.index.exact import ExactIndex
from visualsearch.index.manager import EXACT_FILTER_SHARE

START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 100


def fill_catalog(catalog: Catalog, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder = rng.integers(0, 100, n)
    tag = rng.integers(0, 100, n)
    png = rng.random(n) < 0.01
    step = timedelta(days=DAYS) / n
    block = 50_000
    with catalog.write_session() as s, s.begin():
        for start in range(0, n, block):
            stop = min(n, start + block)
            s.execute(
                insert(Asset),
                [
                    {
                        "id": i + 1,
                        "source": f"/photos/folder-{folder[i]:02d}/img-{i:07d}.{'png' if png[i] else 'jpg'}",
                        "name": f"img-{i:07d}",
                        "format": "PNG" if png[i] else "JPEG",
                        "width": 640,
                        "height": 480,
                        "byte_size": 80_000,
                        "status": "indexed",
                        "origin": "folder",
                        "added_at": START + i * step,
                        "updated_at": START + i * step,
                    }
                    for i in range(start, stop)
                ],
            )
            s.execute(insert(AssetTag), [{"asset_id": i + 1, "tag": f"tag-{tag[i]:02d}"} for i in range(start, stop)])


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times)), out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    n, k = args.n, args.k

    with tempfile.TemporaryDirectory(prefix="vs-filtered-") as tmp:
        print(f"{os.cpu_count()} cores; {n:,} assets, {args.dim}-d vectors, top-{k}", flush=True)
        t = time.perf_counter()
        catalog = Catalog(Path(tmp) / "catalog.db")
        fill_catalog(catalog, n)
        print(f"catalog filled in {time.perf_counter() - t:.0f} s", flush=True)

        rng = np.random.default_rng(1)
        vectors = rng.normal(size=(n, args.dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids = np.arange(1, n + 1, dtype=np.int64)
        exact = ExactIndex(ids, vectors)
        queries = rng.normal(size=(args.queries, args.dim)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        ranking = [ids[np.argsort(-(vectors @ q))] for q in queries]
        day = START + timedelta(days=DAYS // 2)
        filters = {
            "folder": AssetFilter(prefix="/photos/folder-42/"),
            "format": AssetFilter(format="png"),
            "tag": AssetFilter(tag="tag-07"),
            "date": AssetFilter(added_after=day, added_before=day + timedelta(days=1)),
            "folder+tag": AssetFilter(prefix="/photos/folder-42/", tag="tag-07"),
        }
        print(
            f"\n{'filter':<12}{'ids':>9}{'catalog ms':>12}{'vectors ms':>12}{'total ms':>10}"
            f"{'recall@' + str(k):>11}{'full pages':>12}"
        )
        for name, flt in filters.items():
            catalog_ms, allow = timed(lambda: catalog.filter_ids(flt), 5)
            scan = len(allow) < EXACT_FILTER_SHARE * n
            assert scan, "every filter here keeps about 1%: the product scans the allowed rows exactly"
            hits = []
            t = time.perf_counter()
            for q in queries:
                hits.append(exact.search(q, k, allow=allow).ids)
            vector_ms = (time.perf_counter() - t) * 1000 / len(queries)
            # Ground truth: every vector ranked by brute force, then the allowed ones kept.
            allowed = np.zeros(n + 1, bool)
            allowed[allow] = True
            recall, full = [], 0
            for ranked, got in zip(ranking, hits):
                truth = ranked[allowed[ranked]][:k]
                recall.append(len(set(got.tolist()) & set(truth.tolist())) / max(1, len(truth)))
                full += len(got) == min(k, len(allow))
            print(
                f"{name:<12}{len(allow):>9,}{catalog_ms:>12.1f}{vector_ms:>12.1f}{catalog_ms + vector_ms:>10.1f}"
                f"{np.mean(recall):>11.3f}{full:>8}/{len(queries)}",
                flush=True,
            )
        catalog.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
