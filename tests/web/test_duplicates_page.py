"""The Duplicates view's three tabs and the upload warnings, in headless Chromium against a live server.

Issue 14: exact copies and near-duplicates ("Duplicates", extras selected), look-alikes ("Similar
shots", nothing selected), the trash (batches, Restore), counts and numbering fetched again after
every move, and uploads that copy an image already in the library name it with its thumbnail and a
link. The library is a few drawn pictures and the tiny test model (TinyEmbedder: the mean colour
of each quadrant), so every test builds its own server in about a second. Screenshots go to
test-artifacts/screenshots/dups-*.png.
"""

from __future__ import annotations

import io
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from tests.support.embedders import TinyEmbedder
from tests.support.images import gradient_image
from tests.support.live import LiveServer
from tests.support.web import open_page
from tests.web.test_layout import assert_fully_visible, assert_no_sideways_scroll
from tests.web.test_web import browser, shot, sync_api  # noqa: F401 (the browser fixture)
from visualsearch.api import create_app
from visualsearch.api.routes import duplicates as duplicate_routes
from visualsearch.config import Settings

pytestmark = pytest.mark.slow  # Chromium

expect = sync_api.expect
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
INJECTED_REASON = "largest (400×300)"  # when the finder does not give a keeper reason (yet)


def landscape(top, bottom, horizon: float, sun=None, size=(400, 300)) -> Image.Image:
    """Sky over ground, with a sun: pictures whose quadrant colours (what the tiny model sees) we choose."""
    w, h = size
    im = Image.new("RGB", size, top)
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, int(h * horizon), w, h), fill=bottom)
    if sun:
        x, y, r, colour = sun
        draw.ellipse((x * w - r, y * h - r, x * w + r, y * h + r), fill=colour)
    return im


def shore(sea, sand, size=(400, 300)) -> Image.Image:
    """Sea on the left, sand on the right: looks like beach-1 to the tiny model (0.80), not a copy."""
    w, h = size
    im = Image.new("RGB", size, sea)
    draw = ImageDraw.Draw(im)
    draw.rectangle((w // 2, 0, w, h), fill=sand)
    draw.ellipse((0.25 * w - 40, 0.3 * h - 40, 0.25 * w + 40, 0.3 * h + 40), fill=(255, 255, 255))
    return im


VIOLET = landscape((120, 0, 200), (0, 0, 0), 0.6, sun=(0.5, 0.5, 40, (200, 0, 255)))


FOREST_COPY = "holiday-backup-2019__pictures__second-drive__landscapes__forest-copy.png"


def make_library(folder: Path) -> None:
    """Two groups of copies (sunset: a byte copy and a half-size JPEG; forest: a byte copy), two
    look-alike beach pictures that are different pictures, and an unrelated violet one."""
    folder.mkdir(parents=True)
    sunset = landscape((250, 60, 0), (40, 0, 0), 0.5, sun=(0.3, 0.4, 50, (255, 230, 0)))
    sunset.save(folder / "sunset.png")
    sunset.resize((200, 150)).save(folder / "sunset-small.jpg", quality=80)
    shutil.copy(folder / "sunset.png", folder / "sunset-copy.png")
    landscape((0, 200, 0), (0, 80, 0), 0.3, size=(300, 200)).save(folder / "forest.png")
    # A long name, as files flattened from folders get: its end is what tells it apart.
    shutil.copy(folder / "forest.png", folder / FOREST_COPY)
    landscape((0, 90, 255), (240, 220, 150), 0.55, sun=(0.8, 0.2, 30, (255, 255, 255))).save(folder / "beach-1.png")
    shore((0, 80, 255), (250, 210, 110)).save(folder / "beach-2.png")
    VIOLET.save(folder / "violet.png")


@pytest.fixture
def live(tmp_path):
    folder = tmp_path / "pictures"
    make_library(folder)
    app = create_app(Settings.from_env(tmp_path / "lib", decode_workers=1), embedder=TinyEmbedder(), require_keys=False)
    app.state.server.library.index_folder(folder)
    with LiveServer(app) as server:
        server.wait_ready()
        server.folder = folder
        yield server


@contextmanager
def open_at(browser, url: str, viewport=DESKTOP, **options):  # noqa: F811
    """A page in its own browser context, opened on any view (phones as touch devices); no script errors allowed."""
    phone = viewport["width"] < 600
    with open_page(browser, url, wait_for=None, viewport=viewport, is_mobile=phone, has_touch=phone, **options) as page:
        yield page


def address(page, live) -> str:
    return page.url.removeprefix(live.url)


def thumbnails_loaded(page, selector: str = ".dup-item img") -> None:
    page.wait_for_function(f"[...document.querySelectorAll('{selector}')].every(i => i.complete && i.naturalWidth > 0)")


def group(page, name: str):
    return page.locator(".dup-group", has=page.locator(".name", has_text=name))


def confirm(page, label: str) -> None:
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()  # the styled dialog, not the browser's confirm()
    dialog.get_by_role("button", name=label).click()
    expect(dialog).to_be_hidden()


def trash_via_api(live, names: list[str]) -> str:
    with live.client() as api:
        ids = {a["name"]: a["id"] for a in api.get("/api/assets", params={"limit": 100}).json()["items"]}
        return api.post("/api/duplicates/trash", json={"asset_ids": [ids[n] for n in names]}).json()["batch"]


def with_keeper_reason(page) -> dict[str, str]:
    """Answers of /api/duplicates get a keeper reason when the finder gives none; returns keeper -> reason."""
    reasons: dict[str, str] = {}

    def handle(route):
        response = route.fetch()
        body = response.json()
        for g in body["items"]:
            g["keeper_reason"] = g.get("keeper_reason") or INJECTED_REASON
            reasons[g["keeper"]["asset"]["name"]] = g["keeper_reason"]
        route.fulfill(response=response, json=body)

    page.route(re.compile(r".*/api/duplicates\?.*"), handle)
    return reasons


def test_duplicates_tab_shows_tiers_and_the_keeper_reason_and_refreshes_after_a_move(browser, live):  # noqa: F811
    with open_at(browser, "about:blank") as page:
        reasons = with_keeper_reason(page)
        page.goto(live.url + "/?view=duplicates")
        expect(page.locator("#dups-summary")).to_have_text("2 groups · 3 extra images")
        expect(page.locator("#tab-copies")).to_have_attribute("aria-current", "page")
        expect(page.locator("#count-copies")).to_have_text("3")
        expect(page.locator("#count-trash")).to_have_text("")  # nothing in the trash yet
        headings = page.locator(".dup-group h2")
        expect(headings).to_have_text(["Group 1 · 3 images", "Group 2 · 2 images"])
        sunset, forest = group(page, "sunset.png"), group(page, "forest.png")
        expect(sunset.locator(".tier")).to_have_text("Exact copies and near-duplicates")
        expect(forest.locator(".tier")).to_have_text("Exact copies")
        keeper = sunset.locator(".dup-item.keeper")
        expect(keeper.locator(".tag")).to_have_text("Keep")
        expect(keeper.locator(".name")).to_have_text("sunset.png")
        expect(keeper.locator(".keep-reason")).to_have_text(f"Keep: {reasons['sunset.png']}")
        kinds = dict(
            zip(
                sunset.locator(".dup-item:not(.keeper) .name").all_inner_texts(),
                sunset.locator(".dup-item:not(.keeper) .tag").all_inner_texts(),
            )
        )
        # A copy's badge is its tier (said once: no chip repeats it); the model's similarity is a detail under it.
        assert kinds == {"sunset-copy.png": "Same file", "sunset-small.jpg": "Near-duplicate"}
        expect(sunset.locator(".dup-item .kind")).to_have_count(0)
        expect(sunset.locator(".dup-item:not(.keeper) .model-similarity")).to_have_text(
            [re.compile(r"Model similarity \d+%")] * 2
        )
        # A long name keeps its end ("…forest-copy.png"), with the whole path in its tooltip.
        long_name = forest.locator(".dup-item:not(.keeper) .name")
        expect(long_name).to_have_text(re.compile(r"^holiday-backup.*….*landscapes__forest-copy\.png$"))
        assert long_name.get_attribute("title").endswith(FOREST_COPY)
        boxes = page.locator(".dup-item .pick input")
        assert boxes.count() == 3 and all(boxes.nth(i).is_checked() for i in range(3))  # extras selected
        assert keeper.locator(".pick").count() == 0  # the keeper cannot be ticked
        thumbnails_loaded(page)
        shot(page, "dups-01-copies")

        # Move the first group's extras: the forest group becomes group 1 and the counts follow.
        sunset.get_by_role("button", name="Move selected to trash").click()
        confirm(page, "Move 2 images to trash")
        expect(page.locator(".toast")).to_contain_text("Moved 2 images to the trash")
        expect(headings).to_have_text(["Group 1 · 2 images"])
        expect(page.locator("#dups-summary")).to_have_text("1 group · 1 extra image")
        expect(page.locator("#count-copies")).to_have_text("1")
        expect(page.locator("#count-trash")).to_have_text("2")
        expect(group(page, "forest.png").locator(".dup-item.keeper .keep-reason")).to_have_text(
            f"Keep: {reasons['forest.png']}"
        )

        # Untick, then move only what is ticked: nothing, then the last extra.
        forest = group(page, "forest.png")
        forest.locator(".pick input").uncheck()
        forest.get_by_role("button", name="Move selected to trash").click()
        expect(page.locator(".toast", has_text="Nothing selected")).to_be_visible()
        page.click("#dups-trash-all")
        expect(page.locator(".toast", has_text="Nothing selected")).to_have_count(2)
        forest.locator(".pick input").check()
        page.click("#dups-trash-all")
        confirm(page, "Move 1 image to trash")
        expect(page.locator("#dups-empty")).to_be_visible()
        expect(page.locator("#dups-empty")).to_contain_text("No duplicates found")
        expect(page.locator("#dups-summary")).to_have_text("")
        expect(page.locator("#dups-trash-all")).to_be_hidden()
        expect(page.locator("#count-copies")).to_have_text("")
        expect(page.locator("#count-trash")).to_have_text("3")
        assert sorted(p.name for p in live.folder.iterdir()) == [
            "beach-1.png",
            "beach-2.png",
            "forest.png",
            "sunset.png",
            "violet.png",
        ]


def test_similar_shots_select_nothing_and_say_they_are_different_pictures(browser, live):  # noqa: F811
    with open_at(browser, live.url + "/?view=duplicates&tab=similar") as page:
        beach = group(page, "beach-1.png")
        expect(beach).to_be_visible()
        expect(page.locator("#tab-similar")).to_have_attribute("aria-current", "page")
        assert page.title() == "Similar shots · visualsearch"
        expect(page.locator("#dups-heading")).to_have_text("Similar shots")  # it had kept "Duplicates"
        expect(page.locator("#explain-similar")).to_be_visible()
        expect(page.locator("#explain-similar")).to_contain_text("Different pictures that look alike")
        expect(page.locator("#explain-similar")).to_contain_text("nothing is selected")
        expect(page.locator("#explain-copies")).to_be_hidden()
        expect(beach.locator(".tier")).to_have_text("Different pictures that look alike")
        expect(beach.locator(".dup-item")).to_have_count(2)
        assert sorted(beach.locator(".dup-item .name").all_inner_texts()) == ["beach-1.png", "beach-2.png"]
        other = beach.locator(".dup-item:not(.reference-shot) .name").inner_text()
        expect(beach.locator(".dup-item:not(.reference-shot) .kind")).to_have_text(["Look-alike"])
        expect(page.locator(".dup-item.keeper")).to_have_count(0)  # no image "to keep" among different pictures
        boxes = page.locator(".dup-item .pick input")
        assert boxes.count() >= 2
        assert not any(boxes.nth(i).is_checked() for i in range(boxes.count())), "a look-alike is pre-ticked"
        thumbnails_loaded(page)
        shot(page, "dups-02-similar")

        page.click("#dups-trash-all")
        expect(page.locator(".toast", has_text="Nothing selected")).to_be_visible()
        beach.get_by_role("checkbox", name=f"Move {other} to trash").check()
        beach.get_by_role("button", name="Move selected to trash").click()
        confirm(page, "Move 1 image to trash")
        expect(page.locator(".toast", has_text="Moved 1 image to the trash")).to_be_visible()
        expect(group(page, "beach-1.png")).to_have_count(0)  # a group of one is no group
        expect(page.locator("#count-trash")).to_have_text("1")
        assert address(page, live) == "/?view=duplicates&tab=similar"
        assert not (live.folder / other).exists()


def test_trash_tab_restores_a_batch_and_the_images_come_back(browser, live):  # noqa: F811
    batch = trash_via_api(live, ["sunset-copy.png", "sunset-small.jpg"])
    with open_at(browser, live.url + "/?view=duplicates") as page:
        expect(page.locator("#dups-summary")).to_have_text("1 group · 1 extra image")
        expect(page.locator("#count-trash")).to_have_text("2")
        page.click("#tab-trash")
        expect(page.locator(".trash-batch")).to_have_count(1)
        assert address(page, live) == "/?view=duplicates&tab=trash"
        assert page.title() == "Trash · visualsearch"
        item = page.locator(".trash-batch").first
        expect(item.locator("h2")).to_contain_text("2 images moved")
        expect(item.locator(".batch-id")).to_have_text(f"Batch {batch}")
        expect(item.locator(".trash-files .name")).to_have_text(["sunset-copy.png", "sunset-small.jpg"])
        expect(item.locator(".trash-thumb")).to_have_count(2)  # what each moved file looks like
        thumbnails_loaded(page, ".trash-thumb")
        expect(page.locator("#dups-summary")).to_have_text("1 move · 2 images in the trash")
        expect(page.locator("#dups-trash-all")).to_be_hidden()
        shot(page, "dups-03-trash")

        # Reload keeps the tab; Back returns to the Duplicates tab.
        page.reload()
        expect(page.locator(".trash-batch")).to_have_count(1)
        expect(page.locator("#tab-trash")).to_have_attribute("aria-current", "page")
        page.go_back()
        expect(page.locator(".dup-group")).to_have_count(1)
        expect(page.locator("#tab-copies")).to_have_attribute("aria-current", "page")
        page.go_forward()
        item = page.locator(".trash-batch").first

        # Cancel first: nothing happens.
        item.get_by_role("button", name=re.compile("^Restore 2 images")).click()
        dialog = page.locator("#confirm-dialog")
        expect(dialog.locator("#confirm-ok")).to_have_class("primary-button")  # restoring loses nothing
        shot(page, "dups-04-restore-confirm")
        dialog.get_by_role("button", name="Cancel").click()
        assert not (live.folder / "sunset-copy.png").exists()

        item.get_by_role("button", name=re.compile("^Restore 2 images")).click()
        confirm(page, "Restore 2 images")
        expect(page.locator(".toast", has_text="Restored 2 images to the library")).to_be_visible()
        expect(item.locator(".batch-state")).to_have_text("Restored")
        expect(item.get_by_role("button", name=re.compile("^Restore"))).to_have_count(0)
        expect(page.locator("#count-trash")).to_have_text("")
        expect(page.locator("#count-copies")).to_have_text("3")  # copies again
        expect(page.locator("#dups-summary")).to_have_text("1 move · 0 images in the trash")
        assert (live.folder / "sunset-copy.png").exists() and (live.folder / "sunset-small.jpg").exists()
        shot(page, "dups-05-restored")

        page.click("#nav-library")
        expect(page.locator("#summary")).to_have_text("8 images")
        names = page.locator(".card .name").all_inner_texts()
        assert "sunset-copy.png" in names and "sunset-small.jpg" in names


def _jpeg(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", **kw)
    return buf.getvalue()


def test_uploading_a_copy_names_the_image_already_there_with_its_thumbnail(browser, live, tmp_path):  # noqa: F811
    near = tmp_path / "violet-small.jpg"
    near.write_bytes(_jpeg(VIOLET.resize((200, 150)), quality=80))
    exact = tmp_path / "violet-again.png"
    shutil.copy(live.folder / "violet.png", exact)
    with live.client() as api:
        violet = next(a for a in api.get("/api/assets", params={"q": "violet"}).json()["items"])
    with open_at(browser, live.url + "/") as page:
        page.wait_for_selector(".card img")
        page.set_input_files("#upload-input", [str(near), str(exact)])
        page.wait_for_function("document.querySelectorAll('.upload-item.done, .upload-item.failed').length === 2")

        warned = page.locator(".upload-item", has=page.locator(".file", has_text="violet-small.jpg"))
        expect(warned).to_have_class(re.compile(r"\bwarned\b"))
        expect(warned.locator(".state")).to_have_text("Added")  # added all the same (the warn policy)
        match = warned.locator(".upload-match.warning")
        expect(match.locator(".match-what")).to_contain_text(re.compile(r"Near-duplicate \(\d+% similar\) of"))
        link = match.locator("a.match-name")
        expect(link).to_have_text("violet.png")
        expect(link).to_have_attribute("href", f"/?similar={violet['id']}")
        page.wait_for_function(
            "[...document.querySelectorAll('.upload-match img')].every(i => i.complete && i.naturalWidth > 0)"
        )
        assert match.locator("img").get_attribute("src") == violet["thumbnail_url"]

        failed = page.locator(".upload-item", has=page.locator(".file", has_text="violet-again.png"))
        expect(failed.locator(".reason")).to_have_text("Already in the library (the same file): not added again.")
        expect(failed.locator(".match-what")).to_have_text("Same file as")
        expect(failed.locator("a.match-name")).to_have_text("violet.png")
        shot(page, "dups-06-upload-warnings")

        failed.locator(".match-thumb").click()  # the thumbnail opens the existing image's details
        expect(page.locator("#asset-dialog")).to_be_visible()
        expect(page.locator("#asset-title")).to_have_text("violet.png")
        page.keyboard.press("Escape")
        link.click()  # the name shows the images like it, the new upload among them
        expect(page.locator("#reference-name")).to_have_text("violet.png")
        expect(page.locator(".card .name").first).to_have_text("violet-small.jpg")
        assert address(page, live) == f"/?similar={violet['id']}"


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["360", "1280"])
def test_the_new_views_fit_the_screen(browser, live, tmp_path, viewport):  # noqa: F811
    trash_via_api(live, [FOREST_COPY])
    size = viewport["width"]
    with open_at(browser, live.url + "/?view=duplicates", viewport=viewport) as page:
        for tab, ready in (("copies", ".dup-group"), ("similar", ".dup-group"), ("trash", ".trash-batch")):
            if tab != "copies":
                page.click(f"#tab-{tab}")
            expect(page.locator(f"#tab-{tab}")).to_have_attribute("aria-current", "page")
            expect(page.locator(ready).first).to_be_visible()
            expect(page.locator("#dups-loading")).to_be_hidden()
            thumbnails_loaded(page, ".trash-thumb" if tab == "trash" else ".dup-item img")
            assert_no_sideways_scroll(page)
            # Every name is shown to its end (the end tells copies apart): nothing clipped.
            names = "[...document.querySelectorAll('.dup-item .name')]"
            clipped = page.evaluate(f"{names}.filter(e => e.scrollHeight > e.clientHeight + 1).length")
            assert clipped == 0
            for selector in ("#tab-copies", "#tab-similar", "#tab-trash", "#dups-heading"):
                assert_fully_visible(page, selector)
            # The tabs stay on one row with the counts of a real library (three digits).
            page.evaluate(
                "for (const [t, n] of [['copies', '118'], ['similar', '52'], ['trash', '3']]) "
                "document.getElementById(`count-${t}`).textContent = n"
            )
            tops = page.evaluate("[...document.querySelectorAll('#dups-tabs a')].map(a => a.offsetTop)")
            assert len(set(tops)) == 1, tops
            for selector in ("#tab-copies", "#tab-similar", "#tab-trash"):
                assert_fully_visible(page, selector)
            if tab == "trash":
                assert_fully_visible(page, ".trash-batch .restore-button")
                assert_fully_visible(page, ".trash-batch h2")
            else:
                assert_fully_visible(page, ".dup-group .danger-button")
                assert_fully_visible(page, ".dup-group .tier")
            shot(page, f"dups-layout-{size}-{tab}")

        near = tmp_path / "violet-small.jpg"
        near.write_bytes(_jpeg(VIOLET.resize((200, 150)), quality=80))
        page.set_input_files("#upload-input", str(near))
        expect(page.locator(".upload-match img")).to_have_count(1)
        page.wait_for_function("document.querySelector('.upload-match img').naturalWidth > 0")
        assert_no_sideways_scroll(page)
        assert_fully_visible(page, ".upload-match a.match-name")
        assert_fully_visible(page, ".upload-match .match-thumb")
        shot(page, f"dups-layout-{size}-upload-warning")


def test_unticked_boxes_stay_unticked_after_a_move(browser, live):  # noqa: F811
    with open_at(browser, live.url + "/?view=duplicates") as page:
        sunset, forest = group(page, "sunset.png"), group(page, "forest.png")
        expect(sunset).to_be_visible()
        sunset.get_by_role("checkbox", name="Move sunset-small.jpg to trash").uncheck()
        forest.get_by_role("button", name="Move selected to trash").click()
        confirm(page, "Move 1 image to trash")
        expect(page.locator(".toast", has_text="Moved 1 image to the trash")).to_be_visible()
        expect(group(page, "forest.png")).to_have_count(0)
        # The list was fetched again; the box unticked on purpose is still unticked, the other still ticked.
        sunset = group(page, "sunset.png")
        expect(sunset.get_by_role("checkbox", name="Move sunset-small.jpg to trash")).not_to_be_checked()
        expect(sunset.get_by_role("checkbox", name="Move sunset-copy.png to trash")).to_be_checked()
        page.click("#dups-trash-all")
        confirm(page, "Move 1 image to trash")  # only the ticked one
        expect(group(page, "sunset.png").locator(".dup-item")).to_have_count(2)  # the keeper and the one unticked
        assert (live.folder / "sunset-small.jpg").exists() and not (live.folder / "sunset-copy.png").exists()


def test_an_upload_shows_in_the_open_duplicates_view(browser, live, tmp_path):  # noqa: F811
    with open_at(browser, live.url + "/?view=duplicates") as page:
        expect(page.locator(".dup-group")).to_have_count(2)
        expect(page.locator("#dups-summary")).to_have_text("2 groups · 3 extra images")
        near = tmp_path / "violet-small.jpg"
        near.write_bytes(_jpeg(VIOLET.resize((200, 150)), quality=80))
        page.set_input_files("#upload-input", str(near))
        expect(page.locator(".upload-match")).to_have_count(1)  # added, with the warning
        # The groups are fetched again: the new copy and its original are a group now, without a reload.
        expect(group(page, "violet-small.jpg")).to_have_count(1)
        expect(page.locator("#dups-summary")).to_have_text("3 groups · 4 extra images")
        expect(page.locator("#count-copies")).to_have_text("4")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["360", "1280"])
def test_with_more_groups_to_load_the_button_says_it_acts_on_those_shown(browser, tmp_path, viewport):  # noqa: F811
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(21):  # one more group than a page
        gradient_image(100 + i, (160, 120)).save(folder / f"p{i:02}.png")
        shutil.copy(folder / f"p{i:02}.png", folder / f"p{i:02}-copy.png")
    app = create_app(Settings.from_env(tmp_path / "lib", decode_workers=1), embedder=TinyEmbedder(), require_keys=False)
    app.state.server.library.index_folder(folder)
    with LiveServer(app) as server:
        server.wait_ready()
        with open_at(browser, server.url + "/?view=duplicates", viewport=viewport) as page:
            expect(page.locator(".dup-group")).to_have_count(20)
            expect(page.locator("#dups-summary")).to_have_text("21 groups · 21 extra images")
            label = page.locator("#dups-trash-all-label")
            expect(label).to_have_text("Move selected extras of the 20 groups shown to trash")
            assert_no_sideways_scroll(page)  # the long label wraps on a phone
            assert_fully_visible(page, "#dups-trash-all")
            shot(page, f"dups-more-groups-{viewport['width']}")
            page.click("#dups-more")
            expect(page.locator(".dup-group")).to_have_count(21)
            expect(page.locator("#dups-more")).to_be_hidden()
            expect(label).to_have_text("Move all selected extras to trash")


def test_an_unknown_tab_shows_the_first_one(browser, live):  # noqa: F811
    with open_at(browser, live.url + "/?view=duplicates&tab=nonsense") as page:
        expect(page.locator("#tab-copies")).to_have_attribute("aria-current", "page")
        expect(page.locator(".dup-group")).to_have_count(2)
        page.wait_for_function("location.search === '?view=duplicates'")  # the address says what is shown
        page.click("#tab-similar")
        page.wait_for_function("location.search === '?view=duplicates&tab=similar'")
        expect(page.locator("#explain-similar")).to_be_visible()
        page.go_back()
        expect(page.locator("#explain-copies")).to_be_visible()
        expect(page.locator(".dup-item.keeper")).to_have_count(2)


def test_while_the_copy_check_after_indexing_runs_the_tab_says_how_far_it_is(browser, tmp_path, monkeypatch):  # noqa: F811
    """A folder job is followed by a `copies` job (the pixel check of the library's unchecked pairs); the
    Duplicates tab opened meanwhile is told 503 `checking_copies` with the progress, shows it, and asks again."""
    import time

    import visualsearch.duplicates.verify as verify

    compare = verify.compare

    def slow(a: verify.Prepared, b: verify.Prepared) -> verify.Comparison:
        time.sleep(1.5)  # a big library's check, in a few pairs
        return compare(a, b)

    monkeypatch.setattr(verify, "compare", slow)
    monkeypatch.setattr(duplicate_routes, "GROUPS_WAIT", 0.2)  # seconds a request waits for the groups
    folder = tmp_path / "pictures"
    make_library(folder)
    settings = Settings.from_env(tmp_path / "lib", decode_workers=1, folder_roots=(tmp_path,))
    app = create_app(settings, embedder=TinyEmbedder(), require_keys=False)
    with LiveServer(app) as server, server.client() as api:
        server.wait_ready()
        assert api.post("/api/folders", json={"path": str(folder)}).status_code == 202
        deadline = time.monotonic() + 30
        while not any(j["kind"] == "copies" and j["status"] == "running" for j in api.get("/api/jobs").json()):
            assert time.monotonic() < deadline, api.get("/api/jobs").json()
            time.sleep(0.05)
        with open_at(browser, server.url + "/?view=duplicates") as page:
            loading = page.locator("#dups-loading-text")
            expect(loading).to_have_text(re.compile(r"^Checking the library for copies: \d+ of \d+ pairs…$"))
            shot(page, "dups-copy-check")
            # Tabs switched while the groups wait: one retry at a time, none left on the Trash tab. (A tab's
            # loads ask for a page of groups, with an offset; the other tabs' counts, asked once, do not.)
            loads = re.compile(r"/api/(duplicates|groups)\?limit=\d+&offset=")
            asked: list[str] = []
            page.on("request", lambda r: asked.append(r.url) if loads.search(r.url) else None)
            for tab in ("similar", "copies", "similar", "trash"):
                page.locator(f"#tab-{tab}").click()
            expect(page.locator("#dups-summary")).to_have_text(re.compile("in the trash|^$"))
            asked.clear()
            page.wait_for_timeout(3500)
            assert asked == [], asked
            page.locator("#tab-copies").click()
            expect(page.locator("#dups-summary")).to_have_text("2 groups · 3 extra images", timeout=30_000)
            expect(page.locator("#dups-loading")).to_be_hidden()
        [check] = [j for j in api.get("/api/jobs").json() if j["kind"] == "copies"]
        assert check["status"] == "done" and check["done"] == check["total"] > 0
