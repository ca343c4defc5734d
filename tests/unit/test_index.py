"""Vector indexes: exact ordering and ties, HNSW agreeing with exact, incremental sync."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from visualsearch.catalog import Catalog, ImageRecord
from visualsearch.index import ExactIndex, IndexManager
from visualsearch.index.ann import HnswIndex, allowed_test
from visualsearch.models import l2_normalize


def unit(rows) -> np.ndarray:
    return l2_normalize(np.asarray(rows, dtype=np.float32))


def test_exact_orders_by_score_then_id():
    vectors = unit([[1, 0], [0, 1], [1, 0], [1, 1]])
    index = ExactIndex(np.array([7, 3, 2, 5]), vectors)
    hits = index.search(unit([[1, 0]])[0], k=4)
    assert hits.ids.tolist() == [2, 7, 5, 3]  # 2 and 7 tie at 1.0: smaller id first
    assert np.all(np.diff(hits.scores) <= 0)
    assert hits.scores[0] == pytest.approx(1.0)


def test_exact_exclude_and_k():
    index = ExactIndex(np.arange(5), unit(np.eye(5)))
    hits = index.search(unit([[1, 0, 0, 0, 0]])[0], k=2, exclude={0})
    assert 0 not in hits.ids.tolist() and len(hits.ids) == 2


def test_empty_index():
    hits = ExactIndex(np.empty(0, np.int64), np.empty((0, 3), np.float32)).search(np.ones(3), 5)
    assert len(hits.ids) == 0


def test_hnsw_matches_exact_on_a_small_library():
    rng = np.random.default_rng(1)
    vectors = unit(rng.standard_normal((500, 32)))
    ids = np.arange(1, 501) * 3
    exact = ExactIndex(ids, vectors)
    hnsw = HnswIndex(32)
    hnsw.upsert(ids, vectors)
    for q in unit(rng.standard_normal((20, 32))):
        a, b = exact.search(q, 10), hnsw.search(q, 10)
        assert a.ids.tolist() == b.ids.tolist()
        assert np.allclose(a.scores, b.scores, atol=1e-5)


@pytest.mark.skipif(
    (os.cpu_count() or 1) < 2 or not Path("/proc/self/task").exists(), reason="needs two cores and Linux /proc"
)
@pytest.mark.slow  # builds HNSW on every core, 1-4 s
def test_hnsw_builds_on_every_core():
    """hnswlib 0.8 silently builds on one thread when told -1 threads; the index must use the cores."""
    vectors = unit(np.random.default_rng(2).standard_normal((20_000, 32)))
    baseline = len(os.listdir("/proc/self/task"))
    peak, stop = [baseline], threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak.append(len(os.listdir("/proc/self/task")))
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        HnswIndex(32).upsert(np.arange(20_000), vectors)  # releases the GIL while its threads build
    finally:
        stop.set()
        watcher.join()
    # The watcher itself is one extra thread; the build adds one per core.
    assert max(peak) >= baseline + 1 + min(os.cpu_count(), 2), (baseline, max(peak))


def test_hnsw_update_and_remove(tmp_path):
    hnsw = HnswIndex(2)
    hnsw.upsert(np.array([1, 2]), unit([[1, 0], [0, 1]]))
    hnsw.upsert(np.array([2]), unit([[1, 0.01]]))  # replaced in place
    assert hnsw.search(unit([[1, 0]])[0], 2).ids.tolist() == [1, 2]
    hnsw.remove(np.array([1]))
    hnsw.save(tmp_path / "h.bin")
    again = HnswIndex(2, tmp_path / "h.bin")
    assert again.search(unit([[1, 0]])[0], 1).ids.tolist() == [2]


def _store(catalog: Catalog, name: str, vec) -> None:
    record = ImageRecord(name, "0" * 64, 1, 1, "PNG", 1, 0.0)
    catalog.write_batch([(record, {"s": np.asarray(vec, np.float32)})], [], "m")


@pytest.mark.parametrize("threshold", [10_000, 1])  # exact only, and HNSW from the first vector
def test_manager_syncs_incrementally(tmp_path, threshold):
    catalog = Catalog(tmp_path / "c.sqlite")
    manager = IndexManager(catalog, tmp_path / "idx", "m", "s", ann_threshold=threshold)
    for i in range(5):
        _store(catalog, f"/img{i}", unit([[1, i]])[0])
    assert manager.sync()["added"] == 5
    assert manager.sync() == {"added": 0, "removed": 0, "total": 5}  # nothing to do
    first = manager.index().search(unit([[1, 0]])[0], 5)
    assert first.ids[0] == 1

    _store(catalog, "/img0", unit([[0, 1]])[0])  # changed: only this vector is re-read
    catalog.remove([2])
    _store(catalog, "/img9", unit([[1, 0]])[0])
    result = manager.sync()
    assert result == {"added": 2, "removed": 1, "total": 5}
    index = manager.index()
    assert index.kind == ("hnsw" if threshold == 1 else "exact")
    hits = index.search(unit([[1, 0]])[0], 10)
    assert 2 not in hits.ids.tolist()
    assert hits.ids[0] == 6  # /img9
    assert hits.ids[-1] == 1  # /img0 now points the other way
    assert (
        len(list((tmp_path / "idx").rglob("gen-*"))) == 2
    )  # the live one and the one just replaced; older ones removed


def test_manager_crash_leaves_previous_generation(tmp_path, monkeypatch):
    catalog = Catalog(tmp_path / "c.sqlite")
    manager = IndexManager(catalog, tmp_path / "idx", "m", "s")
    _store(catalog, "/a", [1, 0])
    manager.sync()
    _store(catalog, "/b", [0, 1])
    monkeypatch.setattr(manager, "_publish", lambda gen: (_ for _ in ()).throw(RuntimeError("crash")))
    with pytest.raises(RuntimeError):
        manager.sync()
    fresh = IndexManager(catalog, tmp_path / "idx", "m", "s")
    assert len(fresh.index()) == 1  # the old, complete index is still the live one
    fresh.sync()
    assert len(fresh.index()) == 2


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_filtered_search_fills_k_from_a_one_percent_filter(kind):
    rng = np.random.default_rng(3)
    ids = np.arange(1, 5001, dtype=np.int64)
    vectors = unit(rng.normal(size=(5000, 16)))
    allow = np.sort(rng.choice(ids, 50, replace=False))  # 1% of the library
    query = vectors[0]
    if kind == "exact":
        index = ExactIndex(ids, vectors)
    else:
        index = HnswIndex(16)
        index.upsert(ids, vectors)
    hits = index.search(query, 10, allow=allow)
    assert len(hits.ids) == 10 and set(hits.ids.tolist()) <= set(allow.tolist())
    truth = allow[np.argsort(-(vectors[allow - 1] @ query), kind="stable")][:10]
    assert len(set(hits.ids.tolist()) & set(truth.tolist())) >= 9
    assert len(index.search(query, 10, allow=np.array([], np.int64)).ids) == 0


def test_allowed_test_answers_every_label():
    test = allowed_test(np.array([7, 3, 3, 12], np.int64))  # unsorted, repeated
    assert [label for label in range(20) if test(label)] == [3, 7, 12]
    assert test(10**9) is False  # a label above the largest allowed id


def test_manager_answers_narrow_filters_exactly(tmp_path):
    catalog = Catalog(tmp_path / "c.sqlite")
    for i in range(30):
        _store(catalog, f"/img{i}", unit([[np.cos(i / 10), np.sin(i / 10)]])[0])
    manager = IndexManager(catalog, tmp_path / "idx", "m", "s", ann_threshold=1)
    manager.sync()
    assert manager.index().kind == "hnsw"
    hits = manager.search(unit([[1, 0]])[0], 5, allow=np.array([3, 17], np.int64), exclude={3})
    assert hits.ids.tolist() == [17]
