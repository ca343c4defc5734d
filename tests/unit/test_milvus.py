"""The Milvus adapter, tested against Milvus Lite (the same client API as a Milvus cluster)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tests.support.embedders import TinyEmbedder
from tests.support.images import gradient_image, solid
from visualsearch.catalog import AssetFilter, Catalog, ImageRecord
from visualsearch.config import Settings
from visualsearch.index import milvus
from visualsearch.index.base import FilteringBackend
from visualsearch.models import ATTRIBUTES
from visualsearch.models.attributes import DIM as attributes_dim
from visualsearch.models.attributes import attributes
from visualsearch.services import Library, SearchService
from visualsearch.services.assets import AssetService

pytestmark = pytest.mark.slow  # Milvus Lite

try:
    import pymilvus  # noqa: F401
except ImportError:
    if os.environ.get("CI"):
        raise
    pytest.skip("pymilvus / milvus-lite are not installed (scripts/setup test)", allow_module_level=True)


@pytest.fixture
def milvus_library(tmp_path):
    folder = tmp_path / "pics"
    folder.mkdir()
    for i in range(8):
        gradient_image(i).save(folder / f"g{i}.png")
    for name, rgb in {"red": (250, 5, 5), "green": (5, 220, 5), "blue": (5, 5, 240)}.items():
        solid(rgb).save(folder / f"{name}.jpg")
    lib = Library(
        Settings.from_env(tmp_path / "lib", vector_backend="milvus", decode_workers=1), embedder=TinyEmbedder()
    )
    lib.index_folder(folder)
    yield lib, folder
    lib.close()


def _exact(lib, query, k, allow=None):
    exact = lib.similarity_index.exact()
    return exact.search(query, k, allow=allow)


def test_milvus_answers_like_exact_search(milvus_library):
    lib, _ = milvus_library
    index = lib.similarity_index.index()
    assert index.kind == "milvus" and len(index) == 11
    engine = SearchService(lib)
    red = engine.text("red", limit=3)
    assert red[0].source.endswith("red.jpg") and red[0].score > 0.99
    exact = lib.similarity_index.exact()
    for row in range(len(exact)):
        q = np.asarray(exact.vectors[row])
        got = index.search(q, 5)
        want = exact.search(q, 5)
        assert got.ids.tolist() == want.ids.tolist()
        assert np.allclose(got.scores, want.scores, atol=1e-4)
    similar = engine.similar_to_asset(1, limit=4)
    assert 1 not in [r.asset_id for r in similar] and len(similar) == 4


def test_milvus_filters_during_the_search(milvus_library):
    lib, _ = milvus_library
    engine = SearchService(lib)
    jpegs = engine.text("red", limit=5, filters=AssetFilter(format="JPEG"))
    assert sorted(r.source.rsplit("/", 1)[1] for r in jpegs) == ["blue.jpg", "green.jpg", "red.jpg"]
    only = engine.similar_to_asset(1, limit=5, filters=AssetFilter(q="green"))
    assert [r.source.rsplit("/", 1)[1] for r in only] == ["green.jpg"]


def test_milvus_follows_the_catalog_incrementally(milvus_library):
    lib, folder = milvus_library
    manager = lib.similarity_index
    assert manager.sync() == {"added": 0, "removed": 0, "total": 11}
    (folder / "red.jpg").unlink()
    solid((250, 250, 0)).save(folder / "yellow.jpg")
    lib.index_folder(folder, prune=True)
    index = manager.index()
    assert len(index) == 11
    sources = {a.id: a.source for a in lib.catalog.list_assets(AssetFilter(), 100)}
    top = SearchService(lib).text("red", limit=11)
    names = [r.source.rsplit("/", 1)[1] for r in top]
    assert "red.jpg" not in names and "yellow.jpg" in names and len(names) == 11
    assert all(r.asset_id in sources for r in top)
    # Duplicates work on this backend too (they read vectors through the same manager).
    from visualsearch.duplicates import find_duplicates

    assert isinstance(find_duplicates(lib.catalog, lib.similarity_index), list)


# -- filters evaluated inside Milvus (scalar fields) -------------------------------------------

#: Folder names that break a naive expression or LIKE pattern: wildcards, quotes, a backslash,
#: an attempt to add expression syntax, non-ASCII.
FOLDERS = ["100%_done", "100x_done", 'say "cheese"', "it's", "back\\slash", 'x" or id >= 0 or source == "', "été", "g"]
HOSTILE_TAG = 'a") or (id >= 0'


@pytest.fixture
def tricky_library(tmp_path):
    """Images in folders with awkward names, indexed one folder at a time (distinct added times),
    some of them tagged through the service the API uses."""
    root = tmp_path / "pics"
    lib = Library(
        Settings.from_env(tmp_path / "lib", vector_backend="milvus", decode_workers=1), embedder=TinyEmbedder()
    )
    seed = 0
    for name in FOLDERS:
        folder = root / name
        folder.mkdir(parents=True)
        for _ in range(3):
            gradient_image(seed).save(folder / f"g{seed}.png")
            seed += 1
        solid((seed * 40 % 256, 90, 200)).save(folder / f"s{seed}.jpg")
        lib.index_folder(folder)
    assets = AssetService(lib)
    for asset_id in range(1, 33, 3):
        assets.set_tags(asset_id, ["Holiday", HOSTILE_TAG, 'q"uote\\'])
    lib.sync_indexes()
    _tags_in_milvus(lib)
    yield lib, root
    lib.close()


def _tags_in_milvus(lib: Library) -> None:
    """Tag conditions in Milvus even on Milvus Lite (which the product leaves to the allowed ids: slow there)."""
    for space in lib.embedder.spaces:
        lib.indexes(space).tags_in_milvus = True


@pytest.fixture
def expressions(tricky_library, monkeypatch):
    """Every filter expression the Milvus client is asked to search with."""
    client = tricky_library[0].similarity_index.client
    seen: list[str] = []
    real = client.search

    def spy(*args, **kwargs):
        seen.append(kwargs.get("filter", ""))
        return real(*args, **kwargs)

    monkeypatch.setattr(client, "search", spy)
    return seen


def _filters(lib, root) -> list[AssetFilter]:
    added = sorted(a.added_at for a in lib.catalog.list_assets(AssetFilter(), 100))
    middle = added[len(added) // 2]
    folders = [AssetFilter(prefix=f"{root / name}/") for name in FOLDERS]
    return [
        *folders,
        AssetFilter(prefix=f"{root}/100"),  # both 100... folders
        AssetFilter(prefix=f"{root}/100%"),  # only "100%_done": % is no wildcard
        AssetFilter(prefix=f"{root}/100_"),  # nothing: _ is no wildcard
        AssetFilter(prefix=f"{root}/back\\"),  # a trailing backslash cannot escape the closing quote
        AssetFilter(prefix=f'{root}/x" or id >= 0'),
        AssetFilter(format="png"),
        AssetFilter(format="JPEG"),
        AssetFilter(tag="HOLIDAY "),
        AssetFilter(tag=HOSTILE_TAG),
        AssetFilter(tag='q"uote\\'),
        AssetFilter(tag="nobody"),
        AssetFilter(added_after=middle),  # the boundary itself is in (>=)
        AssetFilter(added_before=middle),  # and out (<)
        AssetFilter(added_after=middle.replace(tzinfo=None) - timedelta(seconds=1)),  # naive = UTC
        AssetFilter(prefix=f"{root / 'g'}/", tag="holiday"),
        AssetFilter(format="png", added_after=added[5], added_before=added[20]),
    ]


def test_filters_run_inside_milvus_with_the_catalogs_results(tricky_library, expressions):
    lib, root = tricky_library
    manager = lib.similarity_index
    assert isinstance(manager, FilteringBackend)
    exact = manager.exact()
    for flt in _filters(lib, root):
        allowed = lib.catalog.filter_ids(flt)
        for row in (0, 7, 20):
            query = np.asarray(exact.vectors[row])
            expressions.clear()
            got = manager.search_where(query, 6, filters=flt)
            [expr] = expressions
            assert expr and "id in" not in expr, (flt, expr)
            by_ids = manager.search(query, 6, allow=allowed)
            truth = exact.search(query, 6, allow=allowed)
            assert got.ids.tolist() == by_ids.ids.tolist() == truth.ids.tolist(), (flt, expr)
            assert np.allclose(got.scores, truth.scores, atol=1e-4)
        if flt.prefix and "or id >= 0" in flt.prefix:
            assert len(allowed) == 4 and len(got.ids) == 4  # the hostile folder's own images, no more
    # Excluded ids are left out as before.
    flt = AssetFilter(format="png")
    got = manager.search_where(np.asarray(exact.vectors[0]), 5, exclude={1, 2}, filters=flt)
    assert 1 not in got.ids and 2 not in got.ids and len(got.ids) == 5


def test_the_search_service_filters_inside_milvus(tricky_library, expressions):
    lib, root = tricky_library
    engine = SearchService(lib)
    only = engine.similar_to_asset(1, limit=10, filters=AssetFilter(prefix=f"{root}/100%_done/"))
    assert {r.source.rsplit("/", 2)[1] for r in only} == {"100%_done"} and len(only) == 3
    assert expressions and all("id in" not in e for e in expressions)
    tagged = engine.text("red", limit=50, filters=AssetFilter(tag="holiday"))
    assert sorted(r.asset_id for r in tagged) == list(range(1, 33, 3))
    assert "array_contains(tags" in expressions[-1]
    # q (a case-insensitive substring) is not something Milvus can state: the allowed ids are used.
    found = engine.text("red", limit=5, filters=AssetFilter(q="CHEESE"))
    assert {r.source.rsplit("/", 2)[1] for r in found} == {'say "cheese"'}
    assert expressions[-1].startswith("id in [")


def test_milvus_lite_leaves_tag_conditions_to_the_allowed_ids(milvus_library, monkeypatch):
    lib, _ = milvus_library
    manager = lib.similarity_index
    assert milvus.is_lite(manager.uri) and not manager.tags_in_milvus
    assert not milvus.is_lite("http://milvus:19530")
    lib.catalog.set_tags(2, ["x"])
    seen: list[str] = []
    real = manager.client.search
    monkeypatch.setattr(manager.client, "search", lambda *a, **kw: seen.append(kw["filter"]) or real(*a, **kw))
    query = np.asarray(manager.exact().vectors[0])
    assert manager.search_where(query, 3, filters=AssetFilter(tag="x")).ids.tolist() == [2]
    assert seen == ["id in [2]"]
    manager.search_where(query, 3, filters=AssetFilter(format="png"))
    assert seen[-1] == 'format == "PNG"'


def test_a_tag_edit_is_searchable_at_once(tricky_library, expressions):
    lib, _ = tricky_library
    manager = lib.similarity_index
    engine, assets = SearchService(lib), AssetService(lib)
    assert 2 not in [r.asset_id for r in engine.similar_to_asset(1, limit=50, filters=AssetFilter(tag="holiday"))]
    # The API's path: set the tags, nothing syncs the index; the next filtered search sees the edit.
    assets.set_tags(2, ["holiday"])
    assets.set_tags(4, [])
    found = [r.asset_id for r in engine.similar_to_asset(1, limit=50, filters=AssetFilter(tag="holiday"))]
    assert 2 in found and 4 not in found
    assert sorted(found) == sorted(set(lib.catalog.filter_ids(AssetFilter(tag="holiday")).tolist()) - {1})
    assert "array_contains(tags" in expressions[-1]
    rows = {r["id"]: r["tags"] for r in manager.client.query(manager.collection, ids=[2, 4], output_fields=["tags"])}
    assert rows == {2: ["holiday"], 4: []}
    # Once caught up, a tag filter costs one catalog aggregate, not a sync.
    syncs = []
    real = manager._sync
    manager._sync = lambda progress: syncs.append(1) or real(progress)  # type: ignore[method-assign]
    engine.similar_to_asset(1, limit=5, filters=AssetFilter(tag="holiday"))
    assert syncs == []


def test_a_sync_rewrites_rows_whose_tags_changed(tricky_library):
    lib, _ = tricky_library
    manager = lib.similarity_index
    lib.catalog.set_tags(5, ["sunset"])
    assert manager.sync() == {"added": 1, "removed": 0, "total": 32}  # the vector did not change, its tags did
    [row] = manager.client.query(manager.collection, ids=[5], output_fields=["tags", "source", "format", "added_at"])
    asset = lib.catalog.get(5)
    assert row["tags"] == ["sunset"] and row["source"] == asset.source and row["format"] == asset.format.upper()
    assert row["added_at"] == milvus.epoch_micros(asset.added_at)
    assert manager.sync() == {"added": 0, "removed": 0, "total": 32}


def test_a_collection_without_the_filter_fields_is_rebuilt(tricky_library, expressions):
    lib, root = tricky_library
    old = lib.similarity_index
    client, name = old.client, old.collection
    # What an earlier version left: a quick-setup collection (id and vector only) and its state files.
    client.drop_collection(name)
    client.create_collection(name, dimension=12, metric_type="COSINE", auto_id=False, id_type="int")
    ids, seqs = lib.catalog.embedding_ids(old.model_id, old.space)
    client.upsert(
        name,
        [{"id": int(i), "vector": v.tolist()} for i, v in zip(*next(lib.catalog.vectors(old.model_id, old.space)))],
    )
    old.state_file.unlink()
    np.save(old.state_dir / "ids.npy", ids)
    np.save(old.state_dir / "seqs.npy", seqs)
    manager = milvus.MilvusManager(lib.catalog, old.uri, lib.settings.index_dir, old.model_id, old.space)
    query = np.asarray(manager.exact().vectors[0])
    flt = AssetFilter(prefix=f"{root / 'g'}/")
    truth = manager.exact().search(query, 3, allow=lib.catalog.filter_ids(flt)).ids.tolist()
    assert manager.search_where(query, 3, filters=flt).ids.tolist() == truth  # before the rebuild: by allowed ids
    assert expressions[-1].startswith("id in [")
    assert manager.sync() == {"added": 32, "removed": 0, "total": 32}
    assert {"source", "format", "added_at", "tags"} <= {f["name"] for f in client.describe_collection(name)["fields"]}
    assert not (manager.state_dir / "ids.npy").exists()
    expressions.clear()
    assert manager.search_where(query, 3, filters=flt).ids.tolist() == truth
    assert "id in" not in expressions[-1]


def test_a_released_collection_is_loaded_again(tricky_library):
    """Milvus Lite opens every collection released: a restarted server must load it before searching."""
    lib, _ = tricky_library
    old = lib.similarity_index
    old.client.release_collection(old.collection)
    manager = milvus.MilvusManager(lib.catalog, old.uri, lib.settings.index_dir, old.model_id, old.space)
    assert len(manager.search(np.asarray(manager.exact().vectors[0]), 3).ids) == 3


def test_rows_that_do_not_fit_send_filters_to_the_allowed_ids(tricky_library, expressions, monkeypatch):
    lib, _ = tricky_library
    manager = lib.similarity_index
    monkeypatch.setattr(milvus, "MAX_TAGS", 2)
    lib.catalog.set_tags(3, ["a", "b", "c"])
    manager.sync()
    flt = AssetFilter(tag="c")
    got = manager.search_where(np.asarray(manager.exact().vectors[0]), 5, filters=flt)
    assert got.ids.tolist() == [3] and expressions[-1] == "id in [3]"
    lib.catalog.set_tags(3, ["a"])
    manager.sync()
    manager.search_where(np.asarray(manager.exact().vectors[0]), 5, filters=flt)
    assert expressions[-1] == 'array_contains(tags, "c")'


def test_expressions_cannot_be_broken_out_of():
    assert milvus.string_literal('a"b\\') == '"a\\"b\\\\"'
    assert milvus.string_literal("line\nbreak") is None  # control characters: allowed-id path
    assert milvus.milvus_expression(AssetFilter(prefix="/p\x00/")) is None
    assert milvus.milvus_expression(AssetFilter(q="x")) is None
    assert milvus.milvus_expression(AssetFilter(format="png", status="failed")) is None
    assert milvus.milvus_expression(AssetFilter(format="png", status=None)) == 'format == "PNG"'
    expr = milvus.milvus_expression(
        AssetFilter(tag=' Beach") or (id >= 0 ', added_after=datetime(2026, 1, 1, 1, tzinfo=UTC))
    )
    assert expr == 'added_at >= 1767229200000000 and array_contains(tags, "beach\\") or (id >= 0")'
    assert milvus.epoch_micros(datetime(1970, 1, 1, 0, 0, 0, 1)) == 1


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_tag_digests_in_sql_and_python_agree(dialect, tmp_path, request):
    url = str(tmp_path / "c.db") if dialect == "sqlite" else request.getfixturevalue("postgres_url")
    catalog = Catalog(url)
    vec = {"visual": np.ones(4, np.float32)}
    catalog.write_batch(
        [(ImageRecord(f"/p/{i}.jpg", f"{i:064x}", 1, 1, "JPEG", 1, 0.0), vec) for i in range(40)], [], "m"
    )
    for i in range(1, 41):
        catalog.set_tags(i, ["even" if i % 2 == 0 else "odd", "all"] + (["x"] if i % 7 == 0 else []))
    digests = Catalog.tag_digests(catalog.tag_snapshot())
    assert set(digests) == {"even", "odd", "all", "x"}
    for tag, digest in digests.items():
        assert catalog.tag_digest(tag) == digest
    assert catalog.tag_digest("none") == (0, 0, 0)
    before = catalog.tag_digest("x")
    catalog.set_tags(14, ["even", "all"])
    catalog.set_tags(15, ["odd", "all", "x"])  # same count, other asset
    assert catalog.tag_digest("x") != before
    catalog.close()


class ColourEmbedder(TinyEmbedder):
    """TinyEmbedder with the colour-and-light space, so text queries with colour words take the
    two-index path (SearchService._fused)."""

    model_id = "tiny-colour-test-model"
    spaces = {**TinyEmbedder.spaces, ATTRIBUTES: attributes_dim}

    def encode_images(self, images):
        out = super().encode_images(images)
        crops = np.stack([np.asarray(im.convert("RGB").resize((64, 64))) for im in images])
        return {**out, ATTRIBUTES: attributes(crops)}


def test_colour_queries_filter_inside_milvus_like_the_local_index(tmp_path, monkeypatch):
    folder = tmp_path / "pics"
    for name in FOLDERS[:4]:
        (folder / name).mkdir(parents=True)
        for i, rgb in enumerate([(250, 5, 5), (200, 40, 30), (5, 5, 240), (10, 200, 10)]):
            solid(rgb, (40 + i, 30)).save(folder / name / f"s{i}.{'png' if i % 2 else 'jpg'}")
    libs = {}
    for backend in ("milvus", "local"):
        settings = Settings.from_env(tmp_path / backend, vector_backend=backend, decode_workers=1)
        libs[backend] = lib = Library(settings, embedder=ColourEmbedder())
        lib.index_folder(folder / FOLDERS[0])
        lib.index_folder(folder)
        AssetService(lib).set_tags(3, ["warm"])
    _tags_in_milvus(libs["milvus"])
    client = libs["milvus"].text_index.client
    seen: list[str] = []
    real = client.search
    monkeypatch.setattr(client, "search", lambda *a, **kw: seen.append(kw.get("filter", "")) or real(*a, **kw))
    for flt in [
        AssetFilter(prefix=f"{folder / FOLDERS[0]}/"),
        AssetFilter(prefix=f"{folder}/100%"),
        AssetFilter(format="png"),
        AssetFilter(tag="warm"),
    ]:
        seen.clear()
        got, want = (
            [(r.asset_id, r.score) for r in SearchService(libs[b]).text("red", limit=5, filters=flt)]
            for b in ("milvus", "local")
        )
        assert got == want and got, flt
        assert len(seen) >= 2 and not any(e.startswith("id in") for e in seen[:2]), seen  # both indexes
    for lib in libs.values():
        lib.close()
