"""`visualsearch serve` as users start it: a subprocess with the real bundled model, over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.live import free_port

pytestmark = pytest.mark.slow  # `visualsearch serve` subprocesses, the real model

EXE = [sys.executable, "-m", "visualsearch"]


def cli(*args, check=True):
    proc = subprocess.run([*EXE, *map(str, args)], capture_output=True, text=True, timeout=300, env=dict(os.environ))
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


class Served:
    def __init__(self, library, *extra):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(Path(library).parent / f"serve-{self.port}.log", "w+")
        self.proc = subprocess.Popen(
            [*EXE, "serve", "--library", str(library), "--port", str(self.port), "--log-level", "warning", *extra],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ),
        )

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()

    def wait_ready(self, timeout=180):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.output()}")
            try:
                if httpx.get(f"{self.url}/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError("server not ready in time")

    def stop(self) -> str:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.output()


@pytest.fixture(scope="module")
def served(tmp_path_factory, photos, embedder):
    """A real server on a library indexed through the API (folder job) from real photos."""
    root = tmp_path_factory.mktemp("serve")
    folder = root / "pictures"
    folder.mkdir()
    for p in photos:
        shutil.copy(p, folder / p.name.lower())
    server = Served(root / "library", "--folder-root", str(root))
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=120) as api:
            job = api.post("/api/folders", json={"path": str(folder)}).json()
            deadline = time.monotonic() + 300
            while job["status"] not in ("done", "failed") and time.monotonic() < deadline:
                time.sleep(0.3)
                job = api.get(job["status_url"]).json()
            assert job["status"] == "done" and job["done"] == len(photos), job
        yield server, folder
    finally:
        server.stop()


def test_local_mode_is_announced(served):
    server, _ = served
    out = " ".join(server.output().split())
    assert "Local single-user mode: no API key needed, because the server only listens on 127.0.0.1" in out


def test_real_model_text_image_and_asset_search_over_http(served, photos):
    server, folder = served
    with httpx.Client(base_url=server.url, timeout=120) as api:
        stats = api.get("/api/stats").json()
        assert stats["indexed"] == len(photos) and stats["model_id"].startswith("conse-efficientnet-lite0")
        hits = api.post("/api/search", json={"text": "a ladybug on a leaf", "limit": 3}).json()["items"]
        assert hits[0]["asset"]["name"] == "ladybird-on-leaf.jpg", hits
        car = folder / "sports-car-drawing.jpg"
        r = api.post("/api/search/image", files={"file": (car.name, car.read_bytes(), "image/jpeg")})
        top = r.json()["items"][0]
        assert top["asset"]["name"] == car.name and top["score"] > 0.99
        similar = api.get("/api/search", params={"asset_id": top["asset_id"], "limit": 3}).json()["items"]
        assert top["asset_id"] not in [h["asset_id"] for h in similar] and len(similar) == 3


def test_serve_refuses_a_public_address_without_keys(tmp_path):
    proc = cli("serve", "--host", "0.0.0.0", "--library", tmp_path / "lib", check=False)
    assert proc.returncode != 0 and "refusing to listen on 0.0.0.0 without API keys" in proc.stderr


def test_keys_cli_create_list_revoke_and_a_keyed_server(tmp_path):
    lib = tmp_path / "lib"
    created = json.loads(cli("keys", "create", "scripts", "--role", "admin", "--library", lib, "--json").stdout)
    assert created["key"].startswith("vs_") and created["role"] == "admin"
    listing = json.loads(cli("keys", "list", "--library", lib, "--json").stdout)
    assert [k["name"] for k in listing] == ["scripts"] and created["key"] not in json.dumps(listing)
    assert cli("keys", "create", "x", "--role", "root", "--library", lib, check=False).returncode != 0

    server = Served(lib)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{server.url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert httpx.get(f"{server.url}/api/assets").status_code == 401
        ok = httpx.get(f"{server.url}/api/assets", headers={"Authorization": f"Bearer {created['key']}"})
        assert ok.status_code == 200
        cli("keys", "revoke", str(created["id"]), "--library", lib)
        gone = httpx.get(f"{server.url}/api/assets", headers={"Authorization": f"Bearer {created['key']}"})
        assert gone.status_code == 401
    finally:
        err = server.stop()
    assert "API keys required (1 active)" in err
