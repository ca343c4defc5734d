"""Model downloads against a fake Hub on 127.0.0.1: verified, resumable, clear when they fail."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from tests.support.fakehub import FakeHub
from tests.support.live import free_port
from visualsearch.models import hub
from visualsearch.models.zoo import CARDS, ModelCard

CARD = ModelCard(
    name="test-model",
    family="test",
    loader="hf-clip",
    dim=16,
    download_mb=1,
    languages="English",
    coco_r1=None,
    flickr_r1=None,
    source="openclip",
    pick="tests",
    repo="test-org/test-model",
    files=(("config.json",), ("model.safetensors", "pytorch_model.bin")),
    optional=(("tokenizer.json",), ("vocab.json",)),
)
WEIGHTS = os.urandom(3 * hub.CHUNK + 12_345)  # an "LFS" file: checked by sha256


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    repo = tmp_path / "hub" / "test-org" / "test-model"
    repo.mkdir(parents=True)
    (repo / "config.json").write_text(json.dumps({"model_type": "clip"}))  # small: checked by its git blob id
    (repo / "model.safetensors").write_bytes(WEIGHTS)
    (repo / "pytorch_model.bin").write_bytes(b"a pickle we must not fetch")
    (repo / "tokenizer.json").write_text("{}")
    (repo / "flax_model.msgpack").write_bytes(b"not needed")
    server = FakeHub(tmp_path / "hub").start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    yield server
    server.stop()


def test_downloads_only_the_files_a_loader_needs_and_verifies_them(fake_hub, tmp_path):
    plan = hub.plan_download(CARD)
    assert [f.dest for f in plan.files] == ["config.json", "model.safetensors", "tokenizer.json"]
    weights = plan.files[1]
    assert weights.sha256 == hashlib.sha256(WEIGHTS).hexdigest() and weights.size == len(WEIGHTS)
    seen = []
    folder = hub.download(plan, tmp_path / "cache", lambda done, total, name: seen.append((done, total)))
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS
    assert not (folder / "pytorch_model.bin").exists() and not (folder / "flax_model.msgpack").exists()
    assert seen[-1] == (plan.total, plan.total) and all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))
    manifest = hub.installed_manifest(tmp_path / "cache", "test-model")
    assert manifest is not None and manifest["revision"] == plan.revision
    assert not (folder / hub.PARTIAL).exists()


def test_an_interrupted_download_resumes_where_it_stopped(fake_hub, tmp_path):
    cache = tmp_path / "cache"
    plan = hub.plan_download(CARD)
    part = hub.model_dir(cache, "test-model") / hub.PARTIAL / "model.safetensors.part"
    part.parent.mkdir(parents=True)
    kept = 2 * hub.CHUNK + 7
    part.write_bytes(WEIGHTS[:kept])  # what a killed run left behind
    assert hub.partial_bytes(cache, "test-model") == kept
    hub.download(plan, cache)
    assert (hub.model_dir(cache, "test-model") / "model.safetensors").read_bytes() == WEIGHTS
    gets = fake_hub.requests("GET /test-org/test-model/resolve/")
    assert f"range=bytes={kept}-" in " ".join(gets)
    assert not any("model.safetensors range=None" in line for line in gets)  # never from byte 0


def test_a_damaged_file_is_refused_deleted_and_fetched_again(fake_hub, tmp_path):
    cache = tmp_path / "cache"
    plan = hub.plan_download(CARD)
    part = hub.model_dir(cache, "test-model") / hub.PARTIAL / "model.safetensors.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 1000)  # not the start of the real file
    with pytest.raises(hub.ModelDownloadError, match="damaged"):
        hub.download(plan, cache)
    assert not part.exists() and hub.installed_manifest(cache, "test-model") is None
    hub.download(plan, cache)
    assert hub.installed_manifest(cache, "test-model") is not None


def test_a_repo_without_the_weights_is_refused_before_downloading(fake_hub, tmp_path):
    (fake_hub.root / "test-org" / "test-model" / "model.safetensors").unlink()
    (fake_hub.root / "test-org" / "test-model" / "pytorch_model.bin").unlink()
    with pytest.raises(hub.ModelDownloadError, match="has none of model.safetensors, pytorch_model.bin"):
        hub.plan_download(CARD)


def test_an_unknown_repo_says_so(fake_hub):
    card = ModelCard(**{**CARD.__dict__, "repo": "test-org/missing"})
    with pytest.raises(hub.ModelDownloadError, match="test-org/missing was not found"):
        hub.plan_download(card)


def test_no_network_is_one_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises(hub.ModelDownloadError, match="cannot reach the model hub .* resumes"):
        hub.plan_download(CARD)


def test_remove_deletes_the_model_folder(fake_hub, tmp_path):
    cache = tmp_path / "cache"
    hub.download(hub.plan_download(CARD), cache)
    assert hub.disk_bytes(cache, "test-model") > len(WEIGHTS)
    assert hub.remove_model(cache, "test-model") and not hub.model_dir(cache, "test-model").exists()
    assert not hub.remove_model(cache, "test-model")


def test_curated_cards_are_complete():
    names = [c.name for c in CARDS]
    assert len(names) == len(set(names)) and names[0] == "conse-efficientnet-lite0-minilm"
    families = {c.loader for c in CARDS}
    assert families == {"bundled", "hf-clip", "open_clip"}
    for c in CARDS[1:]:
        assert c.repo and c.files and c.dim > 0 and c.download_mb > 0 and c.coco_r1
    assert any(c.languages.startswith("multilingual") for c in CARDS)


def test_an_openclip_model_without_the_extra_is_refused_before_downloading(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "open_clip" else real(name, *a))
    from visualsearch.models import zoo

    assert "scripts/setup clip" in (zoo.missing_extra(zoo.BY_NAME["mobileclip2-s2"]) or "")
    assert zoo.missing_extra(zoo.BY_NAME["siglip2-base"]) is None


def test_a_server_sending_more_than_the_listed_size_is_stopped(fake_hub, tmp_path):
    """A hostile or broken hub cannot fill the disk: bytes beyond the listed size stop the download."""
    import dataclasses

    plan = hub.plan_download(CARD)
    short = [dataclasses.replace(f, size=hub.CHUNK) if f.dest == "model.safetensors" else f for f in plan.files]
    with pytest.raises(hub.ModelDownloadError, match="larger than the 1,048,576 bytes"):
        hub.download(dataclasses.replace(plan, files=tuple(short)), tmp_path / "cache")
    part = hub.model_dir(tmp_path / "cache", "test-model") / hub.PARTIAL / "model.safetensors.part"
    assert part.stat().st_size <= hub.CHUNK


def test_a_model_larger_than_the_free_disk_is_refused_before_downloading(fake_hub, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(hub.ModelDownloadError, match="needs 0.0 GB more disk space .* 0.0 GB are free"):
        hub.download(hub.plan_download(CARD), tmp_path / "cache")
    assert not fake_hub.requests("resolve/")


def test_one_download_or_removal_of_a_model_at_a_time(fake_hub, tmp_path):
    cache = tmp_path / "cache"
    plan = hub.plan_download(CARD)
    with hub.model_lock(cache, "test-model", "test"):  # as another process downloading it would hold it
        with pytest.raises(hub.ModelDownloadError, match="being downloaded by another process"):
            hub.download(plan, cache)
    hub.download(plan, cache)
    with hub.model_lock(cache, "test-model", "test"):
        with pytest.raises(hub.ModelDownloadError, match="wait for it to finish before you remove it"):
            hub.remove_model(cache, "test-model")
    assert hub.installed_manifest(cache, "test-model") is not None


@pytest.mark.parametrize("path", ["../x.json", "/etc/passwd", "a/../../b", "C:\\\\x", "a\\\\..\\\\b", ""])
def test_files_with_unsafe_names_from_a_hub_are_refused(path):
    with pytest.raises(hub.ModelDownloadError, match="unsafe name"):
        hub._safe_dest(path)
    assert hub._safe_dest("text/config.json") == "text/config.json"


def test_a_local_write_error_is_not_called_a_network_problem(fake_hub, tmp_path):
    cache = tmp_path / "cache"
    hub.store_dir(cache).mkdir(parents=True)
    hub.model_dir(cache, "test-model").write_text("a file where the model's folder should be")
    with pytest.raises(hub.ModelDownloadError, match="cannot write test-model's files") as error:
        hub.download(hub.plan_download(CARD), cache)
    assert "reach" not in str(error.value)
