"""Words in pictures (OCR) through the REST API over HTTP and the page in headless Chromium.

A live server with text reading on (VISUALSEARCH_OCR) and the tiny test model indexes a folder
of repository photos, one with a rendered shop sign, and takes an upload with another sign:
both are read by the real reader (the upload by a background job). A search for the sign's words
returns that picture first with the matched words (`words`), the explanation carries the text read, and the page shows
"Shows “…”" on the card at desktop and phone sizes. Screenshots: test-artifacts/screenshots/ocr-*.png.
"""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

import pytest

from tests.support.embedders import TinyEmbedder
from tests.support.live import LiveServer
from tests.support.paths import TEST_PHOTOS
from tests.support.signs import with_sign
from tests.support.web import open_page
from tests.web import test_web as web
from tests.web.test_query_syntax_page import DESKTOP, PHONE, visual_search, wait_results
from tests.web.test_web import shot, sync_api
from visualsearch.api import create_app
from visualsearch.config import Settings

browser = web.browser
pytestmark = pytest.mark.slow  # Chromium, a live server and the real text reader
expect = sync_api.expect


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root: Path = tmp_path_factory.mktemp("ocr")
    folder = root / "pictures"
    folder.mkdir()
    for name in ("cat-chelsea.jpg", "yellow-flower.jpg", "wooden-planks.jpg"):
        shutil.copy(TEST_PHOTOS / name, folder / name)
    with_sign("coffee-cup.jpg", "FRESH BAKERY").save(folder / "shop.jpg")
    settings = Settings.from_env(root / "lib", ocr=True, decode_workers=0)
    app = create_app(settings, embedder=TinyEmbedder(), require_keys=False)
    app.state.server.library.index_folder(folder)
    with LiveServer(app) as live:
        live.wait_ready()
        yield live


def test_the_api_finds_pictures_by_the_words_in_them(server):
    with server.client() as api:
        sign = io.BytesIO()
        with_sign("orange-flower.jpg", "FLOWER MARKET").save(sign, "JPEG")
        added = api.post("/api/assets", files=[("files", ("market.jpg", sign.getvalue(), "image/jpeg"))])
        assert added.status_code in (200, 201), added.text
        # its words are read by a background job, not while the request waits
        jobs = api.get("/api/jobs").json()
        assert any(j["kind"] == "read_text" for j in jobs)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(j["status"] in ("done", "failed") for j in api.get("/api/jobs").json()):
                break
            time.sleep(0.2)
        assert all(j["status"] == "done" for j in api.get("/api/jobs").json() if j["kind"] == "read_text")
        out = api.post("/api/search", json={"text": "fresh bakery", "explain": True, "limit": 5}).json()
        first = out["items"][0]
        assert first["asset"]["name"] == "shop.jpg" and first["words"] == ["fresh", "bakery"]
        assert first["why"]["text"] == "FRESH BAKERY"
        assert out["close_matches"] in (None, True)
        assert all(item["words"] == [] for item in out["items"][1:])
        market = api.post("/api/search", json={"text": "market", "limit": 3}).json()["items"][0]
        assert market["asset"]["name"] == "market.jpg" and market["words"] == ["market"]

        def score(text: str) -> float:
            items = api.post("/api/search", json={"text": text, "limit": 10}).json()["items"]
            return next(i["score"] for i in items if i["asset"]["name"] == "market.jpg")

        # a left-out word read in the picture takes half the word weight off (the tiny model reads
        # "orange -market" as "orange")
        assert score("orange -market") == pytest.approx(score("orange") - 0.25, abs=1e-4)


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_page_shows_the_words_read_in_a_result(browser, server, size):
    with open_page(browser, server.url + "/", viewport=size) as page:
        visual_search(page, "bakery")
        wait_results(page)
        first = page.locator(".card").first
        expect(first.locator(".name")).to_have_text("shop.jpg")
        expect(first.locator(".words")).to_have_text("Shows “bakery”")
        assert 'Text in the picture: "FRESH BAKERY"' in (first.get_attribute("data-why") or "")
        expect(page.locator(".card").nth(1).locator(".words")).to_have_count(0)
        box = first.locator(".words").bounding_box()
        card = first.bounding_box()
        assert box and card and box["x"] + box["width"] <= card["x"] + card["width"] + 1  # stays in its card
        shot(page, f"ocr-{size['width']}")
