"""Knowing when nothing matches, through the page and the API: "No close matches; showing the nearest N".

The server runs the tiny test model with a cut-off set (a real model's comes from
benchmarks/nomatch.py): it knows only red, green and blue, so "red" has a close match (the red
picture scores 1.0) and "purple" has none (every picture scores about the same).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.embedders import TinyEmbedder
from tests.support.images import solid
from tests.support.live import LiveServer
from tests.support.web import open_page
from tests.web import test_web as web
from tests.web.test_query_syntax_page import COLOURS, visual_search, wait_results
from tests.web.test_web import sync_api
from visualsearch.api import create_app
from visualsearch.config import Settings

browser = web.browser
pytestmark = pytest.mark.slow  # Chromium and a live server
expect = sync_api.expect


class CalibratedTiny(TinyEmbedder):
    match_thresholds = (0.99, 0.3)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root: Path = tmp_path_factory.mktemp("no-match")
    folder = root / "pictures"
    folder.mkdir()
    for name, colour in COLOURS.items():
        solid(colour, (60, 45)).save(folder / f"{name}.png")
    app = create_app(Settings.from_env(root / "lib"), embedder=CalibratedTiny(), require_keys=False)
    app.state.server.library.index_folder(folder)
    with LiveServer(app) as live:
        live.wait_ready()
        yield live


def test_the_api_says_whether_anything_matches(server):
    with server.client() as api:
        red = api.post("/api/search", json={"text": "red"}).json()
        assert red["close_matches"] is True and red["note"] is None
        purple = api.post("/api/search", json={"text": "purple", "limit": 5}).json()
        assert purple["close_matches"] is False and purple["note"] == "No close matches; showing the nearest 5"
        assert len(purple["items"]) == 5  # the nearest are still there, ranked
        like = api.post("/api/search", json={"text": "purple", "asset_id": red["items"][0]["asset_id"]}).json()
        assert like["close_matches"] is None  # starting from an image: not judged


@pytest.mark.parametrize("size", [{"width": 1280, "height": 800}, {"width": 360, "height": 740}])
def test_the_page_says_no_close_matches(browser, server, size):
    with open_page(browser, server.url + "/", viewport=size) as page:
        visual_search(page, "purple")
        wait_results(page)
        expect(page.locator("#summary")).to_contain_text("No close matches; showing the nearest")
        visual_search(page, "red")
        wait_results(page)
        expect(page.locator("#summary")).not_to_contain_text("No close matches")
        first = page.locator(".card").first  # each match says why, on hover
        assert first.get_attribute("data-why") == "Matches: red 1.00"
        assert first.locator(".thumb").get_attribute("title") == "Matches: red 1.00"
        expect(page.locator("#summary")).to_contain_text("best first")
