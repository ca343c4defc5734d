"""The web page in a real headless Chromium (Playwright), against a live server with the real model.

Screenshots of every state go to test-artifacts/screenshots/ (kept by CI as artefacts).
Needs Debian's `chromium` (installed by .ci/run); without it these tests are skipped
locally, and fail under CI so that a missing browser cannot pass unnoticed.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from tests.support.live import LiveServer
from tests.support.paths import REPO, TEST_PHOTOS
from tests.support.web import open_page, tiny_server
from visualsearch.api import create_app
from visualsearch.config import Settings

pytestmark = pytest.mark.slow  # Chromium, the real model and a live server

CHROMIUM = os.environ.get("VISUALSEARCH_CHROMIUM", "/usr/bin/chromium")
SHOTS = REPO / "test-artifacts" / "screenshots"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"Chromium not found at {CHROMIUM}: .ci/run should have installed it")
    pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


# The photo the Duplicates view finds copies of (a half-size copy and a byte-identical one).
DUPLICATED = "storm-clouds-over-road.jpg"


@pytest.fixture(scope="module")
def library_photos(tmp_path_factory) -> Path:
    """The 24 sample photos (src/visualsearch/demo/photos), plus two copies of one for the Duplicates view."""
    folder = tmp_path_factory.mktemp("web") / "photos"
    folder.mkdir()
    for p in sorted(TEST_PHOTOS.glob("*.jpg")):
        shutil.copy(p, folder / p.name)
    original = folder / DUPLICATED
    with Image.open(original) as im:
        im.resize((im.width // 2, im.height // 2)).save(folder / "storm-small.jpg", quality=85)
    shutil.copy(original, folder / "storm-copy.jpg")
    return folder


@pytest.fixture(scope="module")
def live(library_photos, embedder, tmp_path_factory):
    settings = Settings.from_env(tmp_path_factory.mktemp("weblib") / "lib")
    app = create_app(settings, embedder=embedder, require_keys=False)
    app.state.server.library.index_folder(library_photos)
    with LiveServer(app) as server:
        server.wait_ready()
        yield server


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, live):
    with open_page(browser, live.url + "/", viewport={"width": 1360, "height": 900}, accept_downloads=True) as page:
        yield page


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(150)  # let thumbnails paint
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def card_names(page) -> list[str]:
    return page.locator(".card .name").all_inner_texts()


def scores(page) -> list[float]:
    return [float(s) for s in page.locator(".card .score").all_inner_texts()]


def visual_on(page):
    page.locator(".visual-toggle").click()  # as a person does: on the switch's label
    sync_api.expect(page.get_by_role("switch", name="Visual")).to_be_checked()
    sync_api.expect(page.locator("#min-score-box")).to_be_visible()


def wait_results(page):
    page.wait_for_selector(".card .score")
    page.wait_for_selector("#loading", state="hidden")


def set_min_score(page, value: float) -> None:
    page.eval_on_selector(
        "#min-score",
        f"(e) => {{ e.value = '{value}'; e.dispatchEvent(new Event('input')); e.dispatchEvent(new Event('change')); }}",
    )


def text_search(page, text: str) -> None:
    """A visual text search as a person makes it: Visual on (if it is not), type, Enter."""
    if not page.get_by_role("switch", name="Visual").is_checked():
        visual_on(page)
    page.fill("#search-input", text)
    page.press("#search-input", "Enter")
    wait_results(page)


def keep_top_five(page) -> float:
    """Sets the minimum score to the fifth result's score, waits for the cut list; returns the cut."""
    cut = round(scores(page)[4], 2)
    set_min_score(page, cut)
    page.wait_for_function("document.querySelectorAll('.card .score').length <= 5")
    wait_results(page)
    return cut


def test_library_grid_shows_thumbnails_and_count(page, library_photos):
    count = len(list(library_photos.iterdir()))
    sync_api.expect(page.locator("#summary")).to_have_text(f"{count} images")
    assert count < 40 and page.locator(".card").count() == count  # all on the first page of 40
    first = page.locator(".card img").first
    assert first.get_attribute("alt") and first.get_attribute("loading") == "lazy"
    page.wait_for_function("document.querySelector('.card img').naturalWidth > 0")
    shot(page, "01-library")


@pytest.fixture(scope="module")
def big_live(tmp_path_factory):
    """A library of 45 synthetic pictures, more than one page of 40, on the tiny test model."""
    with tiny_server(tmp_path_factory.mktemp("big"), 45) as server:
        yield server


def test_infinite_scroll_brings_the_next_page(browser, big_live):
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(big_live.url + "/")
        page.wait_for_selector(".card img")
        sync_api.expect(page.locator("#summary")).to_have_text("45 images")
        assert page.locator(".card").count() == 40  # the first page
        page.mouse.wheel(0, 20000)  # infinite scroll brings the rest
        sync_api.expect(page.locator(".card")).to_have_count(45)
    finally:
        context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def test_filter_by_name_without_visual(page):
    page.fill("#search-input", "banana")
    page.press("#search-input", "Enter")
    sync_api.expect(page.locator("#summary")).to_have_text("1 match for “banana”")
    assert card_names(page) == ["banana-drawing.jpg"]
    assert page.locator(".card .score").count() == 0


def test_visual_text_search_ranks_results_with_scores(page):
    visual_on(page)
    page.fill("#search-input", "a cup of coffee")  # verified in src/visualsearch/demo/photos/labels.json
    page.press("#search-input", "Enter")
    wait_results(page)
    assert card_names(page)[0] == "coffee-cup.jpg"
    values = scores(page)
    assert len(values) >= 10 and values == sorted(values, reverse=True)
    assert page.locator(".card .score").first.get_attribute("title").startswith("Similarity score")
    sync_api.expect(page.locator("#heading")).to_have_text("Visual search")
    shot(page, "02-text-search")


def test_min_score_slider_drops_weaker_results(page):
    visual_on(page)
    page.fill("#search-input", "a drawing of a banana")
    page.press("#search-input", "Enter")
    wait_results(page)
    before = scores(page)
    cut = round(before[2], 2)
    page.eval_on_selector(
        "#min-score",
        f"(e) => {{ e.value = '{cut}'; e.dispatchEvent(new Event('input')); e.dispatchEvent(new Event('change')); }}",
    )
    page.wait_for_function(f"document.querySelectorAll('.card .score').length < {len(before)}")
    wait_results(page)
    after = scores(page)
    assert after and all(s >= cut for s in after)
    sync_api.expect(page.locator("#min-score-value")).to_have_text(f"{cut:.2f}")


class _PhotoHandler(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(self.body)))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def photo_host(library_photos, monkeypatch):
    """A local web server with one photo; the fetcher may reach 127.0.0.1 for this test only."""
    from visualsearch.ingest import fetch

    real = fetch.address_refusal
    monkeypatch.setattr(fetch, "address_refusal", lambda ip: None if ip == "127.0.0.1" else real(ip))
    _PhotoHandler.body = (library_photos / "sports-car-drawing.jpg").read_bytes()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _PhotoHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/sports-car.jpg"
    httpd.shutdown()


def test_camera_dialog_search_by_url(page, photo_host):
    page.click("#camera-button")
    sync_api.expect(page.locator("#image-dialog")).to_be_visible()
    shot(page, "03-camera-dialog")
    page.fill("#image-url", photo_host)
    page.click("#url-form button[type=submit]")
    wait_results(page)
    sync_api.expect(page.locator("#image-dialog")).to_be_hidden()
    sync_api.expect(page.locator("#reference")).to_be_visible()
    sync_api.expect(page.locator("#reference-name")).to_have_text(photo_host)
    assert card_names(page)[0] == "sports-car-drawing.jpg" and scores(page)[0] > 0.99
    shot(page, "04-search-by-url")


def test_camera_dialog_search_by_uploaded_file(page, library_photos):
    page.click("#camera-button")
    page.set_input_files("#search-file", str(library_photos / "cat-chelsea.jpg"))
    wait_results(page)
    sync_api.expect(page.locator("#reference-name")).to_have_text("cat-chelsea.jpg")
    page.wait_for_function("document.getElementById('reference-image').naturalWidth > 0")
    assert card_names(page)[0] == "cat-chelsea.jpg"
    shot(page, "05-search-by-file")


def test_camera_dialog_refuses_a_file_over_40_mb_before_sending(page, tmp_path):
    big = tmp_path / "huge.jpg"
    big.write_bytes(b"\xff\xd8\xff" + b"\x00" * (40 * 1024 * 1024 + 1))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.click("#camera-button")
    page.set_input_files("#search-file", str(big))
    sync_api.expect(page.locator("#image-dialog-error")).to_contain_text("the limit is 40 MB")
    assert not any("/api/search/image" in u for u in requests)
    page.keyboard.press("Escape")
    sync_api.expect(page.locator("#image-dialog")).to_be_hidden()


def test_find_similar_from_the_three_dots_menu_and_back(page):
    target = page.locator(".card", has=page.locator(".name", has_text="elephants-painting.jpg"))
    target.hover()
    target.locator(".menu-button").click()
    sync_api.expect(page.locator("#menu")).to_be_visible()
    shot(page, "06-card-menu")
    page.get_by_role("menuitem", name="Find similar images").click()
    wait_results(page)
    sync_api.expect(page.locator("#reference-name")).to_have_text("elephants-painting.jpg")
    names = card_names(page)
    assert "elephants-painting.jpg" not in names and len(names) >= 10
    sync_api.expect(page.locator("#heading")).to_have_text("Similar images")
    shot(page, "07-find-similar")
    page.click("#back-button")
    sync_api.expect(page.locator("#heading")).to_have_text("Library")
    sync_api.expect(page.locator("#reference")).to_be_hidden()


def test_find_similar_by_right_click(page):
    target = page.locator(".card", has=page.locator(".name", has_text="orange-flower.jpg"))
    target.click(button="right")
    sync_api.expect(page.locator("#menu")).to_be_visible()
    page.keyboard.press("Enter")  # the first item has focus: Find similar images
    wait_results(page)
    sync_api.expect(page.locator("#reference-name")).to_have_text("orange-flower.jpg")
    assert "orange-flower.jpg" not in card_names(page)


def test_escape_closes_the_menu_and_returns_focus(page):
    button = page.locator(".card .menu-button").first
    button.click()
    sync_api.expect(page.locator("#menu")).to_be_visible()
    page.keyboard.press("Escape")
    sync_api.expect(page.locator("#menu")).to_be_hidden()
    assert page.evaluate("document.activeElement.classList.contains('menu-button')")


def _png(colour, size=(320, 240)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def test_upload_shows_progress_and_per_file_errors(page, tmp_path, library_photos):
    good = tmp_path / "new-teal.png"
    good.write_bytes(_png((0, 128, 128)))
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes((library_photos / "banana-drawing.jpg").read_bytes()[:300])
    big = tmp_path / "enormous.jpg"
    big.write_bytes(b"\xff\xd8\xff" + b"\x00" * (40 * 1024 * 1024 + 1))
    duplicate = tmp_path / "banana-again.jpg"
    shutil.copy(library_photos / "banana-drawing.jpg", duplicate)
    text = tmp_path / "notes.png"
    text.write_text("not an image")

    before = page.locator(".card").count()
    page.set_input_files("#upload-input", [str(p) for p in (good, corrupt, big, duplicate, text)])
    sync_api.expect(page.locator("#uploads")).to_be_visible()
    items = page.locator(".upload-item")
    sync_api.expect(items).to_have_count(5)
    page.wait_for_function("document.querySelectorAll('.upload-item.done, .upload-item.failed').length === 5")

    def row(name):
        return page.locator(".upload-item", has=page.locator(".file", has_text=name))

    sync_api.expect(row("new-teal.png").locator(".state")).to_have_text("Added")
    sync_api.expect(row("enormous.jpg").locator(".reason")).to_contain_text("Too large")
    sync_api.expect(row("corrupt.jpg").locator(".reason")).to_contain_text("corrupt or truncated")
    sync_api.expect(row("banana-again.jpg").locator(".reason")).to_have_text(
        "Already in the library (the same file): not added again."
    )
    sync_api.expect(row("notes.png").locator(".reason")).to_contain_text("not an image we can read")
    assert page.locator(".card").count() == before + 1
    assert card_names(page)[0] == "new-teal.png"
    shot(page, "08-uploads")


def test_drag_and_drop_onto_the_page_uploads(page):
    data = list(_png((200, 120, 40)))
    page.evaluate(
        """(bytes) => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(bytes)], 'dropped.png', {type: 'image/png'}));
        for (const type of ['dragenter', 'dragover', 'drop']) {
            window.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true}));
        }
    }""",
        data,
    )
    page.wait_for_selector(".upload-item.done")
    assert "dropped.png" in card_names(page)


def test_asset_dialog_shows_metadata_and_keyboard_closes_it(page):
    page.locator(".card .thumb").first.click()
    dialog = page.locator("#asset-dialog")
    sync_api.expect(dialog).to_be_visible()
    sync_api.expect(page.locator("#asset-meta")).to_contain_text("Dimensions")
    page.wait_for_function("document.getElementById('asset-image').naturalWidth > 0")
    shot(page, "09-asset")
    page.keyboard.press("Escape")
    sync_api.expect(dialog).to_be_hidden()


def test_errors_are_readable_messages(page):
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.click("#camera-button")
    page.fill("#image-url", "http://169.254.169.254/latest/meta-data/")
    page.click("#url-form button[type=submit]")
    banner = page.locator("#image-dialog-error")  # in the dialog, which stays open (tests/web/test_page_states.py)
    sync_api.expect(banner).to_be_visible()
    sync_api.expect(banner).to_contain_text("That link cannot be used")
    sync_api.expect(banner).to_contain_text("link-local address 169.254.169.254 refused")
    shot(page, "10-error")
    # The page never asks the browser to load a refused address either.
    assert requested and not [u for u in requested if "169.254" in u]


def test_duplicates_view_shows_groups_and_moves_extras_to_trash(page, live):
    page.click("#nav-duplicates")
    sync_api.expect(page.locator("#dups-heading")).to_be_visible()
    group = page.locator(".dup-group").first
    sync_api.expect(group).to_be_visible()
    sync_api.expect(page.locator("#dups-summary")).to_contain_text("1 group · 2 extra images")
    keeper = group.locator(".dup-item.keeper")
    sync_api.expect(keeper.locator(".tag")).to_have_text("Keep")
    sync_api.expect(keeper.locator(".name")).to_have_text(DUPLICATED)  # full size, oldest
    # A copy's badge is its tier (said once); the model's similarity is a detail under it.
    assert sorted(group.locator(".dup-item:not(.keeper) .tag").all_inner_texts()) == ["Near-duplicate", "Same file"]
    sync_api.expect(group.locator(".dup-item .kind")).to_have_count(0)
    details = group.locator(".dup-item:not(.keeper) .model-similarity").all_inner_texts()
    assert len(details) == 2 and all(re.fullmatch(r"Model similarity \d+%", t) for t in details)
    assert "× " in keeper.locator(".muted").first.inner_text()  # sizes are shown side by side
    page.wait_for_function("[...document.querySelectorAll('.dup-item img')].every(i => i.naturalWidth > 0)")
    shot(page, "11-duplicates")

    group.get_by_role("button", name="Move selected to trash").click()
    page.locator("#confirm-dialog").get_by_role("button", name="Move 2 images to trash").click()  # a styled dialog
    sync_api.expect(page.locator(".toast")).to_contain_text("Moved 2 images to the trash")
    sync_api.expect(page.locator("#dups-empty")).to_be_visible()
    shot(page, "12-duplicates-cleaned")
    trash = Path(live.app.state.server.settings.library_dir) / "trash"
    assert sorted(p.name.split("-", 1)[1] for p in trash.glob("*/*")) == ["storm-copy.jpg", "storm-small.jpg"]
    page.click("#nav-library")
    sync_api.expect(page.locator("#heading")).to_have_text("Library")


def test_the_page_works_under_its_content_security_policy(browser, live, photo_host, library_photos):
    """The CSP (no inline script or style, no eval) enforced: grid, visual search, search by URL
    (a remote reference image) and by file (a blob: URL), Find similar and the asset dialog run
    without a single policy violation or script error."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None)
    try:
        response = page.goto(live.url + "/")
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        page.wait_for_selector(".card img")
        visual_on(page)
        page.fill("#search-input", "a cup of coffee")
        page.press("#search-input", "Enter")
        wait_results(page)
        page.click("#camera-button")
        page.fill("#image-url", photo_host)
        page.click("#url-form button[type=submit]")
        wait_results(page)
        sync_api.expect(page.locator("#reference")).to_be_visible()
        page.click("#camera-button")
        page.set_input_files("#search-file", str(library_photos / "cat-chelsea.jpg"))
        sync_api.expect(page.locator("#reference-name")).to_have_text("cat-chelsea.jpg")
        page.locator(".card").first.click(button="right")
        page.get_by_role("menuitem", name="Find similar images").click()
        wait_results(page)
        page.keyboard.press("Escape")
        page.locator(".card img").first.click()
        sync_api.expect(page.locator("#asset-dialog")).to_be_visible()
        page.wait_for_timeout(300)
    finally:
        context.close()
    assert problems == [], problems
