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


def test_exact_filter_with_ids_missing_from_the_index():
    """An allowed id that has no vector must not bring in its neighbour a second time."""
    index = ExactIndex(np.array([2, 5, 9]), unit(np.eye(3)))
    hits = index.search(unit([[0, 1, 0]])[0], 5, allow=np.array([4, 5, 9, 11]))
    assert hits.ids.tolist() == [5, 9]


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
    # Threads are counted by id, not by number: a thread left by an earlier test in this process may
    # end during the build (CI counted 10 threads before it and 12 at its peak, one short).
    before = set(os.listdir("/proc/self/task"))
    seen: set[str] = set()
    watcher_id: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        watcher_id.append(str(threading.get_native_id()))
        while not stop.is_set():
            seen.update(os.listdir("/proc/self/task"))
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        HnswIndex(32).upsert(np.arange(20_000), vectors)  # releases the GIL while its threads build
    finally:
        stop.set()
        watcher.join()
    started = seen - before - set(watcher_id)  # the build's threads: one per core
    assert len(started) >= min(os.cpu_count() or 1, 2), (len(before), sorted(started))


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
    manager = IndexManager(catalog, tmp_path / "idx", "m", "s", ann_threshold=threshold, background=False)
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
    # Above the HNSW threshold the change is published as a delta over the first generation.
    assert index.kind == ("hnsw+delta" if threshold == 1 else "exact")
    hits = index.search(unit([[1, 0]])[0], 10)
    assert 2 not in hits.ids.tolist()
    assert hits.ids[0] == 6  # /img9
    assert hits.ids[-1] == 1  # /img0 now points the other way
    assert (
        len(list((tmp_path / "idx").rglob("gen-*"))) == 2
    )  # the live one and the one just replaced (also the delta's base); older ones removed
    manager.sync()  # nothing changed: nothing written
    _store(catalog, "/img10", unit([[1, 1]])[0])
    manager.sync()
    # A delta also keeps the base it stands on; exact generations are whole.
    assert len(list((tmp_path / "idx").rglob("gen-*"))) == (3 if threshold == 1 else 2)


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


def _bulk(catalog: Catalog, start: int, vectors: np.ndarray) -> None:
    catalog.write_batch(
        [
            (ImageRecord(f"/bulk{start + n}", "0" * 64, 1, 1, "PNG", 1, 0.0), {"s": v})
            for n, v in enumerate(np.asarray(vectors, np.float32))
        ],
        [],
        "m",
    )


def _synced(tmp_path, rng: np.random.Generator, n: int) -> tuple[Catalog, IndexManager]:
    """A catalog of ``n`` random 8-d vectors and its index (HNSW from 100, compactions within the
    sync), synced once."""
    catalog = Catalog(tmp_path / "c.sqlite")
    _bulk(catalog, 0, unit(rng.normal(size=(n, 8))))
    manager = IndexManager(catalog, tmp_path / "idx", "m", "s", ann_threshold=100, background=False)
    manager.sync()
    return catalog, manager


def _truth(catalog: Catalog, query: np.ndarray, k: int, allow: np.ndarray | None = None) -> list[int]:
    ids, mats = [], []
    for chunk_ids, chunk in catalog.vectors("m", "s"):
        ids.append(chunk_ids)
        mats.append(chunk)
    index = ExactIndex(np.concatenate(ids), np.concatenate(mats))
    return index.search(query, k, allow=allow).ids.tolist()


def test_updates_above_the_threshold_write_a_delta_and_compaction_folds_it(tmp_path, monkeypatch):
    """A sync over an HNSW base writes only the change; searches see base + delta as one library."""
    from visualsearch.index import manager as manager_module

    monkeypatch.setattr(manager_module, "COMPACT_MIN_ROWS", 40)
    rng = np.random.default_rng(5)
    catalog, manager = _synced(tmp_path, rng, 300)
    base = manager._current()
    assert base is not None and (base / "hnsw.bin").exists()

    # Add 20, change 3, remove 2: a delta generation that holds 23 vectors, not 321.
    _bulk(catalog, 300, unit(rng.normal(size=(20, 8))))
    for i in (5, 6, 7):
        _store(catalog, f"/bulk{i - 1}", unit(rng.normal(size=(1, 8)))[0])
    catalog.remove([10, 11])
    assert manager.sync() == {"added": 23, "removed": 2, "total": 318}
    live = manager._current()
    assert live is not None and (live / "BASE").read_text() == base.name
    assert not (live / "vectors.npy").exists() and not (live / "hnsw.bin").exists()
    assert len(np.load(live / "delta_ids.npy")) == 23
    assert sorted(np.load(live / "hidden.npy").tolist()) == [5, 6, 7, 10, 11]

    index = manager.index()
    assert index.kind == "hnsw+delta" and len(index) == 318
    for query in unit(rng.normal(size=(15, 8))):
        assert manager.search(query, 10).ids.tolist() == _truth(catalog, query, 10)
        allow = np.array([3, 5, 12, 305, 310, 11], np.int64)  # hidden 5 and 11: 5 has a new vector, 11 is gone
        assert manager.search(query, 3, allow=allow).ids.tolist() == _truth(catalog, query, 3, allow)
    ids, _ = index.search_many(unit(rng.normal(size=(4, 8))), 318)
    assert all(set(row.tolist()) == set(manager.exact().ids.tolist()) for row in ids)  # no removed id, no repeat
    assert not ({10, 11} & set(manager.exact().ids.tolist())) and len(manager.exact()) == 318

    # Past the compaction point the next sync folds the delta into a new full generation.
    _bulk(catalog, 320, unit(rng.normal(size=(30, 8))))
    manager.sync()
    compacted = manager._current()
    assert compacted is not None and not (compacted / "BASE").exists() and (compacted / "hnsw.bin").exists()
    assert manager.index().kind == "hnsw" and len(manager.index()) == 348
    for query in unit(rng.normal(size=(10, 8))):
        assert manager.search(query, 10).ids.tolist() == _truth(catalog, query, 10)


def test_compaction_rebases_deltas_published_while_it_ran(tmp_path, monkeypatch):
    """Syncs go on during a compaction; what they published is kept, over the new base."""
    rng = np.random.default_rng(6)
    catalog, manager = _synced(tmp_path, rng, 200)
    _bulk(catalog, 200, unit(rng.normal(size=(10, 8))))
    manager.sync()  # a delta of 10, below the compaction point

    real_write_full = manager._write_full

    def write_full_while_a_sync_lands(*args, **kwargs):
        built = real_write_full(*args, **kwargs)
        _bulk(catalog, 210, unit(rng.normal(size=(5, 8))))
        catalog.remove([3])
        other = IndexManager(catalog, tmp_path / "idx", "m", "s", ann_threshold=100, background=False)
        other.sync()  # another process publishes a delta over the old base meanwhile
        return built

    monkeypatch.setattr(manager, "_write_full", write_full_while_a_sync_lands)
    assert manager.compact()
    live = manager._snapshot()
    assert live is not None and live.layered and live.base.name != "" and len(live.ids) == 214
    assert sorted(live.delta_ids.tolist()) == list(range(211, 216)) and live.hidden.tolist() == [3]
    assert (live.base / "hnsw.bin").exists() and len(np.load(live.base / "ids.npy")) == 210
    for query in unit(rng.normal(size=(10, 8))):
        assert manager.search(query, 10).ids.tolist() == _truth(catalog, query, 10)


def test_a_crash_while_writing_a_delta_keeps_the_live_index(tmp_path, monkeypatch):
    rng = np.random.default_rng(7)
    catalog, manager = _synced(tmp_path, rng, 150)
    before = manager.generation()
    _bulk(catalog, 150, unit(rng.normal(size=(5, 8))))
    monkeypatch.setattr(np, "save", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(OSError):
        manager.sync()
    monkeypatch.undo()
    fresh = IndexManager(catalog, tmp_path / "idx", "m", "s", ann_threshold=100, background=False)
    assert fresh.generation() == before and len(fresh.index()) == 150
    fresh.sync()
    assert len(fresh.index()) == 155


@pytest.mark.slow  # a background thread and a real compaction, about a second
def test_background_compaction_keeps_searches_answering(tmp_path, monkeypatch):
    from visualsearch.index import manager as manager_module

    monkeypatch.setattr(manager_module, "COMPACT_MIN_ROWS", 10)
    rng = np.random.default_rng(8)
    catalog = Catalog(tmp_path / "c.sqlite")
    _bulk(catalog, 0, unit(rng.normal(size=(3000, 16))))
    manager = IndexManager(catalog, tmp_path / "idx", "m", "s", ann_threshold=100)
    manager.sync()
    _bulk(catalog, 3000, unit(rng.normal(size=(400, 16))))
    manager.sync()  # publishes a delta and starts compacting in the background
    assert manager._compactor is not None
    answered = 0
    while manager._compactor.is_alive():
        query = unit(rng.normal(size=(1, 16)))[0]
        assert len(manager.search(query, 10).ids) == 10
        answered += 1
    manager.wait()
    assert manager.index().kind == "hnsw" and len(manager.index()) == 3400
    query = unit(rng.normal(size=(1, 16)))[0]
    assert manager.search(query, 10).ids.tolist() == _truth(catalog, query, 10)


def test_row_ids_are_never_reused_so_an_index_sees_every_rewrite(tmp_path):
    """SQLite used to give a new row the largest id plus one: deleting the newest rows made the next
    ones reuse their ids, and an index that tells vectors apart by row id missed the change."""
    rng = np.random.default_rng(9)
    catalog, manager = _synced(tmp_path, rng, 150)
    _, seqs = catalog.embedding_ids("m", "s")
    newest = int(seqs.max())
    catalog.remove([150])  # the newest row
    _bulk(catalog, 500, unit(rng.normal(size=(1, 8))))  # another asset
    _store(catalog, "/bulk3", unit(rng.normal(size=(1, 8)))[0])  # a rewrite
    ids, seqs = catalog.embedding_ids("m", "s")
    assert seqs.min() >= 1 and sorted(seqs.tolist())[-2:] == [newest + 1, newest + 2]
    # The new asset takes asset id 150 again (the assets table may reuse them); its vector row is new.
    assert manager.sync() == {"added": 2, "removed": 0, "total": 150}
    for query in unit(rng.normal(size=(5, 8))):
        assert manager.search(query, 10).ids.tolist() == _truth(catalog, query, 10)


@pytest.mark.parametrize("compact", [False, True])
def test_a_graph_walk_that_finds_too_few_answers_exactly(tmp_path, monkeypatch, compact):
    """hnswlib raises when deleted vectors crowd the query's neighbourhood: on a million vectors
    (benchmarks/index_update.py), 1,000 removed look-alikes made every search for one of them fail,
    even at ef 4,096. The search then answers exactly, without the removed or hidden vectors."""
    rng = np.random.default_rng(10)
    catalog = Catalog(tmp_path / "c.sqlite")
    _bulk(catalog, 0, unit(rng.normal(size=(2000, 16))))
    centre = unit(rng.normal(size=(1, 16)))[0]
    _bulk(catalog, 2000, unit(centre + 0.01 * rng.normal(size=(400, 16))))
    manager = IndexManager(catalog, tmp_path / "idx", "m", "s", ann_threshold=100, background=False)
    manager.sync()
    catalog.remove(list(range(2001, 2401)))
    manager.sync()
    if compact:
        manager.compact()
    assert manager.index().kind == ("hnsw" if compact else "hnsw+delta")

    def too_few(self, *args, **kwargs):
        raise RuntimeError("Cannot return the results in a contiguous 2D array. Probably ef or M is too small")

    monkeypatch.setattr(HnswIndex, "search", too_few)
    assert manager.search(centre, 10).ids.tolist() == _truth(catalog, centre, 10)


def test_rows_committed_late_with_smaller_ids_are_not_missed(tmp_path):
    """PostgreSQL hands out sequence numbers at insert and shows rows at commit: a writer that took
    id X can commit after one that took X+1 and after a sync. Emulated on SQLite with explicit ids."""
    from sqlalchemy import text

    rng = np.random.default_rng(11)
    catalog, manager = _synced(tmp_path, rng, 150)

    def reserve_one() -> int:  # the next id goes to a writer that has not committed yet
        known = int(catalog.embedding_ids("m", "s")[1].max())
        with catalog.engine.begin() as conn:
            conn.execute(text("UPDATE sqlite_sequence SET seq = :s WHERE name = 'embeddings'"), {"s": known + 1})
        return known + 1

    late = reserve_one()
    _bulk(catalog, 150, unit(rng.normal(size=(1, 8))))  # the other writer commits first
    manager.sync()
    rewritten = unit(rng.normal(size=(1, 8)))[0]
    with catalog.engine.begin() as conn:  # the first writer's rewrite of asset 3 lands now
        conn.execute(text("DELETE FROM embeddings WHERE asset_id = 3"))
        conn.execute(
            text("INSERT INTO embeddings (id, asset_id, model_id, space, dim, vector) VALUES (:i, 3, 'm', 's', 8, :v)"),
            {"i": late, "v": rewritten.astype("<f4").tobytes()},
        )
    manager.sync()
    assert manager.search(rewritten, 3).ids.tolist() == _truth(catalog, rewritten, 3)

    late = reserve_one()
    _bulk(catalog, 151, unit(rng.normal(size=(1, 8))))
    manager.sync()
    added = unit(rng.normal(size=(1, 8)))[0]
    _bulk(catalog, 152, [added])
    with catalog.engine.begin() as conn:  # a late new asset...
        conn.execute(text("UPDATE embeddings SET id = :i WHERE asset_id = 153"), {"i": late})
    catalog.remove([7])  # ...and a delete that balances the count
    manager.sync()
    live = manager._snapshot()
    assert live is not None and 153 in live.ids and 7 not in live.ids
    assert manager.search(added, 3).ids.tolist() == _truth(catalog, added, 3)


def test_an_index_from_an_earlier_version_is_rebuilt_once(tmp_path):
    """Before migration 0008 a row id could be handed out again, so (asset id, row id) cannot prove a
    vector unchanged in a generation written then: it is rebuilt from the catalog, once."""
    rng = np.random.default_rng(12)
    catalog, manager = _synced(tmp_path, rng, 120)
    live = manager._current()
    assert live is not None
    (live / "FORMAT").unlink()  # as an earlier version left it
    stale = unit(rng.normal(size=(1, 8)))[0]
    np.load(live / "vectors.npy", mmap_mode="r+")[0] = stale  # a vector the catalog no longer has
    assert manager.sync()["added"] == 120  # every vector read again
    assert (manager._current() / "FORMAT").exists()
    assert manager.sync() == {"added": 0, "removed": 0, "total": 120}
    assert manager.search(stale, 3).ids.tolist() == _truth(catalog, stale, 3)


def test_a_failed_write_leaves_no_partial_folder(tmp_path, monkeypatch):
    rng = np.random.default_rng(13)
    catalog, manager = _synced(tmp_path, rng, 150)
    _bulk(catalog, 150, unit(rng.normal(size=(3, 8))))

    def full_disk(self, path):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(HnswIndex, "save", full_disk)
    monkeypatch.setattr(manager, "_can_layer", lambda *a: False)  # force a full generation
    with pytest.raises(OSError):
        manager.sync()
    assert not list((tmp_path / "idx").rglob("tmp-*"))
    monkeypatch.undo()
    assert manager.sync()["total"] == 153


def test_search_many_keeps_going_when_the_graph_walk_finds_too_few(monkeypatch):
    """The all-pairs duplicates job queries every vector: one query that hnswlib cannot answer in
    full (deleted look-alikes around it) must not stop the job; that row comes back shorter."""
    rng = np.random.default_rng(14)
    vectors = unit(rng.normal(size=(300, 8)))
    index = HnswIndex(8)
    index.upsert(np.arange(1, 301), vectors)
    real = index._index.knn_query
    calls = {"n": 0}

    class Flaky:
        def __getattr__(self, name):
            return getattr(index._index_real, name)

        def knn_query(self, data, k=1, **kwargs):
            calls["n"] += 1
            if len(data) > 1 or (np.allclose(data[0], vectors[5]) and k > 3):
                raise RuntimeError("Cannot return the results in a contiguous 2D array")
            return real(data, k=k, **kwargs)

    index._index_real = index._index
    index._index = Flaky()
    ids, scores = index.search_many(vectors[:10], 5)
    assert (ids[[0, 1, 2, 3, 4, 6, 7, 8, 9]] >= 1).all()  # every other row in full
    assert ids[5, 0] == 6 and (ids[5, 3:] == -1).all() and np.isinf(scores[5, 3:]).all()  # 3 found, 2 missing
