"""The text query language and "Find similar, refined with words" on the page, in headless Chromium.

The server runs the tiny test model (tests/support/embedders.py): it knows only the words red,
green and blue, and the pictures are solid colours, so every ranking here is known in advance.
Screenshots of the refined Find similar view go to test-artifacts/screenshots/refine-*.png.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.support.embedders import TinyEmbedder
from tests.support.images import solid
from tests.support.live import LiveServer
from tests.support.web import open_page
from tests.web import test_web as web
from tests.web.test_web import shot, sync_api
from visualsearch.api import create_app
from visualsearch.config import Settings

browser = web.browser  # test_web.py's Chromium fixture (skips the module without Chromium)

pytestmark = pytest.mark.slow  # Chromium and a live server

expect = sync_api.expect

COLOURS = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "magenta": (255, 0, 255),
    "yellow": (255, 255, 0),
    "cyan": (0, 255, 255),
    "orange": (255, 128, 0),
}
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A live server on seven solid-colour pictures and the tiny test model."""
    root: Path = tmp_path_factory.mktemp("query-syntax")
    folder = root / "pictures"
    folder.mkdir()
    for i, (name, colour) in enumerate(COLOURS.items()):
        solid(colour, (60 + i, 45)).save(folder / f"{name}.png")
    app = create_app(Settings.from_env(root / "lib"), embedder=TinyEmbedder(), require_keys=False)
    app.state.server.library.index_folder(folder)
    with LiveServer(app) as live:
        live.wait_ready()
        yield live


@pytest.fixture(scope="module")
def ids(server) -> dict[str, int]:
    with server.client() as api:
        items = api.get("/api/assets", params={"limit": 100}).json()["items"]
    return {a["name"].removesuffix(".png"): a["id"] for a in items}


def names(page) -> list[str]:
    return page.locator(".card .name").all_inner_texts()


def query(page) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(page.url).query))


def wait_results(page) -> None:
    page.wait_for_selector(".card .score")
    page.wait_for_selector("#loading", state="hidden")


def visual_search(page, text: str) -> None:
    if not page.get_by_role("switch", name="Visual").is_checked():
        page.locator(".visual-toggle").click()
        expect(page.get_by_role("switch", name="Visual")).to_be_checked()
    page.fill("#search-input", text)
    page.press("#search-input", "Enter")


def expect_refined(page, ids, words: str, shown: str) -> None:
    """The Find similar view of magenta.png refined by `words` (read by the server as `shown`)."""
    expect(page.locator("#heading")).to_have_text("Similar images")
    expect(page.locator("#reference")).to_be_visible()
    expect(page.locator("#reference-name")).to_have_text("magenta.png")
    expect(page.locator("#reference-refine")).to_have_text(f"Refined: {shown}")
    expect(page.get_by_label("Refine with words")).to_have_value(words)
    expect(page.locator("#error-banner")).to_be_hidden()
    assert query(page) == {"similar": str(ids["magenta"]), "refine": words}
    wait_results(page)
    assert "magenta.png" not in names(page)  # the reference image is left out of its results


def expect_plain_similar(page, ids) -> None:
    expect(page.locator("#heading")).to_have_text("Similar images")
    expect(page.locator("#reference-name")).to_have_text("magenta.png")
    expect(page.locator("#reference-refine")).to_be_hidden()
    expect(page.get_by_label("Refine with words")).to_have_value("")
    assert query(page) == {"similar": str(ids["magenta"])}
    wait_results(page)
    expect(page.locator("#summary")).to_have_text("6 results, best first")


def test_the_summary_says_how_a_query_with_operators_was_read(browser, server):
    with open_page(browser, server.url + "/", viewport=DESKTOP) as page:
        visual_search(page, "red")  # a plain query: the summary is as before
        wait_results(page)
        expect(page.locator("#summary")).to_have_text("7 results, best first")
        assert names(page)[0] == "red.png"

        visual_search(page, "red   -blue")
        expect(page.locator("#summary")).to_have_text("Searching for: red, without blue · 7 results, best first")
        wait_results(page)
        ranked = names(page)
        assert ranked[0] == "red.png" and ranked[-1] == "blue.png"  # what is left out comes last
        assert query(page) == {"q": "red   -blue", "visual": "1"}

        visual_search(page, "green^2 + blue")
        expect(page.locator("#summary")).to_have_text("Searching for: green (x2) + blue · 7 results, best first")
        assert names(page)[0] == "cyan.png"  # green and blue, more green
        # The switch's description and the placeholder show the syntax.
        hint = page.locator("#visual-hint").text_content()
        assert "beach -people" in hint and "red car + night" in hint
        assert "beach -people" in page.get_attribute("#search-input", "placeholder")


def test_a_query_the_server_cannot_use_says_why_in_the_banner(browser, server):
    with open_page(browser, server.url + "/", viewport=DESKTOP) as page:
        visual_search(page, "-red")
        banner = page.locator("#error-banner")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("Cannot search for “-red”: the query only says what to leave out")
        expect(page.locator("#summary")).to_have_text("")
        assert page.locator(".card").count() == 0

        visual_search(page, "red^50")
        expect(banner).to_contain_text("a weight must be above 0 and at most 10")

        visual_search(page, "red")  # a good query clears the banner
        wait_results(page)
        expect(banner).to_be_hidden()


def test_refine_find_similar_with_words(browser, server, ids):
    magenta = ids["magenta"]
    with open_page(browser, server.url + "/", viewport=DESKTOP) as page:
        page.get_by_role("button", name="More actions for magenta.png").click()
        page.get_by_role("menuitem", name="Find similar images").click()
        expect_plain_similar(page, ids)
        history = page.evaluate("history.length")

        box = page.get_by_label("Refine with words")
        box.fill("red -blue^2")

        def refine_request(request) -> bool:
            return request.method == "POST" and request.url.endswith("/api/search") and "text" in request.post_data

        with page.expect_request(refine_request) as sent:
            box.press("Enter")  # the keyboard submits the form
        body = sent.value.post_data_json
        assert body["text"] == "red -blue^2" and body["asset_id"] == magenta and "image_url" not in body
        expect_refined(page, ids, "red -blue^2", "red, without blue (x2)")
        assert names(page)[0] == "red.png" and names(page)[-1] == "blue.png"
        assert page.evaluate("history.length") == history + 1  # its own history entry
        expect(page.locator("#summary")).to_have_text("6 results, best first")

        page.go_back()
        expect_plain_similar(page, ids)
        assert page.evaluate("history.length") == history + 1

        page.go_forward()
        expect_refined(page, ids, "red -blue^2", "red, without blue (x2)")

        page.reload()
        expect_refined(page, ids, "red -blue^2", "red, without blue (x2)")

        # Clearing the words goes back to plain Find similar (a new entry; Back returns to the words).
        box.fill("")
        expect_plain_similar(page, ids)
        page.go_back()
        expect_refined(page, ids, "red -blue^2", "red, without blue (x2)")


def test_refine_words_the_server_cannot_use_say_why(browser, server, ids):
    url = f"{server.url}/?similar={ids['magenta']}&refine=-red"
    with open_page(browser, url, wait_for="#reference-name") as page:
        expect(page.locator("#reference-name")).to_have_text("magenta.png")
        banner = page.locator("#error-banner")
        expect(banner).to_contain_text("Cannot search for “-red”: the query only says what to leave out")
        expect(page.locator("#reference")).to_be_visible()  # the reference and the form stay to try again
        page.get_by_label("Refine with words").fill("green")
        page.get_by_role("button", name="Refine", exact=True).click()
        wait_results(page)
        expect(banner).to_be_hidden()
        assert names(page)[0] in ("green.png", "yellow.png", "cyan.png")
        assert query(page)["refine"] == "green"


# Whether anything sticks out sideways, and where the refine form's parts are.
LAYOUT = """() => {
  const box = (id) => { const r = document.getElementById(id).getBoundingClientRect();
    return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width}; };
  return {scrollWidth: document.documentElement.scrollWidth, width: window.innerWidth,
          input: box('refine-input'),
          submit: (() => { const r = document.querySelector('#refine-form button').getBoundingClientRect();
                           return {left: r.left, right: r.right, top: r.top}; })(),
          reference: box('reference'), name: box('reference-name')};
}"""


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_refined_view_fits_desktops_and_phones(browser, server, ids, size):
    name = "desktop" if size == DESKTOP else "phone"
    url = f"{server.url}/?similar={ids['magenta']}&refine=red+-blue%5E2"
    with open_page(browser, url, viewport=size) as page:
        expect_refined(page, ids, "red -blue^2", "red, without blue (x2)")
        page.wait_for_function("[...document.querySelectorAll('.card img')].every((i) => i.complete)")
        layout = page.evaluate(LAYOUT)
        assert layout["scrollWidth"] <= layout["width"], layout  # no sideways scrolling
        ref = layout["reference"]
        for part in (layout["input"], layout["submit"]):
            assert ref["left"] <= part["left"] and part["right"] <= ref["right"], layout
        assert layout["input"]["width"] >= 150, layout  # room to type
        assert layout["name"]["width"] >= 150, layout  # the reference name is readable
        assert layout["submit"]["top"] < layout["input"]["bottom"], layout  # the button beside the box
        shot(page, f"refine-{name}")
