"""The Milvus adapter, tested against Milvus Lite (the same client API as a Milvus cluster)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.support.embedders import TinyEmbedder
from tests.support.images import gradient_image, solid
from visualsearch.catalog import AssetFilter
from visualsearch.config import Settings
from visualsearch.services import Library, SearchService

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
