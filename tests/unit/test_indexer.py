"""Indexing a folder: idempotent, resumable, prunes on request, records failures."""

from __future__ import annotations

import os
import threading

import pytest
from PIL import Image

from tests.support.catalog import alembic_head
from tests.support.images import make_folder, solid
from visualsearch.catalog import AssetFilter, Catalog
from visualsearch.services import AssetService, SearchService


def rows(lib) -> int:
    with lib.catalog.engine.connect() as c:
        return c.exec_driver_sql("select count(*) from assets").scalar()


def test_index_then_search(tiny_library, tmp_path):
    folder = make_folder(tmp_path / "pics")
    report = tiny_library.index_folder(folder)
    assert (report.indexed, report.failed, report.unchanged) == (10, 0, 0)
    results = SearchService(tiny_library).text("red", limit=3)
    assert [r.source.endswith(("img00.png", "img05.png")) for r in results[:2]] == [True, True]
    assert [r.rank for r in results] == [1, 2, 3]


def test_reindex_is_idempotent(tiny_library, tmp_path):
    folder = make_folder(tmp_path / "pics")
    tiny_library.index_folder(folder)
    calls = tiny_library.embedder.calls
    report = tiny_library.index_folder(folder)
    assert (report.indexed, report.unchanged) == (0, 10)
    assert tiny_library.embedder.calls == calls  # nothing re-embedded
    assert rows(tiny_library) == 10


def test_changed_and_new_files_are_picked_up(tiny_library, tmp_path):
    folder = make_folder(tmp_path / "pics")
    tiny_library.index_folder(folder)
    solid((0, 0, 0), (50, 50)).save(folder / "img03.png")
    os.utime(folder / "img03.png", (1, 1_000_000))
    solid((9, 9, 9)).save(folder / "new.png")
    report = tiny_library.index_folder(folder)
    assert (report.indexed, report.unchanged) == (2, 9)
    assert rows(tiny_library) == 11
    asset = next(a for a in tiny_library.catalog.get_many(range(1, 20)).values() if a.source.endswith("img03.png"))
    assert (asset.width, asset.height) == (50, 50)


def test_prune_only_when_asked(tiny_library, tmp_path):
    folder = make_folder(tmp_path / "pics")
    tiny_library.index_folder(folder)
    (folder / "img01.png").unlink()
    tiny_library.index_folder(folder)
    assert rows(tiny_library) == 10
    report = tiny_library.index_folder(folder, prune=True)
    assert report.pruned == 1 and rows(tiny_library) == 9
    results = SearchService(tiny_library).text("green", limit=20)
    assert all(not r.source.endswith("img01.png") for r in results)


def test_interrupted_run_keeps_committed_batches_and_resumes(tiny_library, tmp_path):
    folder = make_folder(tmp_path / "pics", n=10)
    tiny_library.embedder.fail_after = 2  # batches of 4: two commit, the third is interrupted
    with pytest.raises(KeyboardInterrupt):
        tiny_library.index_folder(folder)
    assert rows(tiny_library) == 8
    assert len(tiny_library.text_index.index()) == 8  # committed work is searchable at once

    tiny_library.embedder.fail_after = None
    report = tiny_library.index_folder(folder)
    assert (report.indexed, report.unchanged) == (2, 8)
    assert rows(tiny_library) == 10


def test_a_failed_catalog_write_stops_the_run_with_its_error_and_keeps_earlier_batches(
    tiny_library, tmp_path, monkeypatch
):
    """Batches are written in a thread beside the model: a write that fails must still stop the run
    with its own error, after the batches before it are committed, and progress counts written files."""
    folder = make_folder(tmp_path / "pics", n=13)
    catalog = tiny_library.catalog
    real_write, calls = catalog.write_batch, []

    def write_batch(*args, **kwargs):
        calls.append(threading.current_thread().name)
        if len(calls) == 3:
            raise OSError("disk full")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(catalog, "write_batch", write_batch)
    progress: list[int] = []
    with pytest.raises(OSError, match="disk full"):
        tiny_library.index_folder(folder, progress=lambda done, total: progress.append(done))
    assert rows(tiny_library) == 8 and progress == [4, 8]  # batches of 4: two landed, the third failed
    assert all(name.startswith("catalog-write") for name in calls)

    monkeypatch.setattr(catalog, "write_batch", real_write)
    report = tiny_library.index_folder(folder)
    assert (report.indexed, report.unchanged) == (5, 8) and rows(tiny_library) == 13


def test_bad_files_are_recorded_and_the_run_goes_on(tiny_library, tmp_path):
    folder = make_folder(tmp_path / "pics", n=3)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.txt").write_text("ignored: not an image extension")
    report = tiny_library.index_folder(folder)
    assert (report.indexed, report.failed, report.scanned) == (3, 2, 5)
    failures = {os.path.basename(a.source): a.error for a in tiny_library.catalog.failures()}
    assert set(failures) == {"broken.jpg", "empty.png"}
    assert "empty" in failures["empty.png"]
    # Failures are not retried on every run, unless asked or the file changes.
    assert tiny_library.index_folder(folder).failed == 0
    assert tiny_library.index_folder(folder, retry_failed=True).failed == 2


def test_similar_to_asset_leaves_the_asset_out(tiny_library, tmp_path):
    tiny_library.index_folder(make_folder(tmp_path / "pics"))
    results = SearchService(tiny_library).similar_to_asset(1, limit=20)
    assert 1 not in [r.asset_id for r in results]
    assert len(results) == 9
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)


def test_min_score(tiny_library, tmp_path):
    tiny_library.index_folder(make_folder(tmp_path / "pics"))
    results = SearchService(tiny_library).text("red", limit=20, min_score=0.99)
    assert results and all(r.score >= 0.99 for r in results)
    assert len(results) < 10


def test_catalog_migrations_are_idempotent(tmp_path):
    Catalog(tmp_path / "c.sqlite").close()
    catalog = Catalog(tmp_path / "c.sqlite")
    with catalog.engine.connect() as c:
        assert c.exec_driver_sql("select version_num from alembic_version").scalar() == alembic_head()
        assert c.exec_driver_sql("pragma journal_mode").scalar() == "wal"


def test_catalog_upgrades_an_older_schema_keeping_its_assets(tmp_path):
    from alembic import command
    from alembic.config import Config

    from visualsearch.catalog.store import MIGRATIONS_DIR, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0001")
        connection.exec_driver_sql(
            "insert into assets (source, added_at, updated_at, status) "
            "values ('/p/a.jpg', '2026-01-01', '2026-01-01', 'indexed')"
        )
    engine.dispose()
    catalog = Catalog(tmp_path / "old.sqlite")
    [asset] = catalog.list_assets(AssetFilter(), limit=10)
    assert asset.source == "/p/a.jpg" and asset.name is None
    assert catalog.set_tags(asset.id, ["  Beach ", "beach", "Sunset"]) == ["beach", "sunset"]
    assert catalog.count_assets(AssetFilter(tag="BEACH")) == 1
    catalog.close()


def test_previews_are_made_in_the_indexing_pass_and_backfilled_when_missing(tiny_library, tmp_path):
    folder = make_folder(tmp_path / "pics")
    tiny_library.index_folder(folder)
    assets = tiny_library.catalog.list_assets(AssetFilter(), limit=100)
    media = tiny_library.media
    assert assets and all(media.thumbnail_path(a.sha256).is_file() for a in assets)  # no decode on first view
    # A library indexed without them (older version, or the setting off) gets them filled in.
    for a in assets:
        media.thumbnail_path(a.sha256).unlink()
    tiny_library.settings.thumbnails_at_index = False
    extra = tmp_path / "more"
    extra.mkdir()
    solid((10, 200, 10), (300, 200)).save(extra / "late.png")
    tiny_library.index_folder(extra)
    [late] = tiny_library.catalog.list_assets(AssetFilter(q="late.png"), limit=5)
    assert not media.thumbnail_path(late.sha256).exists()
    made = AssetService(tiny_library).fill_thumbnails(threading.Event())
    assert made == len(assets) + 1
    with Image.open(media.thumbnail_path(late.sha256)) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) == 256
