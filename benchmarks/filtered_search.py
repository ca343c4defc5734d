#!/usr/bin/env python
"""Filtered vector search on a large library: the catalog side and the vector side.

A filtered search asks the catalog for the ids that pass the filter (SQL), then searches only
those vectors (index.manager.search_filtered: an exact scan of the allowed rows below 2.5% of the library,
the HNSW walk with the filter checked as it goes above). This fills a SQLite catalog with --n
synthetic assets laid out so that each filter keeps 1% of them (100 folders, 1% PNG, 100 tags,
100 days of additions), and --n random unit vectors of --dim dimensions, then prints, per
filter: the number of ids, catalog time, vector time and recall against brute force (a filtered
search must return the true top-k of the allowed images, never "top-k, then filter").

With --milvus N, it then compares the two ways a Milvus collection (Milvus Lite here) answers
filtered searches over N vectors: the filter evaluated by Milvus on the scalar fields stored beside
each vector (MilvusManager.search_where), and the catalog's allowed ids sent as ``id in [...]``.
Filters keep 1%, 10% and 50% of the assets (folder prefix, tag, date range).

Usage: python benchmarks/filtered_search.py [--n 1000000] [--dim 384] [--queries 50] [--milvus 20000]
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
from visualsearch.catalog.schema import AssetTag, Embedding
from visualsearch.catalog.store import AssetFilter
from visualsearch.index.exact import ExactIndex
from visualsearch.index.manager import EXACT_FILTER_SHARE

START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 100


def fill_catalog(catalog: Catalog, n: int, seed: int = 0, shares: bool = False) -> None:
    """``shares``: also tag each asset "tenth-<i % 10>" and "half-<i % 2>" (10% and 50% tags)."""
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
            if shares:
                for name, every in (("tenth", 10), ("half", 2)):
                    s.execute(
                        insert(AssetTag),
                        [{"asset_id": i + 1, "tag": f"{name}-{i % every}"} for i in range(start, stop)],
                    )


def store_vectors(catalog: Catalog, vectors: np.ndarray, model_id: str, space: str) -> None:
    """Asset i + 1 gets vectors[i] (what the Milvus backend reads when it syncs)."""
    with catalog.write_session() as s, s.begin():
        for start in range(0, len(vectors), 50_000):
            s.execute(
                insert(Embedding),
                [
                    {
                        "asset_id": i + 1,
                        "model_id": model_id,
                        "space": space,
                        "dim": vectors.shape[1],
                        "vector": vectors[i].astype("<f4").tobytes(),
                    }
                    for i in range(start, min(len(vectors), start + 50_000))
                ],
            )


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times)), out


def wait_until_indexed(client, collection: str, timeout: float = 600.0) -> None:
    """Milvus builds the vector index after a flush, in the background: measure once it is complete."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = client.describe_index(collection, "vector")
        if info.get("pending_index_rows", 0) == 0 and info.get("indexed_rows", 0) >= info.get("total_rows", 0):
            return
        time.sleep(1)


def milvus_comparison(n: int, dim: int, k: int, n_queries: int) -> None:
    """Filtered search on Milvus Lite: scalar fields (filter in Milvus) vs allowed ids (id in [...])."""
    from visualsearch.index.milvus import MilvusManager

    with tempfile.TemporaryDirectory(prefix="vs-filtered-milvus-") as tmp:
        print(f"\nMilvus Lite: {n:,} assets, {dim}-d vectors, top-{k}", flush=True)
        catalog = Catalog(Path(tmp) / "catalog.db")
        fill_catalog(catalog, n, shares=True)
        rng = np.random.default_rng(2)
        vectors = rng.normal(size=(n, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        store_vectors(catalog, vectors, "bench", "semantic")
        manager = MilvusManager(catalog, str(Path(tmp) / "milvus.db"), Path(tmp) / "index", "bench", "semantic")
        manager.tags_in_milvus = True  # measure Milvus' own array_contains (the product skips it on Milvus Lite)
        t = time.perf_counter()
        manager.sync()
        print(f"synced in {time.perf_counter() - t:.0f} s", flush=True)
        wait_until_indexed(manager.client, manager.collection)
        print(f"indexed after {time.perf_counter() - t:.0f} s", flush=True)
        queries = rng.normal(size=(n_queries, dim)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        ids = np.arange(1, n + 1, dtype=np.int64)
        day = START + timedelta(days=DAYS // 2)
        filters = {
            "folder 1%": AssetFilter(prefix="/photos/folder-42/"),
            "folder 10%": AssetFilter(prefix="/photos/folder-4"),
            "tag 1%": AssetFilter(tag="tag-07"),
            "tag 10%": AssetFilter(tag="tenth-3"),
            "tag 50%": AssetFilter(tag="half-1"),
            "date 10%": AssetFilter(added_after=day, added_before=day + timedelta(days=DAYS // 10)),
            "date 50%": AssetFilter(added_after=day),
        }
        print(
            f"\n{'filter':<12}{'ids':>8}{'scalar ms':>11}{'recall':>8}{'id-list ms':>12}{'(catalog)':>11}{'recall':>8}"
            f"{'same':>8}"
        )
        for name, flt in filters.items():
            allow = catalog.filter_ids(flt)
            mask = np.isin(ids, allow)
            truth = [set(ids[mask][np.argsort(-(vectors[mask] @ q))[:k]].tolist()) for q in queries]

            def recall(results: list[np.ndarray]) -> float:
                return float(np.mean([len(set(r.tolist()) & t) / max(1, len(t)) for r, t in zip(results, truth)]))

            manager.search_where(queries[0], k, filters=flt)  # warm: caches, tag digest check
            scalar, listed, scalar_ms, listed_ms = [], [], 0.0, 0.0
            for q in queries:  # alternating, so both paths meet the same state of the collection
                t = time.perf_counter()
                scalar.append(manager.search_where(q, k, filters=flt).ids)
                scalar_ms += (time.perf_counter() - t) * 1000 / len(queries)
                t = time.perf_counter()
                listed.append(manager.search(q, k, allow=catalog.filter_ids(flt)).ids)
                listed_ms += (time.perf_counter() - t) * 1000 / len(queries)
            # Milvus Lite's index is approximate, and the two filter mechanisms walk it differently:
            # report how often they return the very same page rather than require it.
            same = float(np.mean([a.tolist() == b.tolist() for a, b in zip(scalar, listed)]))
            catalog_ms, _ = timed(lambda: catalog.filter_ids(flt), 5)
            print(
                f"{name:<12}{len(allow):>8,}{scalar_ms:>11.1f}{recall(scalar):>8.3f}"
                f"{listed_ms:>12.1f}{catalog_ms:>11.1f}{recall(listed):>8.3f}{same:>8.2f}",
                flush=True,
            )
        catalog.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--milvus", type=int, default=0, metavar="N", help="also compare on Milvus Lite, N vectors")
    args = parser.parse_args()
    n, k = args.n, args.k
    if args.milvus and not n:
        milvus_comparison(args.milvus, args.dim, k, args.queries)
        return 0

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
    if args.milvus:
        milvus_comparison(args.milvus, args.dim, k, args.queries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
