"""Filters (folder, format, date, tag) on the SQLite and PostgreSQL catalogs: right ids, found by index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import insert, select, text, update

from tests.support.embedders import TinyEmbedder
from visualsearch.catalog import AssetFilter, Catalog, ImageRecord
from visualsearch.catalog.schema import AssetRow as Asset
from visualsearch.config import Settings
from visualsearch.models import l2_normalize
from visualsearch.services import Library, SearchService

SOURCES = [
    "/photos/a/1.jpg",
    "/photos/a/2.png",
    "/photos/a/sub/3.jpg",
    "/photos/ab/4.jpg",  # shares the prefix "/photos/a" but not the folder "/photos/a/"
    "/photos/100%_done/5.jpg",
    "/photos/100x_done/6.jpg",  # LIKE wildcards in a folder name
    "/photos/été/7.jpg",
    "/photos/été/\U0001f600.jpg",  # non-ASCII, beyond the BMP
    "/photos/b/8.JPG",
    "https://example.com/x/9.jpg",
]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def library(request, tmp_path):
    url = None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    lib = Library(Settings.from_env(tmp_path / "lib", database_url=url), embedder=TinyEmbedder())
    yield lib
    lib.close()


def fill(catalog: Catalog) -> np.ndarray:
    vectors = l2_normalize(np.random.default_rng(0).normal(size=(len(SOURCES), 16)).astype(np.float32))
    batch = [
        (
            ImageRecord(
                src,
                f"{i:064x}",
                10,
                10,
                "PNG" if src.endswith(".png") else "JPEG",
                100,
                0.0,
                tags=("holiday",) if i % 3 == 0 else (),
            ),
            {"semantic": vectors[i], "visual": vectors[i]},
        )
        for i, src in enumerate(SOURCES)
    ]
    catalog.write_batch(batch, [], "tiny-test-model")
    start = datetime(2026, 3, 1, tzinfo=UTC)
    with catalog.write_session() as s, s.begin():
        for i in range(len(SOURCES)):
            s.execute(update(Asset).where(Asset.source == SOURCES[i]).values(added_at=start + timedelta(days=i)))
    return vectors


def sources(catalog: Catalog, flt: AssetFilter) -> list[str]:
    ids = catalog.filter_ids(flt).tolist()
    with catalog.session() as s:
        return sorted(s.scalars(select(Asset.source).where(Asset.id.in_(ids))).all()) if ids else []


def test_filters_select_exactly_the_matching_assets(library):
    catalog = library.catalog
    fill(catalog)
    assert sources(catalog, AssetFilter(prefix="/photos/a/")) == sorted(SOURCES[:3])
    assert sources(catalog, AssetFilter(prefix="/photos/a")) == sorted(SOURCES[:4])
    assert sources(catalog, AssetFilter(prefix="/photos/100%_done/")) == [SOURCES[4]]
    assert sources(catalog, AssetFilter(prefix="/photos/été/")) == sorted(SOURCES[6:8])
    assert sources(catalog, AssetFilter(prefix="https://example.com/")) == [SOURCES[9]]
    assert sources(catalog, AssetFilter(prefix="/nowhere/")) == []
    assert sources(catalog, AssetFilter(format="png")) == [SOURCES[1]]
    start = datetime(2026, 3, 1, tzinfo=UTC)
    assert sources(
        catalog, AssetFilter(added_after=start + timedelta(days=2), added_before=start + timedelta(days=4))
    ) == sorted(SOURCES[2:4])
    assert sources(catalog, AssetFilter(tag="Holiday")) == sorted(SOURCES[i] for i in range(0, len(SOURCES), 3))
    assert sources(catalog, AssetFilter(prefix="/photos/", tag="holiday", format="JPEG")) == sorted(
        SOURCES[i] for i in (0, 3, 6)
    )


def test_filtered_search_returns_the_true_top_k_of_the_folder(library):
    vectors = fill(library.catalog)
    library.sync_indexes()
    results = SearchService(library).similar_to_asset(10, limit=5, filters=AssetFilter(prefix="/photos/a/"))
    truth = np.argsort(-(vectors[:3] @ vectors[9]))[:3] + 1
    assert [r.asset_id for r in results] == truth.tolist()


def test_folder_format_and_date_filters_use_an_index(library):
    """Without the composite indexes every filter walked the status index over the whole table."""
    catalog = library.catalog
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with catalog.write_session() as s, s.begin():  # 5,000 assets in 100 folders, 1% PNG, over 100 days
        s.execute(
            insert(Asset),
            [
                {
                    "source": f"/photos/f{i % 100:02d}/{i}.jpg",
                    "status": "indexed",
                    "format": "PNG" if i % 100 == 7 else "JPEG",
                    "added_at": start + timedelta(hours=i / 2),
                    "updated_at": start,
                }
                for i in range(5000)
            ],
        )
    if catalog.dialect == "postgresql":
        with catalog.engine.begin() as conn:
            conn.execute(text("ANALYZE assets"))
    day = datetime(2026, 2, 1, tzinfo=UTC)
    expected = {
        "prefix": "ix_assets_status_source",
        "format": "ix_assets_status_format",
        "date": "ix_assets_status_added_at",
    }
    filters = {
        "prefix": AssetFilter(prefix="/photos/f42/"),
        "format": AssetFilter(format="png"),
        "date": AssetFilter(added_after=day, added_before=day + timedelta(days=1)),
    }
    for name, flt in filters.items():
        sql = str(flt.apply(select(Asset.id)).compile(catalog.engine, compile_kwargs={"literal_binds": True}))
        with catalog.engine.begin() as conn:
            if catalog.dialect == "postgresql":
                plan = "\n".join(r[0] for r in conn.execute(text("EXPLAIN " + sql)))
            else:
                plan = "\n".join(str(r[-1]) for r in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
        if catalog.dialect == "postgresql" and name == "date":  # either serves a date range well
            assert "ix_assets_status_added_at" in plan or "ix_assets_added_at" in plan, plan
        else:
            assert expected[name] in plan, (name, plan)
