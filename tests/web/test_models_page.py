"""The Models view (/?view=models) in headless Chromium against a live server on 127.0.0.1.

The curated models from GET /api/models, the one in use, a switch (POST /api/models/use) and
what the page says when it cannot happen: a server whose model is pinned (the test embedder
passed to create_app pins it, as VISUALSEARCH_MODEL does) answers 409, and on an unpinned server
the download job fails because HF_ENDPOINT points at a loopback port nothing listens on. Progress
(a download, a re-embedding) is shown from GET /api/models answers rewritten in the browser.
Screenshots go to test-artifacts/screenshots/models-*.png.
"""

from __future__ import annotations

import copy
import re
import time
from contextlib import contextmanager

import pytest

from tests.support.embedders import TinyEmbedder
from tests.support.images import gradient_image
from tests.support.live import LiveServer, free_port
from tests.support.web import open_page, tiny_server
from tests.web.test_layout import assert_fully_visible, assert_no_sideways_scroll
from tests.web.test_web import SHOTS, browser, sync_api  # noqa: F401 (the browser fixture)
from visualsearch.api import create_app
from visualsearch.config import Settings

pytestmark = pytest.mark.slow  # Chromium

expect = sync_api.expect
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
OTHER = "clip-vit-b32-laion2b"  # a curated model that is not the test server's
MB = 1024 * 1024


@pytest.fixture
def live(tmp_path):
    """The tiny test model, passed in: the model is pinned, as VISUALSEARCH_MODEL pins it."""
    with tiny_server(tmp_path, 3) as server:
        yield server


@pytest.fixture
def unpinned(tmp_path, monkeypatch):
    """A server that may change its model (loaded through ``loader``); downloads go to a closed
    loopback port, so a download job fails at once, and nothing leaves 127.0.0.1."""
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(3):
        gradient_image(i, (120, 90)).save(folder / f"g{i:02}.png")
    settings = Settings.from_env(tmp_path / "lib", decode_workers=1)
    app = create_app(settings, loader=lambda name: TinyEmbedder(), require_keys=False)
    app.state.server.library.index_folder(folder)
    with LiveServer(app) as server:
        server.wait_ready()
        yield server


@contextmanager
def open_at(browser, url: str, viewport=DESKTOP):  # noqa: F811
    """A page in its own browser context (phones as touch devices); no script errors allowed."""
    phone = viewport["width"] < 600
    with open_page(browser, url, wait_for=None, viewport=viewport, is_mobile=phone, has_touch=phone) as page:
        yield page


def models_of(server) -> dict:
    with server.client() as api:
        response = api.get("/api/models")
        assert response.status_code == 200, response.text
        return response.json()


def row(page, name: str):
    return page.locator(f'.model[data-model="{name}"]')


def address(page, server) -> str:
    return page.url.removeprefix(server.url)


def rewrite_models(page, change) -> list[dict]:
    """GET /api/models answers pass through ``change(body)`` in the browser; returns the bodies sent."""
    sent: list[dict] = []

    def handle(route):
        if route.request.method != "GET":
            route.continue_()
            return
        try:
            response = route.fetch()
            body = response.json()
            change(body)
            sent.append(copy.deepcopy(body))
            route.fulfill(response=response, json=body)
        except sync_api.Error:  # the page closed while it polled
            pass

    page.route(re.compile(r".*/api/models(\?.*)?$"), handle)
    return sent


def unpin(body: dict) -> None:
    body["pinned"] = False


def save(page, name: str) -> None:
    """The whole page (phones: every row) to test-artifacts/screenshots/<name>.png."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(150)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_the_view_lists_the_curated_models_and_marks_the_one_in_use(browser, live):  # noqa: F811
    data = models_of(live)
    assert data["active"] == data["requested"]  # nothing is moving on a new library
    assert data["pinned"] is True  # the test embedder pins the model
    names = [m["name"] for m in data["models"]]
    assert data["active"] in names and OTHER in names
    with open_at(browser, live.url + "/?view=models") as page:
        expect(page.locator(".model")).to_have_count(len(names))
        assert page.locator(".model .model-name").all_inner_texts() == names
        expect(page.locator("#models-summary")).to_have_text(f"{len(names)} models")
        expect(page.locator("#models-active")).to_have_text(data["active"])
        assert page.title() == "Models · visualsearch"
        expect(page.locator("#nav-models")).to_have_attribute("aria-current", "page")
        expect(page.locator("#nav-library")).not_to_have_attribute("aria-current", "page")
        expect(page.locator("#search-form")).to_be_hidden()
        expect(page.locator("#min-score-box")).to_be_hidden()
        expect(page.locator("#models-download")).to_be_hidden()
        expect(page.locator("#models-moving")).to_be_hidden()

        in_use = page.locator(".model .model-status", has_text=re.compile("^In use$"))
        expect(in_use).to_have_count(1)
        expect(row(page, data["active"]).locator(".model-status")).to_have_text("In use")
        for m in data["models"]:
            r = row(page, m["name"])
            expect(r.locator(".model-family")).to_have_text(m["family"])
            facts = dict(zip(r.locator("dt").all_inner_texts(), r.locator("dd").all_inner_texts()))
            facts = {k.lower(): v for k, v in facts.items()}  # dt is upper-cased by CSS
            assert facts["download"] == (f"{m['download_mb']:,} MB" if m["download_mb"] else "bundled")
            assert facts["vector"] == f"{m['dim']} dimensions"
            assert facts["languages"] == m["languages"]
            assert facts["coco r@1"] == (f"{m['coco_r1']:.1f}%" if m["coco_r1"] is not None else "not published")
            assert facts["flickr30k r@1"] == (
                f"{m['flickr_r1']:.1f}%" if m["flickr_r1"] is not None else "not published"
            )
            if m["images_per_s"] is None:
                assert facts["speed"] == "not measured"
            expect(r.locator("dd").nth(3)).to_have_attribute("title", m["source"])
            if m["name"] != data["active"]:
                expected = "Downloaded" if m["installed"] else "Not downloaded"
                if not m["installed"] and m["partial_bytes"]:
                    expected = f"Partly downloaded ({m['partial_bytes'] / MB:.1f} MB)"
                expect(r.locator(".model-status")).to_have_text(expected)

        # Pinned: the page says why, and offers no Use button.
        expect(page.locator("#models-pinned")).to_be_visible()
        expect(page.locator("#models-pinned")).to_contain_text("VISUALSEARCH_MODEL")
        expect(page.locator(".model-use")).to_have_count(0)
        save(page, "models-01-pinned")


def test_the_nav_link_and_the_address_open_the_view_and_back_returns_to_the_library(browser, live):  # noqa: F811
    with open_at(browser, live.url + "/") as page:
        page.wait_for_selector(".card img")
        expect(page.locator("#nav-models")).to_have_attribute("href", "/?view=models")
        page.click("#nav-models")
        expect(page.locator(".model").first).to_be_visible()
        assert address(page, live) == "/?view=models"
        expect(page.locator("#library-view")).to_be_hidden()
        expect(page.locator("#duplicates-view")).to_be_hidden()
        assert page.title() == "Models · visualsearch"

        page.go_back()
        expect(page.locator(".card").first).to_be_visible()
        expect(page.locator("#models-view")).to_be_hidden()
        expect(page.locator("#nav-library")).to_have_attribute("aria-current", "page")
        expect(page.locator("#nav-models")).not_to_have_attribute("aria-current", "page")
        expect(page.locator("#search-form")).to_be_visible()
        assert address(page, live) == "/"
        assert page.title() == "Library · visualsearch"

        page.go_forward()
        expect(page.locator("#models-view")).to_be_visible()
        expect(page.locator("#nav-models")).to_have_attribute("aria-current", "page")
        page.reload()
        expect(page.locator(".model").first).to_be_visible()  # the address is the view

        # Duplicates and back to Models: one link marked at a time.
        page.click("#nav-duplicates")
        expect(page.locator("#duplicates-view")).to_be_visible()
        expect(page.locator("#models-view")).to_be_hidden()
        expect(page.locator(".views a[aria-current=page]")).to_have_count(1)
        page.click("#nav-models")
        expect(page.locator("#models-view")).to_be_visible()
        expect(page.locator(".views a[aria-current=page]")).to_have_text("Models")


def test_use_sends_the_request_and_shows_why_a_pinned_server_refuses(browser, live):  # noqa: F811
    with live.client() as api:
        refused = api.post("/api/models/use", json={"name": OTHER})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "model_pinned"
    reason = refused.json()["error"]["message"]
    data = models_of(live)
    other = next(m for m in data["models"] if m["name"] == OTHER)
    with open_at(browser, "about:blank") as page:
        rewrite_models(page, unpin)  # the page offers the switch; the server still refuses it
        posts: list[dict] = []
        page.on("request", lambda r: posts.append(r.post_data_json) if r.url.endswith("/api/models/use") else None)
        page.goto(live.url + "/?view=models")
        expect(page.locator("#models-pinned")).to_be_hidden()
        expect(page.locator(".model-use")).to_have_count(len(data["models"]) - 1)  # not on the one in use
        expect(row(page, data["requested"]).locator(".model-use")).to_have_count(0)

        # Cancel: nothing is sent.
        row(page, OTHER).get_by_role("button", name=f"Use {OTHER}").click()
        dialog = page.locator("#confirm-dialog")
        expect(dialog).to_be_visible()
        expect(dialog.locator("#confirm-title")).to_have_text(f"Use {OTHER}?")
        expect(dialog.locator("#confirm-text")).to_contain_text(f"~{other['download_mb']:,} MB")
        expect(dialog.locator("#confirm-text")).to_contain_text("re-embedded with it in the background")
        expect(dialog.locator("#confirm-text")).to_contain_text("searches keep working")
        expect(dialog.locator("#confirm-ok")).to_have_class("primary-button")
        dialog.get_by_role("button", name="Cancel").click()
        expect(dialog).to_be_hidden()
        page.wait_for_timeout(200)
        assert posts == []

        row(page, OTHER).get_by_role("button", name=f"Use {OTHER}").click()
        with page.expect_response(lambda r: r.url.endswith("/api/models/use")) as answer:
            dialog.get_by_role("button", name=f"Use {OTHER}").click()
        assert answer.value.status == 409
        assert posts == [{"name": OTHER}]
        banner = page.locator("#models-error")
        expect(banner).to_be_visible()
        expect(banner).to_have_text(f"Cannot use {OTHER}: {reason}")
        expect(page.locator(".model-use").first).to_be_enabled()  # nothing runs: the buttons work again
        save(page, "models-02-refused")


def test_a_failed_download_is_shown_with_its_reason(browser, unpinned):  # noqa: F811
    data = models_of(unpinned)
    assert data["pinned"] is False
    with open_at(browser, unpinned.url + "/?view=models") as page:
        expect(page.locator("#models-pinned")).to_be_hidden()
        expect(page.locator(".model-use")).to_have_count(len(data["models"]) - 1)
        row(page, OTHER).get_by_role("button", name=f"Use {OTHER}").click()
        with page.expect_response(lambda r: r.url.endswith("/api/models/use")) as answer:
            page.locator("#confirm-dialog").get_by_role("button", name=f"Use {OTHER}").click()
        assert answer.value.status == 202
        job = answer.value.json()
        assert job["kind"] == "model"

        banner = page.locator("#models-error")
        expect(banner).to_contain_text(f"Downloading {OTHER} failed: ", timeout=20_000)
        with unpinned.client() as api:
            record = api.get(job["status_url"]).json()
        # "cannot reach the model hub at http://127.0.0.1:...", or "HF_HUB_OFFLINE is set" after a test
        # that loaded the real model (its text tower sets it): either way, no download.
        assert record["status"] == "failed" and record["error"]
        expect(banner).to_have_text(f"Downloading {OTHER} failed: {record['error']}")
        expect(page.locator("#models-download")).to_be_hidden()
        expect(page.locator(".model-use").first).to_be_enabled()
        expect(row(page, data["active"]).locator(".model-status")).to_have_text("In use")
        save(page, "models-03-download-failed")


def in_progress(active: str, downloading: bool):
    """A GET /api/models answer rewritten to a switch to OTHER in progress: downloading it (12.3 of
    605 MB), or re-embedding the library (2 of 3 images)."""

    def change(body: dict) -> None:
        body["pinned"] = False
        job = {
            "id": "j1",
            "status": "running",
            "failed": 0,
            "failures": [],
            "error": None,
            "created_at": "2026-01-01T00:00:00Z",
            "started_at": "2026-01-01T00:00:00Z",
            "finished_at": None,
            "status_url": "/api/jobs/j1",
        }
        if downloading:
            body["job"] = {**job, "kind": "model", "done": int(12.3 * MB), "total": 605 * MB}
            for m in body["models"]:
                if m["name"] == OTHER:
                    m["partial_bytes"] = int(12.3 * MB)
        else:
            body["requested"] = OTHER
            body["model_change"] = {"from_model": active, "to_model": OTHER, "done": 2, "total": 3}
            body["job"] = {**job, "kind": "reembed", "done": 2, "total": 3}
            for m in body["models"]:
                m["requested"] = m["name"] == OTHER
                if m["name"] == OTHER:
                    m["installed"] = True

    return change


def test_progress_shows_disables_the_buttons_and_polls_only_in_the_view(browser, live):  # noqa: F811
    active = models_of(live)["active"]
    with open_at(browser, "about:blank") as page:
        sent = rewrite_models(page, in_progress(active, downloading=True))
        page.goto(live.url + "/?view=models")
        download = page.locator("#models-download")
        expect(download).to_be_visible()
        # The page did not start this download, so it does not know the name.
        expect(page.locator("#models-download-text")).to_have_text("Downloading the new model: 12.3 of 605 MB")
        bar = page.locator("#models-download-bar")
        assert bar.evaluate("b => b.value / b.max") == pytest.approx(12.3 / 605, abs=1e-3)
        expect(row(page, OTHER).locator(".model-status")).to_have_text("Partly downloaded (12.3 MB)")
        uses = page.locator(".model-use")
        assert uses.count() > 0
        for i in range(uses.count()):
            expect(uses.nth(i)).to_be_disabled()

        # Polls while a job runs (about every 1.5 s) ...
        started = len(sent)
        deadline = time.monotonic() + 10
        while len(sent) < started + 2 and time.monotonic() < deadline:
            page.wait_for_timeout(250)
        assert len(sent) >= started + 2, "the page does not poll GET /api/models while a job runs"
        # ... and stops once the view is left.
        page.click("#nav-library")
        expect(page.locator("#library-view")).to_be_visible()
        left = len(sent)
        page.wait_for_timeout(3500)
        assert len(sent) == left, "the page still polls GET /api/models in the library"

    with open_at(browser, "about:blank") as page:
        rewrite_models(page, in_progress(active, downloading=False))
        page.goto(live.url + "/?view=models")
        expect(page.locator("#models-moving-text")).to_have_text(f"Moving to {OTHER}: 2 of 3 images re-embedded")
        expect(page.locator("#models-active")).to_have_text(active)  # searches still use it
        expect(row(page, OTHER).locator(".model-status")).to_have_text("Moving to it")
        expect(row(page, active).locator(".model-status")).to_have_text("In use")
        expect(row(page, OTHER).locator(".model-use")).to_have_count(0)  # it is the requested one
        expect(row(page, active).locator(".model-use")).to_be_disabled()
        expect(page.locator("#models-download")).to_be_hidden()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["360", "1280"])
def test_the_models_view_fits_the_screen(browser, live, viewport):  # noqa: F811
    active = models_of(live)["active"]
    size = "phone" if viewport["width"] < 600 else "desktop"
    with open_at(browser, "about:blank", viewport=viewport) as page:
        rewrite_models(page, in_progress(active, downloading=True))
        page.goto(live.url + "/?view=models")
        expect(page.locator("#models-download")).to_be_visible()
        expect(page.locator(".model").first).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert_no_sideways_scroll(page)
        for selector in ("#nav-library", "#nav-duplicates", "#nav-models", "#models-heading", "#upload-button"):
            assert_fully_visible(page, selector)
        # Each row, scrolled into view: its name, status and Use button are on the screen, not cut.
        for name in page.locator(".model").evaluate_all("(rows) => rows.map((r) => r.dataset.model)"):
            for part in (".model-name", ".model-status", ".model-pick", ".model-facts", ".model-use"):
                selector = f'.model[data-model="{name}"] {part}'
                if page.locator(selector).count():
                    page.locator(selector).scroll_into_view_if_needed()
                    assert_fully_visible(page, selector)
        # Nothing sticks out of its row (an overflowing child makes the row's scrollWidth grow).
        wide = page.locator(".model, .model-current").evaluate_all(
            "(rows) => rows.filter((r) => r.scrollWidth > r.clientWidth + 1).map((r) => r.dataset.model || r.id)"
        )
        assert wide == [], f"content wider than its row: {wide}"
        # The top bar keeps one row of links and the Upload button (the search form is hidden here).
        tops = page.locator("#nav-models, #upload-button, .brand").evaluate_all(
            "(els) => els.map((e) => Math.round(e.getBoundingClientRect().top + e.getBoundingClientRect().height / 2))"
        )
        assert max(tops) - min(tops) <= 2, f"the top bar wraps: {tops}"
        page.evaluate("window.scrollTo(0, 0)")
        save(page, f"models-layout-{size}")
