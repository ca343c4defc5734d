"""The PostgreSQL catalog with in-database vector search (pgvector), on a real server.

(The whole REST suite in test_api.py also runs against PostgreSQL.)
"""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

from tests.support.catalog import alembic_head
from tests.support.embedders import TinyEmbedder
from visualsearch.catalog import AssetFilter, Catalog, ImageRecord
from visualsearch.config import Settings
from visualsearch.models import l2_normalize
from visualsearch.services import Library, SearchService

pytestmark = pytest.mark.slow  # a real PostgreSQL server


def _fill(catalog: Catalog, n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = l2_normalize(rng.normal(size=(n, dim)).astype(np.float32))
    batch = []
    for i in range(n):
        record = ImageRecord(f"/p/{i:05d}.jpg", f"{i:064x}", 10, 10, "JPEG" if i % 100 else "PNG", 100, 0.0)
        batch.append((record, {"semantic": vectors[i], "visual": vectors[i]}))
        if len(batch) == 500:
            catalog.write_batch(batch, [], "tiny-test-model")
            batch = []
    if batch:
        catalog.write_batch(batch, [], "tiny-test-model")
    return vectors


@pytest.fixture
def pg_library(postgres_url, tmp_path):
    lib = Library(Settings.from_env(tmp_path / "lib", database_url=postgres_url), embedder=TinyEmbedder())
    yield lib
    lib.close()


def test_schema_has_pgvector_and_migrations_are_idempotent(postgres_url):
    Catalog(postgres_url).close()
    catalog = Catalog(postgres_url)
    with catalog.engine.connect() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar() == alembic_head()
        assert conn.execute(text("select extname from pg_extension where extname = 'vector'")).scalar() == "vector"
        assert (
            conn.execute(
                text(
                    "select data_type from information_schema.columns "
                    "where table_name = 'embeddings' and column_name = 'vec'"
                )
            ).scalar()
            == "USER-DEFINED"
        )
    assert catalog.in_database_vectors
    catalog.close()


def test_search_runs_in_the_database_with_an_hnsw_index(pg_library):
    vectors = _fill(pg_library.catalog, 2000)
    pg_library.sync_indexes()
    index = pg_library.similarity_index.index()
    assert index.kind == "pgvector-hnsw" and len(index) == 2000
    hits = index.search(vectors[123], 10)
    assert hits.ids[0] == 124 and hits.scores[0] == pytest.approx(1.0, abs=1e-5)  # asset ids start at 1
    exact = np.argsort(-(vectors @ vectors[123]))[:10] + 1
    assert len(set(hits.ids.tolist()) & set(exact.tolist())) >= 9
    with pg_library.catalog.engine.begin() as conn:
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                text(
                    "EXPLAIN SELECT asset_id FROM embeddings WHERE model_id = 'tiny-test-model' AND space = 'visual' "
                    "AND vec IS NOT NULL ORDER BY (vec::vector(16) <=> CAST(:q AS vector(16))) LIMIT 10"
                ),
                {"q": "[" + ",".join(["0.25"] * 16) + "]"},
            )
        )
    assert "ix_embeddings_hnsw_" in plan, plan


def test_filtered_search_in_sql_fills_the_page_from_a_one_percent_filter(pg_library):
    vectors = _fill(pg_library.catalog, 2000)
    pg_library.sync_indexes()
    engine = SearchService(pg_library)
    # format PNG is 1% of this library (every 100th asset)
    results = engine.similar_to_asset(5, limit=10, filters=AssetFilter(format="PNG"))
    assert len(results) == 10 and all(r.format == "PNG" for r in results)
    allowed = np.arange(0, 2000, 100)
    truth = allowed[np.argsort(-(vectors[allowed] @ vectors[4]))][:10] + 1
    assert [r.asset_id for r in results] == truth.tolist()


def test_two_processes_share_one_library(postgres_url, tmp_path):
    """Two Library objects (as two API servers on two hosts would be) see each other's writes at once."""
    one = Library(Settings.from_env(tmp_path / "a", database_url=postgres_url), embedder=TinyEmbedder())
    two = Library(Settings.from_env(tmp_path / "b", database_url=postgres_url), embedder=TinyEmbedder())
    vectors = _fill(one.catalog, 50)
    one.sync_indexes()
    results = SearchService(two).similar_to_asset(7, limit=3)  # asset 7 is vectors[6]
    exact = np.argsort(-(vectors @ vectors[6]))[1:4] + 1
    assert [r.asset_id for r in results] == exact.tolist()
    assert results[0].score == pytest.approx(float(vectors[exact[0] - 1] @ vectors[6]), abs=1e-5)
    one.close()
    two.close()


def test_read_text_is_found_by_word_and_by_the_start_of_a_word_in_postgres(postgres_url):
    """Prefix lookups compare words in code point order (COLLATE "C"), whatever the database's collation."""
    catalog = Catalog(postgres_url)
    records = [
        (ImageRecord(f"/pg/text-{i}.png", f"{i:064x}", 10, 10, "PNG", 1, None, text=t, reader="r1"), {})
        for i, t in enumerate(["DEBIANEDU 12", "Debian", "debían-art", "Zebra"])
    ]
    catalog.write_batch(records, [], "m")
    ids = {a.source: a.id for a in catalog.indexed_assets().values()}
    first, second, third, fourth = (ids[f"/pg/text-{i}.png"] for i in range(4))
    assert catalog.texts.matching(["debian"]) == {second: {"debian"}, third: {"debian"}}
    assert catalog.texts.matching(["debian"], prefix=True) == {first: {"debian"}, second: {"debian"}, third: {"debian"}}
    assert catalog.texts.matching(["12"]) == {first: {"12"}}
    assert catalog.texts.matching(["zeb"], prefix=True) == {fourth: {"zeb"}}
    digests = {a.id: a.sha256 for a in catalog.indexed_assets().values()}
    stored = catalog.texts.save([(fourth, "r2", "ZEBRA CROSSING"), (third, "r2", "gone")], {fourth: digests[fourth]})
    assert stored == 1 and catalog.texts.matching(["crossing"]) == {fourth: {"crossing"}}  # third: digest unknown
    catalog.remove([first])
    assert first not in catalog.texts.matching(["debian"], prefix=True)
    with catalog.engine.connect() as conn:  # the prefix range has an index in its own collation
        rows = conn.execute(text("select indexname, indexdef from pg_indexes where tablename = 'asset_words'"))
        indexes = {name: definition for name, definition in rows}
        assert 'COLLATE "C"' in indexes["ix_asset_words_word_c"]
        conn.execute(text("set enable_seqscan = off"))  # a tiny table: ask whether the index can serve at all
        prefix = "(word) COLLATE \"C\" >= 'deb' and (word) COLLATE \"C\" < 'dec'"
        plan = " ".join(r[0] for r in conn.execute(text(f"explain select asset_id from asset_words where {prefix}")))
        assert "ix_asset_words_word_c" in plan
    catalog.close()
