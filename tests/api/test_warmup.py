"""The server says ready only once the model has run: the first query costs what the next ones do."""

from __future__ import annotations

import time

import httpx

from tests.support.embedders import TinyEmbedder
from tests.support.live import LiveServer
from visualsearch.api import create_app
from visualsearch.config import Settings


class CountingEmbedder(TinyEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.texts = 0

    def embed_texts(self, texts):
        self.texts += 1
        return super().embed_texts(texts)


def test_ready_means_both_model_paths_have_run(tmp_path):
    model = CountingEmbedder()
    app = create_app(Settings.from_env(tmp_path / "lib"), embedder=model, require_keys=False)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as api:
        deadline = time.monotonic() + 30
        while api.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.05)
        # Before any request: the warm-up ran an image and a text through the model.
        assert model.calls >= 1 and model.texts >= 1
        calls = model.calls
        r = api.post("/api/search", json={"text": "red"})
        assert r.status_code == 200 and model.calls == calls
