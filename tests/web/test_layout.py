"""The page's layout on phones (360x740, 390x844) and on a desktop (1280x800), in headless Chromium.

Issue 15, item 5: at 390 px the page was 425 px wide and scrolled sideways, the "Visual" switch read
"Visu", the dialogs did not fit, the Find similar header gave the reference name 0 px (one
character per line) and card names were cut to ~16 characters. Each state is measured in the page
(no sideways overflow, key controls inside the viewport and not clipped, dialogs inside the
viewport with their content reachable, names readable) and photographed into
test-artifacts/screenshots/layout-<width>-<state>.png.
"""

from __future__ import annotations

import pytest

from tests.support.web import open_page

# The live server on the 24 sample photos (real model), Chromium and the helpers of the page's own tests.
from tests.web.test_web import (  # noqa: F401 (fixtures)
    browser,
    card_names,
    library_photos,
    live,
    shot,
    sync_api,
    visual_on,
    wait_results,
)

pytestmark = pytest.mark.slow  # Chromium, the real model and a live server

PHONES = [(360, 740), (390, 844)]
DESKTOP = (1280, 800)
SIZES = [*PHONES, DESKTOP]

# Why an element is not fully visible: outside the device's viewport [width, height], clipped by an
# ancestor that hides or scrolls its overflow, or its own content cut (scroll size > client size).
# An empty list: visible. (The device's width, not innerWidth: a phone zooms out a page wider than
# its screen, and innerWidth then grows to the page's width.)
PROBLEMS = """(el, [vw, vh]) => {
  const r = el.getBoundingClientRect(), px = (v) => Math.round(v);
  const problems = [];
  if (r.width < 1 || r.height < 1) return ['has no size'];
  if (r.left < -0.5 || r.top < -0.5 || r.right > vw + 0.5 || r.bottom > vh + 0.5)
    problems.push(`outside the ${vw}x${vh} viewport: `
                  + `x ${px(r.left)}..${px(r.right)}, y ${px(r.top)}..${px(r.bottom)}`);
  for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
    const s = getComputedStyle(a);
    if (s.overflowX === 'visible' && s.overflowY === 'visible') continue;
    const b = a.getBoundingClientRect();
    if (r.left < b.left - 0.5 || r.right > b.right + 0.5 || r.top < b.top - 0.5 || r.bottom > b.bottom + 0.5)
      problems.push(`clipped by <${a.tagName.toLowerCase()} id="${a.id}" class="${a.className}">`);
  }
  if (el.tagName !== 'INPUT' && el.scrollWidth > el.clientWidth + 1)  // a text field scrolls its text
    problems.push(`content cut: scrollWidth ${el.scrollWidth} > clientWidth ${el.clientWidth}`);
  if (el.tagName !== 'INPUT' && el.scrollHeight > el.clientHeight + 1)
    problems.push(`content cut: scrollHeight ${el.scrollHeight} > clientHeight ${el.clientHeight}`);
  return problems;
}"""

# How much of an element's text shows: characters laid out inside its box, and on how many lines.
TEXT = """(el) => {
  const box = el.getBoundingClientRect(), node = el.firstChild, range = document.createRange();
  let shown = 0; const tops = new Set();
  for (let i = 0; node && i < node.length; i++) {
    range.setStart(node, i); range.setEnd(node, i + 1);
    const c = range.getBoundingClientRect();
    if (c.width > 0 && c.left >= box.left - 0.5 && c.right <= box.right + 0.5 && c.bottom <= box.bottom + 0.5) {
      shown++; tops.add(Math.round(c.top));
    }
  }
  return {text: el.textContent, title: el.title, shown, lines: tops.size, width: Math.round(box.width)};
}"""

BOX = """(el) => { const r = el.getBoundingClientRect(), s = getComputedStyle(el);
  return {left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width, height: r.height,
          scrollWidth: el.scrollWidth, clientWidth: el.clientWidth, scrollHeight: el.scrollHeight,
          clientHeight: el.clientHeight, overflowY: s.overflowY}; }"""


@pytest.fixture(params=SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def page(request, browser, live):  # noqa: F811 (the imported fixtures)
    """The page at one size; phones as a touch device with a mobile viewport, as on a phone."""
    width, height = request.param
    phone = (width, height) in PHONES
    with open_page(
        browser, live.url + "/", viewport={"width": width, "height": height}, is_mobile=phone, has_touch=phone
    ) as page:
        yield page


def width(page) -> int:
    return page.viewport_size["width"]


def is_phone(page) -> bool:
    return width(page) < 600


def layout_shot(page, state: str) -> None:
    shot(page, f"layout-{width(page)}-{state}")


def assert_no_sideways_scroll(page) -> None:
    sizes = page.evaluate("({doc: document.documentElement.scrollWidth, body: document.body.scrollWidth, innerWidth})")
    screen = min(sizes["innerWidth"], width(page))  # a phone zooms out a wider page: innerWidth grows
    assert sizes["doc"] <= screen and sizes["body"] <= screen, f"the page is wider than the {screen}px screen: {sizes}"
    assert page.evaluate("innerWidth") == width(page), "the phone zoomed the page out"


def assert_fully_visible(page, selector: str) -> None:
    viewport = page.viewport_size
    problems = page.locator(selector).first.evaluate(PROBLEMS, [viewport["width"], viewport["height"]])
    assert problems == [], f"{selector} at {page.viewport_size}: {problems}"


def assert_top_bar_controls_visible(page) -> None:
    for selector in ("#search-input", "#camera-button", ".visual-toggle", ".toggle-label", "#upload-button"):
        assert_fully_visible(page, selector)
    label = page.locator(".toggle-label")
    assert label.inner_text() == "Visual"
    text = label.evaluate(TEXT)
    assert text["shown"] == len("Visual"), f"the switch's label reads only {text['shown']} of 6 letters"
    if page.locator("#min-score-box").is_visible():
        assert_fully_visible(page, "#min-score")


def assert_card_names_readable(page) -> None:
    names = page.locator(".card .name").evaluate_all(f"(els) => els.map({TEXT})")
    assert names
    for name in names:
        assert name["title"] == name["text"], f"no full name on hover: {name}"
        # Before: one line of ~16 characters with an ellipsis. Now two lines show 20 or more.
        assert name["shown"] >= min(len(name["text"]), 20), f"card name cut: {name}"
        assert name["lines"] <= 2, name


def assert_dialog_fits(page, selector: str) -> None:
    box = page.locator(selector).evaluate(BOX)
    viewport = page.viewport_size
    assert box["width"] > 0 and box["height"] > 0
    assert box["left"] >= 0 and box["top"] >= 0, box
    assert box["right"] <= viewport["width"] and box["bottom"] <= viewport["height"], (box, viewport)
    assert box["scrollWidth"] <= box["clientWidth"], f"{selector} scrolls sideways: {box}"
    if box["scrollHeight"] > box["clientHeight"] + 1:  # taller than the screen: it scrolls inside
        assert box["overflowY"] in ("auto", "scroll"), f"{selector} cuts its content: {box}"


def test_library_grid(page):
    assert_no_sideways_scroll(page)
    assert_top_bar_controls_visible(page)
    for selector in ("#nav-library", "#nav-duplicates", "#heading"):
        assert_fully_visible(page, selector)
    assert_card_names_readable(page)
    if is_phone(page):
        cards = page.locator(".card").evaluate_all(
            "(els) => els.slice(0, 2).map((e) => e.getBoundingClientRect().width)"
        )
        assert min(cards) >= 140  # two columns of real thumbnails, not slivers
    page.wait_for_function("document.querySelector('.card img').naturalWidth > 0")
    layout_shot(page, "library")


def test_text_search_with_results(page):
    visual_on(page)
    assert_fully_visible(page, ".toggle-label")  # the checked label, in the accent colour
    page.fill("#search-input", "a cup of coffee")
    page.press("#search-input", "Enter")
    wait_results(page)
    assert card_names(page)[0] == "coffee-cup.jpg"
    assert_no_sideways_scroll(page)
    assert_top_bar_controls_visible(page)
    assert_card_names_readable(page)
    assert_fully_visible(page, ".card .score")
    layout_shot(page, "search")


def test_find_similar_header(page):
    target = page.locator(".card", has=page.locator(".name", has_text="elephants-painting.jpg"))
    target.scroll_into_view_if_needed()
    target.locator(".menu-button").click()
    sync_api.expect(page.locator("#menu")).to_be_visible()
    assert_fully_visible(page, "#menu")
    layout_shot(page, "card-menu")
    page.get_by_role("menuitem", name="Find similar images").click()
    wait_results(page)
    sync_api.expect(page.locator("#reference-name")).to_have_text("elephants-painting.jpg")
    page.wait_for_function("document.getElementById('reference-image').naturalWidth > 0")

    assert_no_sideways_scroll(page)
    assert_top_bar_controls_visible(page)
    for selector in ("#reference", "#reference-image", "#reference-kind", "#reference-name", "#back-button"):
        assert_fully_visible(page, selector)
    name = page.locator("#reference-name").evaluate(TEXT)
    assert name["title"] == "elephants-painting.jpg"
    assert name["width"] >= 100, f"the reference name column is {name['width']} px wide"
    assert name["shown"] == len(name["text"]) and name["lines"] <= 2, name
    # The results start on the first screen, not two screens down under a tall header.
    grid_top = page.locator("#grid").evaluate("(e) => e.getBoundingClientRect().top + scrollY")
    assert grid_top < page.viewport_size["height"] * 0.75, f"results start at y={grid_top}"
    assert_card_names_readable(page)
    layout_shot(page, "find-similar")

    page.click("#back-button")
    sync_api.expect(page.locator("#reference")).to_be_hidden()
    assert_no_sideways_scroll(page)


def test_a_long_reference_name_takes_two_lines_at_most(page, library_photos, tmp_path):  # noqa: F811
    long = tmp_path / "holiday-2024-07-14-beach-sunset-with-the-whole-family-IMG_20240714_203512345.jpg"
    long.write_bytes((library_photos / "cat-chelsea.jpg").read_bytes())
    page.click("#camera-button")
    page.set_input_files("#search-file", str(long))
    wait_results(page)
    sync_api.expect(page.locator("#reference-name")).to_have_text(long.name)
    assert_no_sideways_scroll(page)
    name = page.locator("#reference-name").evaluate(TEXT)
    assert name["title"] == long.name  # the whole name on hover
    assert name["width"] >= 100 and name["lines"] <= 2, name
    assert name["shown"] >= min(len(long.name), 40), name
    assert_fully_visible(page, "#back-button")
    layout_shot(page, "long-reference-name")


def test_search_by_image_dialog(page):
    page.click("#camera-button")
    dialog = page.locator("#image-dialog")
    sync_api.expect(dialog).to_be_visible()
    assert_dialog_fits(page, "#image-dialog")
    for selector in (
        "#image-dialog-title",
        "#image-dialog .dialog-head .icon-button",
        "#image-url",
        "#url-form button[type=submit]",
        "#drop-zone",
        "#pick-file",
    ):
        assert_fully_visible(page, selector)
    assert_no_sideways_scroll(page)
    layout_shot(page, "image-dialog")
    page.keyboard.press("Escape")
    sync_api.expect(dialog).to_be_hidden()


def test_asset_details_dialog(page):
    page.locator(".card", has=page.locator(".name", has_text="beagle-dog-drawing.jpg")).locator(".thumb").click()
    dialog = page.locator("#asset-dialog")
    sync_api.expect(dialog).to_be_visible()
    sync_api.expect(page.locator("#asset-meta")).to_contain_text("Dimensions")
    page.wait_for_function("document.getElementById('asset-image').naturalWidth > 0")
    assert_dialog_fits(page, "#asset-dialog")
    for selector in ("#asset-image", "#asset-title", "#asset-dialog .dialog-head .icon-button"):
        assert_fully_visible(page, selector)
    assert_no_sideways_scroll(page)
    layout_shot(page, "asset")

    # What does not fit is reachable by scrolling inside the dialog, as a person does (the wheel
    # over the details), and the dialog itself stays where it was.
    meta = page.locator("#asset-meta").bounding_box()
    page.mouse.move(meta["x"] + meta["width"] / 2, meta["y"] + meta["height"] / 2)
    page.mouse.wheel(0, 3000)
    page.wait_for_timeout(300)
    for selector in ("#tags-input", "#tags-form button[type=submit]", "#asset-similar", "#asset-download"):
        assert_fully_visible(page, selector)
    assert_dialog_fits(page, "#asset-dialog")
    layout_shot(page, "asset-scrolled")
    page.keyboard.press("Escape")
    sync_api.expect(dialog).to_be_hidden()


def test_duplicates_view(page):
    page.click("#nav-duplicates")
    group = page.locator(".dup-group").first
    sync_api.expect(group).to_be_visible()
    page.wait_for_function("[...document.querySelectorAll('.dup-item img')].every(i => i.naturalWidth > 0)")
    assert_no_sideways_scroll(page)
    selectors = ["#dups-heading", "#nav-library", ".dup-group h2", ".dup-group .danger-button", ".dup-item .name"]
    if page.locator("#dups-trash-all").is_visible():
        selectors.append("#dups-trash-all")
    for selector in selectors:
        assert_fully_visible(page, selector)
    assert_fully_visible(page, ".dup-item.keeper .tag")
    layout_shot(page, "duplicates")
