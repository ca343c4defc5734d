"""Changing the model: re-embed in the background, search the old vectors until the new index is complete."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sqlalchemy import text

from tests.support.embedders import TinyEmbedder
from tests.support.images import make_folder, solid
from tests.support.live import LiveServer
from visualsearch.api import create_app
from visualsearch.config import Settings
from visualsearch.services import Library, SearchService, reembed_library


class TinyV2(TinyEmbedder):
    """A different model: the same quadrant colours, in another order, so vectors differ."""

    model_id = "tiny-test-model-v2"

    def encode_images(self, images):
        out = super().encode_images(images)
        v = out["semantic"][:, ::-1].copy()
        return {"semantic": v, "visual": v}

    def embed_texts(self, texts):
        return super().embed_texts(texts)[:, ::-1].copy()


class SlowV2(TinyV2):
    """TinyV2 taking its time, so the test can search while re-embedding runs."""

    def encode_images(self, images):
        time.sleep(0.3)
        return super().encode_images(images)


MODELS = {"tiny-a": TinyEmbedder, "tiny-b": TinyV2, "tiny-slow": SlowV2}


def loader(name):
    return MODELS[name]()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def database_url(request):
    """The same tests on the embedded catalog and on PostgreSQL + pgvector."""
    return None if request.param == "sqlite" else request.getfixturevalue("postgres_url")


def open_library(tmp_path, model: str, **kwargs) -> Library:
    settings = Settings.from_env(tmp_path / "lib", model=model, batch_size=4, decode_workers=1, **kwargs)
    return Library(settings, loader=loader)


def vector_count(lib: Library, model_id: str) -> int:
    with lib.catalog.engine.connect() as c:
        return c.execute(
            text("select count(*) from embeddings where model_id = :m and space = 'visual'"), {"m": model_id}
        ).scalar()


def test_model_change_reembeds_while_search_keeps_the_old_vectors(tmp_path, database_url):
    folder = make_folder(tmp_path / "pics")
    old = open_library(tmp_path, "tiny-a", database_url=database_url)
    old.index_folder(folder)
    before = [(r.asset_id, round(r.score, 5)) for r in SearchService(old).text("red", limit=10)]
    old.close()

    lib = open_library(tmp_path, "tiny-b", database_url=database_url)
    change = lib.model_change()
    assert (change.from_model, change.to_model, change.done, change.total) == (
        "tiny-test-model",
        "tiny-test-model-v2",
        0,
        10,
    )
    assert lib.embedder.model_id == "tiny-test-model"  # searches stay on the complete old vectors

    # Interrupted after the first batch: the batch is kept, searches still use the old model.
    lib.requested_embedder.fail_after = 1
    with pytest.raises(KeyboardInterrupt):
        reembed_library(lib)
    assert lib.model_change().done == 4
    assert vector_count(lib, "tiny-test-model-v2") == 4
    assert [(r.asset_id, round(r.score, 5)) for r in SearchService(lib).text("red", limit=10)] == before

    # A picture added meanwhile is embedded with the old model, so it is found at once.
    solid((250, 5, 5), (60, 30)).save(folder / "new-red.png")
    report = lib.index_folder(folder)
    assert report.indexed == 1
    assert "new-red.png" in [r.source.rsplit("/", 1)[-1] for r in SearchService(lib).text("red", limit=3)]

    lib.requested_embedder.fail_after = None
    report = reembed_library(lib)
    assert report.switched and report.embedded == 7 and report.failed == 0
    assert lib.model_change() is None
    assert lib.embedder.model_id == "tiny-test-model-v2"
    assert vector_count(lib, "tiny-test-model-v2") == 11
    assert vector_count(lib, "tiny-test-model") == 11  # old vectors stay: switching back is instant

    # Searches now run on the new model's vectors: scores are the new model's cosines.
    results = SearchService(lib).text("red", limit=11)
    assert len(results) == 11
    query = TinyV2().embed_texts(["red"])[0]
    for r in results[:3]:
        assert r.score == pytest.approx(
            float(lib.catalog.vector(r.asset_id, "tiny-test-model-v2", "semantic") @ query), abs=1e-5
        )

    # Another process opening the library (or already running) sees the switch.
    other = (
        open_library(tmp_path / "other-host", "tiny-b", database_url=database_url)
        if database_url
        else open_library(tmp_path, "tiny-b")
    )
    assert other.model_change() is None and other.embedder.model_id == "tiny-test-model-v2"
    lib.close()
    other.close()


def test_unreadable_files_are_reported_and_do_not_block_the_switch(tmp_path):
    folder = make_folder(tmp_path / "pics", n=6)
    old = open_library(tmp_path, "tiny-a")
    old.index_folder(folder)
    old.close()
    (folder / "img03.png").unlink()  # gone from disk since it was indexed
    lib = open_library(tmp_path, "tiny-b")
    report = reembed_library(lib)
    assert report.switched and report.embedded == 5 and report.failed == 1
    assert "img03.png" in report.failures[0][0]
    assert reembed_library(lib).embedded == 0  # nothing left to do
    lib.close()


def test_nothing_pending_is_a_no_op(tmp_path):
    lib = open_library(tmp_path, "tiny-a")
    lib.index_folder(make_folder(tmp_path / "pics", n=3))
    assert lib.model_change() is None
    report = reembed_library(lib)
    assert (report.embedded, report.switched) == (0, False)
    lib.close()


def test_server_reembeds_in_the_background(tmp_path):
    folder = make_folder(tmp_path / "pics")
    old = open_library(tmp_path, "tiny-a")
    old.index_folder(folder)
    old.close()

    settings = Settings.from_env(tmp_path / "lib", model="tiny-slow", batch_size=4, decode_workers=1)
    with LiveServer(create_app(settings, loader=loader, require_keys=False)) as live:
        live.wait_ready()
        api = live.client()
        deadline = time.monotonic() + 60
        searched_during = 0
        while True:
            jobs = [j for j in api.get("/api/jobs").json() if j["kind"] == "reembed"]
            if jobs and jobs[0]["status"] == "done":
                break
            # While it runs, search works and answers from the old model's complete index.
            body = api.post("/api/search", json={"text": "red", "limit": 20}).json()
            if body["model_id"] == "tiny-test-model":
                assert len(body["items"]) == 10
                searched_during += 1
                stats = api.get("/api/stats").json()
                change = stats["model_change"]  # None only once the switch has happened
                assert (
                    change is None
                    and stats["model_id"] == "tiny-test-model-v2"
                    or change["to_model"] == "tiny-test-model-v2"
                ), stats
            assert time.monotonic() < deadline, jobs
            time.sleep(0.05)
        assert searched_during >= 2
        assert jobs[0]["done"] == 10 and jobs[0]["failed"] == 0
        stats = api.get("/api/stats").json()
        assert stats["model_id"] == "tiny-test-model-v2" and stats["model_change"] is None
        response = api.post("/api/search", json={"text": "red", "limit": 20})
        assert response.status_code == 200, response.text
        found = response.json()["items"]
        assert len(found) == 10
        query = TinyV2().embed_texts(["red"])[0]
        top = found[0]
        expected = np.asarray(TinyV2().encode_images([solid((255, 0, 0), (40, 30))])["semantic"][0]) @ query
        assert top["score"] == pytest.approx(float(expected), abs=1e-3)
