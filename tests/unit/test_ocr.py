"""Words in pictures (OCR): how words are cut, stored, looked up and ranked; the reader on real pictures.

The fast tests store read text directly (no reader) on a library of the tiny test model; the
tests marked slow run the real reader (RapidOCR's bundled ONNX models) on repository photos
with a rendered sign on them.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.support.embedders import TinyEmbedder
from tests.support.images import make_folder
from tests.support.signs import with_sign
from visualsearch.catalog import AssetFilter
from visualsearch.catalog.words import words_of
from visualsearch.config import Settings
from visualsearch.errors import ModelUnavailable
from visualsearch.ingest.decode import decode_bytes
from visualsearch.models.ocr import RapidOcrReader, ReaderOptions
from visualsearch.search.words import query_words
from visualsearch.services import Library, SearchService, read_library_text


def test_words_are_case_folded_without_accents_and_single_letters() -> None:
    assert words_of("CAFÉ Crème — open 24h!") == ["cafe", "creme", "open", "24h", "24"]
    assert words_of("C 7 a 12") == ["12"]  # stray single characters go
    assert words_of("bak\u200bery") == ["bakery"]  # a zero-width space pasted in a query
    assert words_of("x_y") == []  # underscores split; what is left is single letters
    assert words_of("Stop stop STOP") == ["stop"]
    assert words_of("debianedu12 24h") == ["debianedu12", "debianedu", "12", "24h", "24"]  # letters|digits


def test_query_words_leave_out_how_to_look() -> None:
    assert query_words("a sign that says Bakery") == ["sign", "bakery"]
    assert query_words("the poster reading JAZZ festival 2026") == ["poster", "jazz", "festival", "2026"]
    assert query_words("a picture of the") == []


def _library(tmp_path: Path) -> tuple[Library, dict[str, int]]:
    folder = make_folder(tmp_path / "pictures", 10)
    lib = Library(Settings.from_env(tmp_path / "lib", batch_size=4, decode_workers=0), embedder=TinyEmbedder())
    lib.index_folder(folder)
    ids = {Path(a.source).name: a.id for a in lib.catalog.indexed_assets().values()}
    return lib, ids


def test_read_text_is_stored_found_by_word_and_removed_with_its_asset(tmp_path: Path) -> None:
    lib, ids = _library(tmp_path)
    texts = lib.catalog.texts
    texts.save([(ids["img03.png"], "r1", "FRESH BAKERY\nopen 24h"), (ids["img04.png"], "r1", "")])
    assert texts.matching(["bakery"]) == {ids["img03.png"]: {"bakery"}}
    assert texts.matching(["open", "24h", "fresh"]) == {ids["img03.png"]: {"open", "24h", "fresh"}}
    assert texts.of([ids["img03.png"], ids["img04.png"], ids["img05.png"]]) == {
        ids["img03.png"]: "FRESH BAKERY\nopen 24h",
        ids["img04.png"]: "",
    }
    unread = {i for i, *_ in texts.unread("r1")}
    assert ids["img03.png"] not in unread and ids["img04.png"] not in unread and ids["img05.png"] in unread
    assert {i for i, *_ in texts.unread("r2")} == set(ids.values())  # another reader has read nothing
    assert texts.count() == (2, 1)
    assert texts.matching(["bake"]) == {} and texts.matching(["bake"], prefix=True) == {ids["img03.png"]: {"bake"}}
    assert texts.matching(["open"], prefix=True) == {ids["img03.png"]: {"open"}}  # the word itself too
    lib.catalog.remove([ids["img03.png"]])
    assert texts.matching(["bakery"]) == {} and texts.count() == (1, 0)
    lib.close()


def test_a_changed_file_forgets_the_text_read_from_its_old_bytes(tmp_path: Path) -> None:
    lib, ids = _library(tmp_path)
    lib.catalog.texts.save([(ids["img01.png"], "r1", "SALE")])
    folder = tmp_path / "pictures"
    Image.new("RGB", (41, 30), (9, 99, 9)).save(folder / "img01.png")  # other bytes, same path
    lib.index_folder(folder)
    assert lib.catalog.texts.matching(["sale"]) == {}
    lib.close()


def test_pictures_showing_the_words_come_first_and_say_so(tmp_path: Path) -> None:
    lib, ids = _library(tmp_path)
    search = SearchService(lib)
    plain = search.text("bakery", limit=10)
    assert all(r.words == () for r in plain)  # nothing read yet: the search is what it was
    sign, other = ids["img07.png"], ids["img02.png"]
    lib.catalog.texts.save([(sign, "r1", "FRESH BAKERY"), (other, "r1", "bakery bags sold here")])
    found = search.text("fresh bakery", limit=10)
    assert [r.asset_id for r in found[:2]] == [sign, other]  # both words, then one of two
    assert found[0].words == ("fresh", "bakery") and found[1].words == ("bakery",)
    before = {r.asset_id: r.score for r in plain}  # the tiny model reads "fresh bakery" as "bakery"
    assert found[0].score == pytest.approx(before[sign] + 0.5, abs=1e-5)  # every word: the whole weight
    assert found[1].score == pytest.approx(before[other] + 0.25, abs=1e-5)  # one of two words: half
    assert found[0].to_dict()["words"] == ["fresh", "bakery"]
    assert [r.asset_id for r in search.text("a sign that says bakery -fresh", limit=10)][0] == other
    started = search.text("bake", limit=10)  # the start of a read word counts half a word
    assert started[0].asset_id in (sign, other) and started[0].score == pytest.approx(
        before[started[0].asset_id] + 0.25, abs=1e-5
    )
    assert sign not in [r.asset_id for r in search.text("bakery", limit=10, exclude={sign})]
    red = search.text("bakery", limit=10, filters=AssetFilter(q="img02"))
    assert [r.asset_id for r in red] == [other]
    why = search.explain("fresh bakery", found[:1])[sign]
    assert why.text == "FRESH BAKERY"
    assert ("read in the picture: fresh, bakery", 0.5) in [(p.text, p.score) for p in why.parts]
    lib.close()


def test_clause_weights_left_out_words_and_the_verdict_for_every_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib, ids = _library(tmp_path)

    class Calibrated(TinyEmbedder):
        match_thresholds = (0.99, 0.3)  # nothing is close for the tiny model's scores alone

    lib._requested = lib._active = Calibrated()
    sign, other, closed = ids["img07.png"], ids["img02.png"], ids["img03.png"]
    lib.catalog.texts.save(
        [(sign, "r1", "FRESH BAKERY"), (other, "r1", "bakery bags"), (closed, "r1", "BAKERY closed")]
    )
    search = SearchService(lib)
    plain = {r.asset_id: r.score for r in search.text("bakery", limit=10)}
    weighted = {r.asset_id: r.score for r in search.text("bakery^2 + fresh", limit=10)}
    plain_pair = {r.asset_id: r.score for r in search.text("bakery + fresh", limit=10)}
    # bakery counts twice: a picture with only "bakery" has 2/3 of the words' weight, not 1/2
    assert weighted[other] - plain_pair[other] == pytest.approx(0.5 * (2 / 3 - 1 / 2), abs=1e-4)
    results, verdict = search.text_with_verdict("bakery -closed", limit=1, offset=3)
    assert verdict is not None and verdict.close  # the same verdict on a page without those pictures
    assert all(r.words == () for r in results)
    down = {r.asset_id: r.score for r in search.text("bakery -closed", limit=10)}
    assert down[closed] == pytest.approx(plain[closed] - 0.25, abs=1e-3)  # +0.5 bakery, -0.5 x 0.5 closed
    why = search.explain("bakery -closed", [r for r in search.text("bakery -closed", limit=10) if r.asset_id == closed])
    parts = {(p.text, p.negative, p.score) for p in why[closed].parts}
    assert ("read in the picture: bakery", False, 0.5) in parts and (
        "read in the picture: closed",
        True,
        -0.25,
    ) in parts
    # one word of three shown is not a close match; every word shown is, on every page
    assert not search.text_with_verdict("bakery purple elephant", limit=2)[1].close  # type: ignore[union-attr]
    assert not search.text_with_verdict("bake", limit=2)[1].close  # type: ignore[union-attr]  # a word's start
    assert search.text_with_verdict("fresh bakery", limit=1, offset=5)[1].close  # type: ignore[union-attr]
    heavy = [r for r in search.text("bakery -closed^10", limit=10) if r.asset_id == closed]
    parts = {(p.text, p.score) for p in search.explain("bakery -closed^10", heavy)[closed].parts if p.negative}
    assert ("read in the picture: closed", -0.5) in parts  # at most what a picture can gain, whatever the weight
    import visualsearch.catalog.texts as texts_module

    monkeypatch.setattr(texts_module, "MAX_ASSETS_PER_WORD", 2)  # "bakery" is now on too many pictures
    assert lib.catalog.texts.matching(["bakery", "fresh"]) == {sign: {"fresh"}}
    assert lib.catalog.texts.matching(["bake"], prefix=True) == {}
    lib.close()


def test_turning_text_reading_on_without_the_extra_is_said_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "rapidocr", None)  # as if `visualsearch[ocr]` were not installed
    with pytest.raises(ModelUnavailable, match=r"pip install 'visualsearch\[ocr\]'"):
        Library(Settings.from_env(tmp_path / "lib", ocr=True), embedder=TinyEmbedder())
    Library(Settings.from_env(tmp_path / "lib2"), embedder=TinyEmbedder()).close()  # off: not needed


def test_the_reader_travels_to_worker_processes_as_its_options() -> None:
    import pickle

    reader = RapidOcrReader(ReaderOptions(size=640))
    copy = pickle.loads(pickle.dumps(reader))
    assert copy.options == ReaderOptions(size=640) and copy._engine is None


# -- the real reader ---------------------------------------------------------------------------
@pytest.mark.slow
def test_the_reader_reads_a_sign_and_finds_nothing_on_a_photo_without_text() -> None:
    reader = RapidOcrReader()
    assert words_of(reader.read(with_sign("coffee-cup.jpg", "FRESH BAKERY"))) == ["fresh", "bakery"]
    for photo in ("astronaut-portrait.jpg", "ancient-coins.jpg", "green-meadow-grass.jpg"):
        image = Image.open(Path(__file__).parents[2] / "src/visualsearch/demo/photos" / photo).convert("RGB")
        assert reader.read(image) == "", photo  # textures are not read as words


@pytest.mark.slow
def test_a_big_photo_is_read_from_a_copy_large_enough_for_its_text() -> None:
    """A 12 MP photo is decoded at about 320 px on its short side for the model: its sign's letters
    would be about 4 px tall there. The reader gets its own decode at the reader's size, and reads them."""
    from visualsearch.ingest.text import read_text

    picture = with_sign("dune-grass-by-the-sea.jpg", "HARBOUR CAFE", size=(4000, 3000), text_height=0.01)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    decoded = decode_bytes(data)
    assert min(decoded.image.size) < 400  # a DCT-scaled decode at 1/8: letters about 4 px tall
    assert words_of(RapidOcrReader().read(decoded.image)) == []  # too small to read at the model's size
    assert words_of(read_text(data, decoded, ReaderOptions())) == ["harbour", "cafe"]


@pytest.mark.slow
def test_indexing_reads_new_pictures_and_read_text_reads_the_ones_before(tmp_path: Path) -> None:
    folder = tmp_path / "pictures"
    folder.mkdir()
    with_sign("coffee-cup.jpg", "FRESH BAKERY").save(folder / "sign.jpg")
    Image.open(Path(__file__).parents[2] / "src/visualsearch/demo/photos/cat-chelsea.jpg").save(folder / "cat.jpg")
    lib = Library(Settings.from_env(tmp_path / "lib", decode_workers=0), embedder=TinyEmbedder())
    lib.index_folder(folder)  # reading off: nothing read
    assert lib.catalog.texts.count() == (0, 0)
    lib.close()
    lib = Library(Settings.from_env(tmp_path / "lib", decode_workers=0, ocr=True), embedder=TinyEmbedder())
    report = read_library_text(lib)
    assert (report.read, report.with_text, report.failed) == (2, 1, 0)
    assert read_library_text(lib).read == 0  # already read: resumable, nothing twice
    with_sign("cat-chelsea.jpg", "OPEN").save(folder / "open.jpg")
    lib.index_folder(folder)  # reading on: the new picture is read while it is indexed
    found = SearchService(lib).text("open", limit=3)
    assert Path(found[0].source).name == "open.jpg" and found[0].words == ("open",)
    assert lib.catalog.texts.count() == (3, 2)
    lib.close()


@pytest.mark.slow
def test_read_text_gets_past_unreadable_and_missing_pictures_and_keeps_work_on_ctrl_c(tmp_path: Path) -> None:
    folder = tmp_path / "pictures"
    folder.mkdir()
    Image.new("RGB", (8000, 2), "white").save(folder / "rule.png")  # the reader refuses such strips
    Image.new("RGB", (3, 3000), "black").save(folder / "column.png")
    for n, word in enumerate(["OPEN", "SALE", "EXIT"]):
        with_sign("cat-chelsea.jpg", word, size=(480, 360)).save(folder / f"sign{n}.jpg")
    lib = Library(Settings.from_env(tmp_path / "lib", decode_workers=0), embedder=TinyEmbedder())
    lib.index_folder(folder)
    lib.close()
    (folder / "sign2.jpg").unlink()  # gone since it was indexed
    lib = Library(Settings.from_env(tmp_path / "lib", decode_workers=0, ocr=True), embedder=TinyEmbedder())

    def interrupt_after_three(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        read_library_text(lib, interrupt_after_three)
    assert lib.catalog.texts.count()[0] == 3  # what was read before Ctrl-C is kept
    report = read_library_text(lib)
    assert (report.todo, report.read, report.failed) == (2, 1, 1)
    assert "--prune" in report.failures[0][1]  # says what to do about the missing file
    assert lib.catalog.texts.count() == (4, 2)  # the strips are read as having no text, not retried
    assert read_library_text(lib).todo == 1  # only the missing file is left
    lib.close()


@pytest.mark.slow
def test_a_page_of_small_words_is_read_in_part_keeping_its_largest_lines() -> None:
    """The reader keeps the MAX_LINES lines in the biggest letters: a page of about 500 small words costs
    about 2 s, not 13 s, and its title is among them."""
    from PIL import ImageDraw

    from tests.support.signs import font
    from visualsearch.models.ocr import MAX_LINES

    page = Image.new("RGB", (960, 960), "white")
    draw = ImageDraw.Draw(page)
    small, big = font(14), font(48)
    draw.text((300, 20), "HEADLINE", font=big, fill=0)  # a title above a page of small words
    for row in range(41):
        for col in range(12):
            draw.text((5 + col * 80, 130 + row * 20), ("alpha", "gamma", "omega")[(row + col) % 3], font=small, fill=0)
    text = RapidOcrReader().read(page)
    assert "headline" in words_of(text)
    assert len(text.splitlines()) <= MAX_LINES


def test_a_long_strip_is_read_at_the_readers_size_not_decoded_whole() -> None:
    """The reader's picture is at most twice its size on the long side, whatever the file's shape."""
    from visualsearch.ingest.text import reading_picture

    options = ReaderOptions()
    for size in ((300, 20_000), (20_000, 1_500), (4_000, 3_000)):
        buffer = io.BytesIO()
        Image.new("RGB", size, "white").save(buffer, "PNG")
        data = buffer.getvalue()
        picture = reading_picture(data, decode_bytes(data), options)
        assert max(picture.size) <= 2 * options.size, size


@pytest.mark.slow
def test_read_text_does_not_store_text_of_a_file_changed_since_it_was_indexed(tmp_path: Path) -> None:
    folder = tmp_path / "pictures"
    folder.mkdir()
    with_sign("cat-chelsea.jpg", "OPEN", size=(480, 360)).save(folder / "sign.jpg")
    lib = Library(Settings.from_env(tmp_path / "lib", decode_workers=0), embedder=TinyEmbedder())
    lib.index_folder(folder)
    with_sign("cat-chelsea.jpg", "CLOSED", size=(480, 360)).save(folder / "sign.jpg")  # not indexed again
    lib.close()
    lib = Library(Settings.from_env(tmp_path / "lib", decode_workers=0, ocr=True), embedder=TinyEmbedder())
    report = read_library_text(lib)
    assert (report.read, report.failed) == (0, 1) and "changed since it was indexed" in report.failures[0][1]
    assert lib.catalog.texts.count() == (0, 0)
    lib.close()
