"""`visualsearch models` end to end, with tiny models of every family on a fake Hub (127.0.0.1).

The fake Hub serves tiny randomly initialised models under the curated models' real
repo ids, so these runs take the same path as a user's `models use siglip2-base`:
list -> download with progress -> (killed, resumed) -> re-embed -> search -> switch back,
through the CLI (subprocesses) and REST (a live server), and offline afterwards.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.support.fakehub import FakeHub
from tests.support.live import LiveServer, free_port
from tests.support.tiny_models import (
    build_tiny_clip,
    build_tiny_multilingual_openclip,
    build_tiny_openclip,
    build_tiny_siglip2,
    build_tiny_siglip2_naflex,
)
from visualsearch.api import create_app
from visualsearch.config import Settings
from visualsearch.models import hub, load_embedder, zoo
from visualsearch.models.clip import HFClipEmbedder, OpenClipEmbedder, write_openclip_config

pytestmark = pytest.mark.slow  # model loading, CLI subprocesses, a live server

EXE = [sys.executable, "-m", "visualsearch"]
DEFAULT = zoo.DEFAULT_NAME
REPOS = {
    "clip-vit-b32-openai": build_tiny_clip,
    "siglip2-base": build_tiny_siglip2,
    "clip-vit-b32-laion2b": build_tiny_openclip,
    "clip-vit-b32-multilingual": build_tiny_multilingual_openclip,
}


@pytest.fixture(scope="module")
def fake_hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    for name, build in REPOS.items():
        card = zoo.BY_NAME[name]
        if "text_repo" in card.extra:
            build(root / card.repo, root / card.extra["text_repo"])
        else:
            build(root / card.repo)
    server = FakeHub(root).start()
    yield server
    server.stop()


def run(*args, env, check=True, timeout=300):
    proc = subprocess.run([*EXE, *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


@pytest.mark.parametrize("name", list(REPOS))
def test_every_family_loads_from_the_store_and_embeds(name, fake_hub, tmp_path, monkeypatch):
    """Transformers CLIP, SigLIP2 and OpenCLIP: downloaded, loaded offline from the folder, consistent vectors."""
    monkeypatch.setenv("HF_ENDPOINT", fake_hub.url)
    card = zoo.BY_NAME[name]
    with pytest.raises(Exception, match=f"run `visualsearch models use {name}`"):
        load_embedder(name, tmp_path)
    hub.download(hub.plan_download(card), tmp_path)
    before = len(fake_hub.log)
    model = load_embedder(name, tmp_path)
    assert model.model_id.startswith(card.model_id + "@")  # the Hub revision is part of the id
    images = [Image.new("L", (50, 40), 90), Image.new("RGBA", (64, 80), (255, 0, 0, 128)), Image.new("RGB", (9, 300))]
    vectors = model.encode_images(images)["semantic"]
    assert vectors.shape == (3, model.spaces["semantic"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    alone = model.encode_images(images[1:2])["semantic"]
    np.testing.assert_allclose(alone[0], vectors[1], atol=1e-5)  # an image's vector does not depend on its batch
    texts = model.embed_texts(["a photo of a cat at night", "dog"])
    np.testing.assert_allclose(model.embed_texts(["dog"])[0], texts[1], atol=1e-5)  # nor a text's (SigLIP padding)
    assert len(fake_hub.log) == before  # loading read the folder, not the network

    # The image tower in ONNX Runtime (exported once into the cache) gives the same vectors as PyTorch.
    cls = HFClipEmbedder if card.loader == "hf-clip" else OpenClipEmbedder
    folder = hub.model_dir(tmp_path, name)
    spec = str(folder) if card.loader == "hf-clip" else f"local-dir:{folder}"
    in_onnx = cls(spec, None, runtime="onnx", cache_dir=tmp_path)  # type: ignore[call-arg]
    np.testing.assert_allclose(in_onnx.encode_images(images)["semantic"], vectors, atol=1e-4)
    assert in_onnx._session is not None and model._session is None
    assert list((tmp_path / "onnx").glob("clip-image-*.onnx"))


def test_siglip2_naflex_patches_go_through_pytorch(tmp_path):
    """NaFlex inputs (patches, mask, shapes) reach the model whole; the image tower stays in PyTorch."""
    model = HFClipEmbedder(str(build_tiny_siglip2_naflex(tmp_path / "naflex")), cache_dir=tmp_path)
    images = [Image.new("L", (50, 40), 90), Image.new("RGB", (300, 9), (0, 90, 200))]
    vectors = model.encode_images(images)["semantic"]
    assert vectors.shape == (2, model.spaces["semantic"]) and model._session is None
    np.testing.assert_allclose(model.encode_images(images[1:])["semantic"][0], vectors[1], atol=1e-5)
    texts = model.embed_texts(["A photo of a cat at night", "dog"])
    np.testing.assert_allclose(model.embed_texts(["dog"])[0], texts[1], atol=1e-5)


def test_openclip_weights_without_a_config_get_the_built_in_one(tmp_path):
    """LAION's B/32 repo ships only weights: the built-in architecture and its preprocessing are written beside them."""
    write_openclip_config(tmp_path, "ViT-B-32", "laion2b_s34b_b79k")
    config = json.loads((tmp_path / "open_clip_config.json").read_text())
    assert config["model_cfg"]["embed_dim"] == 512 and config["model_cfg"]["vision_cfg"]["image_size"] == 224
    assert config["preprocess_cfg"]["interpolation"] == "bicubic"
    (tmp_path / "open_clip_config.json").unlink()
    (tmp_path / "config.json").write_text("{}")  # the text tower's config, downloaded beside the weights
    write_openclip_config(tmp_path, "xlm-roberta-base-ViT-B-32", "laion5b_s13b_b90k")
    text_cfg = json.loads((tmp_path / "open_clip_config.json").read_text())["model_cfg"]["text_cfg"]
    assert text_cfg["hf_model_name"] == text_cfg["hf_tokenizer_name"] == str(tmp_path)
    assert text_cfg["hf_model_pretrained"] is False


def said(proc) -> str:
    """What a command printed: results go to stdout, messages and progress to stderr."""
    return proc.stdout + proc.stderr


def _partial(cache, name):
    return hub.partial_bytes(cache, name)


def test_cli_use_killed_resumed_reembedded_offline_and_back(fake_hub, photos, tmp_path):
    cache = tmp_path / "cache"
    library = tmp_path / "library"
    env = dict(
        os.environ,
        HF_ENDPOINT=fake_hub.url,
        HF_HOME=str(tmp_path / "hf"),
        VISUALSEARCH_CACHE_DIR=str(cache),
        VISUALSEARCH_LIBRARY=str(library),
        COLUMNS="120",
    )
    folder = tmp_path / "pictures"
    folder.mkdir()
    for p in photos[:8]:
        (folder / p.name).write_bytes(p.read_bytes())
    run("index", folder, env=env)

    listed = {m["name"]: m for m in json.loads(run("models", "list", "--json", env=env).stdout)}
    assert listed[DEFAULT]["active"] and listed[DEFAULT]["installed"]
    assert not listed["clip-vit-b32-laion2b"]["installed"]
    table = said(run("models", "list", env=env))
    assert "clip-vit-b32-laion2b" in table and "39.3" in table and "in use" in table

    # A slow line, and the download is killed part-way (as a closed laptop or kill -9 would).
    name = "clip-vit-b32-laion2b"
    fake_hub.rate = 300_000
    proc = subprocess.Popen([*EXE, "models", "use", name], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _partial(cache, name) < 1_000_000:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = _partial(cache, name)
    assert kept >= 1_000_000
    listed = {m["name"]: m for m in json.loads(run("models", "list", "--json", env=env).stdout)}
    assert listed[name]["partial_bytes"] >= kept and not listed[name]["installed"]
    assert "partial" in said(run("models", "list", env=env))

    fake_hub.rate = 0
    fake_hub.log.clear()
    done = run("models", "use", name, env=env)
    assert "downloaded and is now the library's model" in said(done)
    assert re.search(rf"downloading {name} .* 3\.3/3\.3 MB", said(done)), said(done)  # the progress bar, in bytes
    assert f"searches now use {name}" in said(done), said(done)
    resumed = fake_hub.requests("open_clip_model.safetensors")
    assert resumed and all("range=bytes=" in line for line in resumed if line.startswith("GET")), resumed

    status = json.loads(run("status", "--json", env=env).stdout)
    assert status["model"] == name and status["indexed"] == 8
    hits = json.loads(run("search", "a red car", "-n", "3", "--json", env=env).stdout)
    assert len(hits) == 3

    # The network is gone: the installed model still loads and searches; `use` needs nothing.
    offline = dict(env, HF_HUB_OFFLINE="1", HF_ENDPOINT=f"http://127.0.0.1:{free_port()}")  # nothing listens
    fake_hub.log.clear()
    assert len(json.loads(run("search", "a red car", "-n", "3", "--json", env=offline).stdout)) == 3
    again = run("models", "use", name, "--no-reembed", env=offline)
    assert "downloading" not in said(again) and f"{name} is now the library's model" in said(again)
    failed = run("models", "use", "siglip2-base", env=offline, check=False)
    assert failed.returncode == 1 and "HF_HUB_OFFLINE" in said(failed)
    assert "Traceback" not in failed.stderr and fake_hub.log == []

    # Back to the bundled model, which needs no download; then the old one can go.
    refused = run("models", "remove", name, env=env, check=False)
    assert refused.returncode == 1 and "library's model" in said(refused)
    back = run("models", "use", DEFAULT, env=env)
    assert f"searches now use {DEFAULT}" in said(back)
    assert json.loads(run("status", "--json", env=env).stdout)["model"] == DEFAULT
    assert "removed" in said(run("models", "remove", name, env=env))
    assert not hub.model_dir(cache, name).exists()

    pinned = run("models", "use", name, env=dict(env, VISUALSEARCH_MODEL=DEFAULT), check=False)
    assert pinned.returncode == 1 and "VISUALSEARCH_MODEL" in said(pinned)
    unknown = run("models", "use", "clip-vit-huge", env=env, check=False)
    assert unknown.returncode == 1 and "no model named 'clip-vit-huge'" in said(unknown)


def _wait_job(api, job_id, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def test_rest_use_downloads_reembeds_and_switches(fake_hub, embedder, image_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", fake_hub.url)
    monkeypatch.setenv("VISUALSEARCH_CACHE_DIR", str(tmp_path / "cache"))

    def loader(name):  # the bundled default is the session's loaded copy; the rest load for real
        return embedder if name == DEFAULT else load_embedder(name, tmp_path / "cache")

    settings = Settings.from_env(tmp_path / "lib", folder_roots=(tmp_path,))
    app = create_app(settings, loader=loader, require_keys=False)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as api:
        server.wait_ready()
        indexing = api.post("/api/folders", json={"path": str(image_folder)})
        assert _wait_job(api, indexing.json()["id"])["status"] == "done"
        before = api.get("/api/models").json()
        assert before["active"] == before["requested"] == DEFAULT and before["job"] is None
        assert {m["name"] for m in before["models"]} >= set(REPOS)

        assert api.post("/api/models/use", json={"name": "nope"}).status_code == 404
        fake_hub.rate = 200_000  # a slow line: search while the download runs
        started = api.post("/api/models/use", json={"name": "siglip2-base"})
        assert started.status_code == 202, started.text
        during = api.get("/api/models").json()
        assert during["job"]["kind"] == "model" and during["downloading"] == "siglip2-base"
        hits = api.post("/api/search", json={"text": "a dog", "limit": 3}).json()
        assert len(hits["items"]) == 3 and hits["model_id"] == embedder.model_id  # the old model serves
        job = _wait_job(api, started.json()["id"])
        fake_hub.rate = 0
        assert job["status"] == "done" and job["kind"] == "model" and job["done"] == job["total"] > 200_000
        deadline = time.monotonic() + 120
        while (state := api.get("/api/models").json())["active"] != "siglip2-base":
            assert time.monotonic() < deadline, state
            time.sleep(0.3)
        assert state["requested"] == "siglip2-base" and state["model_change"] is None
        row = next(m for m in state["models"] if m["name"] == "siglip2-base")
        assert row["installed"] and row["active"] and row["disk_bytes"] > 200_000
        stats = api.get("/api/stats").json()
        assert stats["model_id"].startswith(zoo.BY_NAME["siglip2-base"].model_id + "@")
        hits = api.post("/api/search", json={"text": "a dog", "limit": 3}).json()
        assert len(hits["items"]) == 3 and hits["model_id"] == stats["model_id"]

        back = api.post("/api/models/use", json={"name": DEFAULT})
        assert _wait_job(api, back.json()["id"])["status"] == "done"
        deadline = time.monotonic() + 60
        while api.get("/api/models").json()["active"] != DEFAULT:
            assert time.monotonic() < deadline
            time.sleep(0.3)


def test_rest_use_is_refused_when_the_settings_pin_the_model(embedder, tmp_path):
    app = create_app(Settings.from_env(tmp_path / "lib"), embedder=embedder, require_keys=False)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as api:
        server.wait_ready()
        assert api.get("/api/models").json()["pinned"] is True
        refused = api.post("/api/models/use", json={"name": "siglip2-base"})
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "model_pinned"


def test_rest_use_needs_an_admin_key(embedder, tmp_path):
    app = create_app(Settings.from_env(tmp_path / "lib"), embedder=embedder, require_keys=True)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as api:
        server.wait_ready()
        assert api.post("/api/models/use", json={"name": "siglip2-base"}).status_code == 401


def test_unreachable_hub_fails_the_job_with_the_reason(embedder, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("VISUALSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    app = create_app(Settings.from_env(tmp_path / "lib"), loader=lambda name: embedder, require_keys=False)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as api:
        server.wait_ready()
        job = _wait_job(api, api.post("/api/models/use", json={"name": "mobileclip2-s2"}).json()["id"])
        assert job["status"] == "failed" and "cannot reach the model hub" in job["error"]
        assert api.get("/api/models").json()["requested"] == DEFAULT


def test_a_chosen_model_that_is_not_downloaded_is_reported_not_a_500(tmp_path, monkeypatch):
    monkeypatch.setenv("VISUALSEARCH_CACHE_DIR", str(tmp_path / "empty-cache"))
    settings = Settings.from_env(tmp_path / "lib", model="clip-vit-b32-openai")
    app = create_app(settings, require_keys=False)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as api:
        listed = api.get("/api/models")
        assert listed.status_code == 200, listed.text
        assert "not downloaded yet: run `visualsearch models use clip-vit-b32-openai`" in listed.json()["model_error"]
        refused = api.post("/api/search", json={"text": "a dog"})
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "model_not_installed"
    cli = run(
        "status",
        "--library",
        tmp_path / "lib",
        env=dict(os.environ, VISUALSEARCH_MODEL="clip-vit-b32-openai"),
        check=False,
    )
    assert cli.returncode == 1 and "not downloaded yet" in said(cli) and "Traceback" not in said(cli)


def test_new_weights_under_the_same_name_get_their_own_vectors(tmp_path, monkeypatch):
    """A new Hub revision is a new model id: its vectors never mix with the old revision's."""
    root = tmp_path / "hub"
    build_tiny_clip(root / "openai" / "clip-vit-base-patch32", seed=0)
    server = FakeHub(root).start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    try:
        card = zoo.BY_NAME["clip-vit-b32-openai"]
        hub.download(hub.plan_download(card), tmp_path / "cache")
        first = load_embedder(card.name, tmp_path / "cache").model_id
        build_tiny_clip(root / "openai" / "clip-vit-base-patch32", seed=1)  # the repo gets new weights
        hub.download(hub.plan_download(card), tmp_path / "cache")
        second = load_embedder(card.name, tmp_path / "cache").model_id
    finally:
        server.stop()
    assert first != second and first.split("@")[0] == second.split("@")[0] == card.model_id
