"""The address is the state: every view of the page has a URL (History API), Back/Forward move
between views and restore the search box, the Visual switch and the minimum score, reload and a
shared link show the same results, and anything invalid in the address shows the library.

Headless Chromium against a live server with the real model, as in test_web.py (its fixtures).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.web import test_web as web
from tests.web.test_web import (
    DUPLICATED,
    card_names,
    keep_top_five,
    scores,
    set_min_score,
    shot,
    sync_api,
    text_search,
    wait_results,
)

# test_web.py's fixtures, used here as they are (the live server is one per module).
browser, library_photos, live, page, photo_host = web.browser, web.library_photos, web.live, web.page, web.photo_host

pytestmark = pytest.mark.slow  # Chromium, the real model and a live server

expect = sync_api.expect
COFFEE = "a cup of coffee"  # ranks coffee-cup.jpg first (src/visualsearch/demo/photos/labels.json)


def query(page) -> dict[str, str]:
    """The page's query parameters."""
    return dict(parse_qsl(urlsplit(page.url).query))


def wait_address(page, live, expected: str) -> None:
    """Waits until the address bar shows `expected` (a path and query, e.g. "/?view=duplicates")."""
    expect(page).to_have_url(live.url + expected)


def history_length(page) -> int:
    return page.evaluate("history.length")


def library_count(library_photos) -> int:
    return len(list(library_photos.iterdir()))


def asset_id(live, name: str) -> int:
    with live.client() as api:
        items = api.get("/api/assets", params={"q": name}).json()["items"]
    return next(a["id"] for a in items if a["name"] == name)


def expect_library(page, library_photos) -> None:
    """The plain library with its controls at their defaults."""
    expect(page.locator("#heading")).to_have_text("Library")
    expect(page.locator("#summary")).to_have_text(f"{library_count(library_photos)} images")
    expect(page.locator("#search-input")).to_have_value("")
    expect(page.get_by_role("switch", name="Visual")).not_to_be_checked()
    expect(page.locator("#min-score")).to_have_value("0")
    expect(page.locator("#min-score-box")).to_be_hidden()
    expect(page.locator("#reference")).to_be_hidden()
    expect(page.locator("#error-banner")).to_be_hidden()


@pytest.fixture
def fresh(browser, live):
    """Opens a path in a new browser context (a shared link in a fresh page); no script errors allowed."""
    contexts, errors = [], []

    def open_(path: str, *, csp: bool = False):
        context = browser.new_context(viewport={"width": 1360, "height": 900}, bypass_csp=not csp)
        contexts.append(context)
        p = context.new_page()
        p.on("pageerror", lambda exc: errors.append(str(exc)))
        p.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
        p.goto(live.url + path)
        return p

    yield open_
    for context in contexts:
        context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def test_a_search_is_in_the_address_and_survives_reload(page, live):
    assert page.url == live.url + "/"
    start = history_length(page)
    text_search(page, COFFEE)
    wait_address(page, live, "/?q=a+cup+of+coffee&visual=1")
    assert history_length(page) == start + 1  # one entry for the search
    names = card_names(page)
    assert names[0] == "coffee-cup.jpg"

    page.reload()
    wait_results(page)
    assert card_names(page) == names
    expect(page.locator("#heading")).to_have_text("Visual search")
    expect(page.locator("#search-input")).to_have_value(COFFEE)
    expect(page.get_by_role("switch", name="Visual")).to_be_checked()
    expect(page.locator("#min-score-box")).to_be_visible()
    shot(page, "url-01-search-reloaded")


def test_the_name_filter_is_one_entry_per_typing_session(page, live, library_photos):
    start = history_length(page)
    box = page.locator("#search-input")
    box.press_sequentially("ban", delay=400)  # slowly: the filter runs (debounced) after each key
    expect(page.locator("#summary")).to_have_text("1 match for “ban”")
    box.press_sequentially("ana", delay=60)
    expect(page.locator("#summary")).to_have_text("1 match for “banana”")
    wait_address(page, live, "/?q=banana")
    assert history_length(page) == start + 1  # not one per keystroke
    page.press("#search-input", "Enter")  # the same filter: no new entry
    page.wait_for_timeout(300)
    assert history_length(page) == start + 1

    page.reload()
    expect(page.locator("#summary")).to_have_text("1 match for “banana”")
    expect(page.locator("#search-input")).to_have_value("banana")
    assert card_names(page) == ["banana-drawing.jpg"]

    page.go_back()
    wait_address(page, live, "/")
    expect_library(page, library_photos)
    page.go_forward()
    expect(page.locator("#summary")).to_have_text("1 match for “banana”")
    expect(page.locator("#search-input")).to_have_value("banana")


def test_find_similar_then_back_and_forward_restore_each_view(page, live, library_photos):
    start = history_length(page)
    text_search(page, COFFEE)
    cut = keep_top_five(page)
    assert query(page) == {"q": COFFEE, "visual": "1", "min": str(cut)}
    searched = card_names(page)
    assert all(s >= cut for s in scores(page))

    first = page.locator(".card").first
    first.click(button="right")
    page.get_by_role("menuitem", name="Find similar images").click()
    wait_results(page)
    coffee = asset_id(live, "coffee-cup.jpg")
    assert query(page) == {"similar": str(coffee), "visual": "1", "min": str(cut)}
    expect(page.locator("#heading")).to_have_text("Similar images")
    expect(page.locator("#reference-name")).to_have_text("coffee-cup.jpg")
    expect(page.locator("#search-input")).to_have_value("")
    similar = card_names(page)
    assert "coffee-cup.jpg" not in similar and all(s >= cut for s in scores(page))
    shot(page, "url-02-similar")
    assert history_length(page) == start + 3  # search, min score, similar

    page.go_back()  # the search with its minimum score
    wait_address(page, live, f"/?q=a+cup+of+coffee&visual=1&min={cut}")
    wait_results(page)
    expect(page.locator("#heading")).to_have_text("Visual search")
    expect(page.locator("#search-input")).to_have_value(COFFEE)
    expect(page.get_by_role("switch", name="Visual")).to_be_checked()
    expect(page.locator("#min-score")).to_have_value(str(cut))
    expect(page.locator("#min-score-value")).to_have_text(f"{cut:.2f}")
    expect(page.locator("#reference")).to_be_hidden()
    assert card_names(page) == searched

    page.go_forward()  # Find similar again
    wait_address(page, live, f"/?similar={coffee}&visual=1&min={cut}")
    wait_results(page)
    expect(page.locator("#reference-name")).to_have_text("coffee-cup.jpg")
    expect(page.locator("#search-input")).to_have_value("")
    assert card_names(page) == similar

    page.go_back()
    page.go_back()  # the search without a minimum score
    wait_address(page, live, "/?q=a+cup+of+coffee&visual=1")
    wait_results(page)
    expect(page.locator("#min-score")).to_have_value("0")
    expect(page.locator("#search-input")).to_have_value(COFFEE)
    page.go_back()  # the library as it was left: Visual on (visual_on() recorded it), nothing stale
    wait_address(page, live, "/?visual=1")
    expect(page.locator("#heading")).to_have_text("Library")
    expect(page.locator("#summary")).to_have_text(f"{library_count(library_photos)} images")
    expect(page.locator("#search-input")).to_have_value("")
    expect(page.get_by_role("switch", name="Visual")).to_be_checked()
    expect(page.locator("#min-score")).to_have_value("0")
    expect(page.locator("#reference")).to_be_hidden()
    assert page.locator(".card .score").count() == 0
    shot(page, "url-03-back-to-library")


def test_back_returns_to_the_same_place_in_the_library(page, live):
    target = page.locator(".card").nth(-2)
    target.scroll_into_view_if_needed()
    target.click(button="right")
    y = page.evaluate("window.scrollY")
    assert y > 100
    page.keyboard.press("Enter")  # Find similar images, the first item
    wait_results(page)
    assert page.evaluate("window.scrollY") == 0  # a new view starts at the top
    page.go_back()
    wait_address(page, live, "/")
    page.wait_for_function(f"Math.abs(window.scrollY - {y}) <= 2")


def test_a_shared_search_link_opens_the_same_results(fresh, live):
    shared = fresh(f"/?q={COFFEE}&visual=1")  # typed or pasted: spaces as %20
    wait_results(shared)
    assert card_names(shared)[0] == "coffee-cup.jpg"
    expect(shared.locator("#search-input")).to_have_value(COFFEE)
    expect(shared.get_by_role("switch", name="Visual")).to_be_checked()
    wait_address(shared, live, "/?q=a+cup+of+coffee&visual=1")
    shot(shared, "url-04-shared-link")

    banana = asset_id(live, "banana-drawing.jpg")
    similar = fresh(f"/?similar={banana}")  # the reference image is looked up by its id
    wait_results(similar)
    expect(similar.locator("#reference-name")).to_have_text("banana-drawing.jpg")
    similar.wait_for_function("document.getElementById('reference-image').naturalWidth > 0")
    expect(similar.get_by_role("switch", name="Visual")).not_to_be_checked()
    assert "banana-drawing.jpg" not in card_names(similar)
    shot(similar, "url-05-shared-similar")


def test_search_by_image_link_is_addressable(page, live, photo_host):
    page.click("#camera-button")
    page.fill("#image-url", photo_host)
    page.click("#url-form button[type=submit]")
    wait_results(page)
    assert query(page) == {"image_url": photo_host}
    names = card_names(page)
    assert names[0] == "sports-car-drawing.jpg"
    page.reload()
    wait_results(page)
    expect(page.locator("#reference-name")).to_have_text(photo_host)
    assert card_names(page) == names


def test_search_by_file_has_a_history_entry_but_no_address(page, live, library_photos):
    start = history_length(page)
    page.click("#camera-button")
    page.set_input_files("#search-file", str(library_photos / "cat-chelsea.jpg"))
    wait_results(page)
    expect(page.locator("#reference-name")).to_have_text("cat-chelsea.jpg")
    assert page.url == live.url + "/" and history_length(page) == start + 1
    page.go_back()
    expect_library(page, library_photos)
    page.go_forward()  # the file is still in the page: the search comes back
    wait_results(page)
    expect(page.locator("#reference-name")).to_have_text("cat-chelsea.jpg")
    assert card_names(page)[0] == "cat-chelsea.jpg"
    page.reload()  # a file cannot be in an address: the library
    expect_library(page, library_photos)


def test_the_duplicates_view_is_addressable(page, live, fresh, library_photos):
    page.click("#nav-duplicates")
    wait_address(page, live, "/?view=duplicates")
    expect(page.locator(".dup-group").first).to_be_visible()
    expect(page.locator("#nav-duplicates")).to_have_attribute("aria-current", "page")
    page.click("#nav-library")
    wait_address(page, live, "/")
    expect_library(page, library_photos)
    page.go_back()
    expect(page.locator("#dups-heading")).to_be_visible()
    expect(page.locator("#search-form")).to_be_hidden()
    page.go_forward()
    expect(page.locator("#heading")).to_have_text("Library")
    expect(page.locator("#dups-heading")).to_be_hidden()

    for path in ("/?view=duplicates", "/#/duplicates"):  # and the old address
        direct = fresh(path)
        expect(direct.locator(".dup-group").first).to_be_visible()
        expect(direct.locator("#dups-summary")).to_contain_text("1 group · 2 extra images")
        expect(direct.locator(".dup-item.keeper .name")).to_have_text(DUPLICATED)
        wait_address(direct, live, "/?view=duplicates")
        assert direct.title() == "Duplicates · visualsearch"
    shot(direct, "url-06-duplicates")


@pytest.mark.parametrize(
    "path",
    [
        "/?similar=abc",
        "/?similar=-3",
        "/?similar=1.5",
        "/?min=9",
        "/?min=0.5",  # a minimum score alone: nothing to filter
        "/?view=trash",  # no such view on this page
        "/?view=nonsense&page=2",
        "/?image_url=javascript:alert(1)",
        "/?image_url=",
        "/?q=",
        "/?visual=yes",
        "/?q=%20%20",
    ],
)
def test_invalid_addresses_show_the_library(fresh, live, library_photos, path):
    p = fresh(path)
    expect_library(p, library_photos)
    wait_address(p, live, "/")  # the address is tidied up to what is shown
    assert p.locator(".card").count() == library_count(library_photos)


def test_an_unknown_image_id_shows_the_library_with_a_note(fresh, live, library_photos):
    p = fresh("/?similar=999999")
    expect(p.locator(".toast")).to_contain_text("Image #999999 is not in the library.")
    expect_library(p, library_photos)
    wait_address(p, live, "/")


def test_an_invalid_minimum_score_is_ignored_but_the_search_runs(fresh, live):
    p = fresh(f"/?q={COFFEE}&visual=1&min=9")
    wait_results(p)
    assert card_names(p)[0] == "coffee-cup.jpg"
    expect(p.locator("#min-score")).to_have_value("0")
    wait_address(p, live, "/?q=a+cup+of+coffee&visual=1")


def test_the_minimum_score_survives_reload(page, live):
    start = history_length(page)
    text_search(page, "a drawing of a banana")
    before = scores(page)
    cut = round(before[2], 2)
    set_min_score(page, cut)
    page.wait_for_function(f"document.querySelectorAll('.card .score').length < {len(before)}")
    wait_results(page)
    wait_address(page, live, f"/?q=a+drawing+of+a+banana&visual=1&min={cut}")
    names = card_names(page)
    set_min_score(page, cut)  # adjusting again folds into the same entry
    assert history_length(page) == start + 2  # the search, the minimum score

    page.reload()
    wait_results(page)
    expect(page.locator("#min-score")).to_have_value(str(cut))
    expect(page.locator("#min-score-value")).to_have_text(f"{cut:.2f}")
    expect(page.locator("#min-score-box")).to_be_visible()
    assert card_names(page) == names and all(s >= cut for s in scores(page))
    shot(page, "url-07-min-score-reloaded")


def test_addresses_work_under_the_content_security_policy(fresh, live, library_photos):
    """History, Back and Forward with the page's CSP enforced: no violation, no script error."""
    p = fresh(f"/?q={COFFEE}&visual=1", csp=True)
    wait_results(p)
    p.locator(".card").first.click(button="right")
    p.get_by_role("menuitem", name="Find similar images").click()
    expect(p.locator("#heading")).to_have_text("Similar images")
    wait_results(p)
    p.go_back()
    expect(p.locator("#heading")).to_have_text("Visual search")
    expect(p.locator("#search-input")).to_have_value(COFFEE)
    p.click("#nav-duplicates")
    expect(p.locator(".dup-group").first).to_be_visible()
    p.go_back()
    wait_results(p)
    expect(p.locator("#heading")).to_have_text("Visual search")
    p.click("#nav-library")
    expect_library(p, library_photos)
    p.wait_for_timeout(300)
