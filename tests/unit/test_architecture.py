"""The declared seams hold: backends by name behind one Protocol, frozen records out of the
catalog, test doubles that are real models, and the layer contract itself."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support.embedders import TinyEmbedder
from tests.support.images import solid
from visualsearch.catalog import Asset, Catalog
from visualsearch.config import Settings
from visualsearch.errors import ConfigError
from visualsearch.index import BACKENDS, IndexBackend, open_backend
from visualsearch.index.manager import IndexManager
from visualsearch.models import Embedder
from visualsearch.services import Library

REPO = Path(__file__).resolve().parents[2]


def test_the_test_model_is_a_real_embedder():
    model = TinyEmbedder()
    assert isinstance(model, Embedder)
    assert model.image_preprocessor() is None  # the contract's default, no getattr needed


def test_backends_are_chosen_by_name_and_implement_the_protocol(tmp_path):
    settings = Settings.from_env(tmp_path / "lib")
    catalog = Catalog(settings.catalog_path)
    try:
        assert set(BACKENDS) == {"local", "pgvector", "milvus"}
        local = open_backend(catalog, settings, "m", "visual")  # auto on SQLite = local files
        assert isinstance(local, IndexManager) and isinstance(local, IndexBackend)
        settings.vector_backend = "pgvector"
        with pytest.raises(ConfigError, match="PostgreSQL"):
            open_backend(catalog, settings, "m", "visual")
    finally:
        catalog.close()


def test_the_catalog_hands_out_frozen_records(tmp_path):
    folder = tmp_path / "pics"
    folder.mkdir()
    solid((200, 0, 0)).save(folder / "red.png")
    lib = Library(Settings.from_env(tmp_path / "lib", decode_workers=0), embedder=TinyEmbedder())
    try:
        lib.index_folder(folder)
        [asset] = lib.catalog.get_many([1]).values()
        assert isinstance(asset, Asset) and asset.name == "red.png"
        with pytest.raises(dataclasses.FrozenInstanceError):
            asset.name = "changed"  # type: ignore[misc]
        lib.catalog.set_tags(asset.id, ["Warm"])
        assert lib.catalog.with_tags([asset])[0].tags == ("warm",)
        job = lib.catalog.jobs.add("j1", "folder", {"path": "/x"})
        assert dataclasses.is_dataclass(job) and job.status == "queued"
        hits = lib.similarity_index.search(np.ones(12, np.float32) / np.sqrt(12), 1)
        assert hits.ids.tolist() == [asset.id]
    finally:
        lib.close()


def test_the_layer_contract_is_kept():
    """import-linter reads the contract from pyproject.toml; an upward import fails this test."""
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "2 kept, 0 broken" in proc.stdout
