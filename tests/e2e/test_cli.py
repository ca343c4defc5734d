"""The CLI end to end, through its entry point, with the real bundled model."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

pytestmark = pytest.mark.slow  # the real model, through CLI subprocesses

EXE = [sys.executable, "-m", "visualsearch"]


def run(*args, env_extra=None, check=True):
    env = dict(os.environ, **(env_extra or {}))
    proc = subprocess.run([*EXE, *map(str, args)], capture_output=True, text=True, env=env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, photos):
    """A library built through the CLI from real photos."""
    root = tmp_path_factory.mktemp("cli")
    folder = root / "pictures"
    (folder / "sub").mkdir(parents=True)
    for i, p in enumerate(photos):
        shutil.copy(p, folder / ("sub" if i == 0 else "") / p.name.lower())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    library = root / "library"
    proc = run("index", folder, "--library", library)
    return folder, library, proc


def test_index_reports_progress_counts_and_failures(indexed, photos):
    _, _, proc = indexed
    assert f"indexed {len(photos)}, failed 1" in proc.stderr
    assert "broken.jpg" in proc.stderr


def test_reindex_adds_nothing(indexed, photos):
    folder, library, _ = indexed
    proc = run("index", folder, "--library", library, "--json")
    report = json.loads(proc.stdout)
    assert report["indexed"] == 0 and report["unchanged"] == len(photos) + 1


def test_text_search_ranks_the_matching_photo_first(indexed):
    _, library, _ = indexed
    for query, expected in (  # queries verified in src/visualsearch/demo/photos/labels.json
        ("a dog", "beagle-dog-drawing.jpg"),
        ("a cup of coffee", "coffee-cup.jpg"),
        ("a red sports car", "sports-car-drawing.jpg"),
        ("a cat", "cat-chelsea.jpg"),
        ("a rocket", "rocket-launch-pad.jpg"),
    ):
        results = json.loads(run("search", query, "--library", library, "--json", "-n", "5").stdout)
        assert results[0]["source"].endswith("/" + expected), (query, results[0])
        scores = [r["score"] for r in results]
        assert scores == sorted(scores, reverse=True)
        assert [r["rank"] for r in results] == list(range(1, len(results) + 1))


def _rank(results, name):
    return next(r["rank"] for r in results if r["source"].endswith("/" + name))


def test_negative_terms_push_down_what_the_query_leaves_out(indexed):
    _, library, _ = indexed
    search = lambda q: json.loads(run("search", q, "--library", library, "--json", "-n", "24").stdout)  # noqa: E731
    plain, without = search("a pet"), search("a pet -cat")
    assert _rank(plain, "cat-chelsea.jpg") == 1
    assert _rank(without, "cat-chelsea.jpg") > 3, without[:4]
    understood = run("search", "a pet -cat", "--library", library, "-n", "3")
    assert "searching for: a pet, without cat" in understood.stderr
    refused = run("search", "--library", library, "--", "-cat", check=False)  # "--": a query that starts with "-"
    assert refused.returncode == 1 and "only says what to leave out" in refused.stderr
    # The REST API's limit, in the CLI too: one clear line, no traceback.
    long = run("search", "a cat " * 200, "--library", library, check=False)
    assert long.returncode == 1 and "1,200 characters long; the limit is 1,000" in long.stderr
    assert "Traceback" not in long.stderr


def test_text_with_a_reference_image(indexed):
    """`search "a drawing" --id N`: like asset N, changed by the words; N itself is left out."""
    _, library, _ = indexed

    def search(*args):
        return json.loads(run("search", *args, "--library", library, "--json", "-n", "5").stdout)

    flower = next(r for r in search("flowers") if r["source"].endswith("/yellow-flower.jpg"))
    words_only, with_image = search("a drawing"), search("a drawing", "--id", flower["asset_id"])
    assert flower["asset_id"] not in [r["asset_id"] for r in with_image]
    assert not words_only[0]["source"].endswith("flower.jpg")
    assert with_image[0]["source"].endswith("/orange-flower.jpg"), with_image[:3]  # the reference's look-alike
    dark = search("dark", "--id", flower["asset_id"])  # colour and light words work from an image too
    assert flower["asset_id"] not in [r["asset_id"] for r in dark]
    missing = run("search", "a drawing", "--id", "99999", "--library", library, check=False)
    assert missing.returncode == 1 and "no asset with id 99999" in missing.stderr


def test_no_close_matches_is_said_not_hidden(indexed):
    """A nonsense query still lists the nearest images, but says that nothing matches closely."""
    _, library, _ = indexed
    nonsense = run("search", "asdfqwer", "--library", library, "-n", "3")
    assert "No close matches; showing the nearest 3" in nonsense.stderr
    assert len(nonsense.stdout.strip().splitlines()) == 4  # header + the 3 nearest
    assert "No close matches" not in run("search", "a cat", "--library", library, "-n", "3").stderr
    # colour words are judged by the colours: nothing in the demo photos is purple; the coins are black and white
    assert "No close matches" in run("search", "purple", "--library", library, "-n", "3").stderr
    assert "No close matches" not in run("search", "black and white", "--library", library, "-n", "3").stderr
    # --json carries the verdict on every row, as the API's close_matches does
    rows = json.loads(run("search", "asdfqwer", "--library", library, "-n", "2", "--json").stdout)
    assert [r["close_matches"] for r in rows] == [False, False]
    assert json.loads(run("search", "a cat", "--library", library, "-n", "1", "--json").stdout)[0]["close_matches"]


def test_explain_says_what_the_model_sees_and_the_score_per_part(indexed):
    _, library, _ = indexed
    results = json.loads(run("search", "a pet -cat", "--library", library, "--json", "-n", "24", "--explain").stdout)
    cat = next(r for r in results if r["source"].endswith("/cat-chelsea.jpg"))
    assert "tabby cat" in cat["why"]["concepts"]
    (pet, without_cat) = cat["why"]["parts"]
    assert pet["text"] == "a pet" and not pet["negative"] and without_cat == {**without_cat, "negative": True}
    assert without_cat["score"] > pet["score"] - 0.2  # the cat photo is close to "cat": why it fell
    table = run("search", "a cat", "--library", library, "-n", "1", "--explain").stdout
    assert "seen as" in table and "tabby cat" in table
    coins = json.loads(run("search", "black and white", "--library", library, "--json", "-n", "1", "--explain").stdout)
    colour = coins[0]["why"]["parts"][-1]
    assert colour["text"] == "colour and light: black and white" and colour["score"] > 0.8


def test_colour_and_light_words(indexed):
    """The bundled model does not see colour; the attribute score does (labels.json names these)."""
    _, library, _ = indexed

    def top(query, n=2):
        results = json.loads(run("search", query, "--library", library, "--json", "-n", str(n)).stdout)
        return {r["source"].rsplit("/", 1)[-1] for r in results}

    assert top("black and white") == {"ancient-coins.jpg", "cameraman-tripod.jpg"}  # the two monochrome photos
    assert top("blue", 1) == {"blue-hexagons-wallpaper.jpg"}
    assert top("a cat", 1) == {"cat-chelsea.jpg"}  # a query without such words ranks as before
    # a left-out colour word is judged by the pixels too: the yellow flower leaves first place
    assert top("flowers", 1) == {"yellow-flower.jpg"} and top("flowers -yellow", 1) != {"yellow-flower.jpg"}
    # scores of words mixed with colour words can pass 1 (text cosine + weighted colour cosine), and so
    # may --min-score (and words read in a picture add up to 0.5); past the +-3 no score reaches, it is refused
    cut = json.loads(run("search", "blue", "--library", library, "--json", "-n", "2").stdout)[1]["score"]
    kept = json.loads(run("search", "blue", "--library", library, "--json", "--min-score", str(cut)).stdout)
    assert kept and all(r["score"] >= cut for r in kept)
    assert run("search", "blue sky", "--library", library, "--json", "--min-score", "1.5").returncode == 0
    assert run("search", "blue", "--library", library, "--min-score", "3.5", check=False).returncode == 2


def test_table_output(indexed):
    _, library, _ = indexed
    proc = run("search", "dog", "--library", library, "-n", "3")
    lines = proc.stdout.strip().splitlines()
    assert lines[0].split() == ["rank", "score", "id", "path"]
    assert len(lines) == 4


def test_similar_by_file_finds_the_original_of_a_transformed_copy(indexed, tmp_path, photos):
    _, library, _ = indexed
    original = next(p for p in photos if p.name == "yellow-flower.jpg")  # it has a look-alike: orange-flower.jpg
    copy = tmp_path / "copy.jpg"
    with Image.open(original) as im:
        w, h = im.size
        im.convert("RGB").crop((w // 10, h // 10, w, h)).resize((w // 2, h // 2)).save(copy, quality=30)
    results = json.loads(run("similar", copy, "--library", library, "--json", "-n", "3").stdout)
    assert results[0]["source"].endswith(original.name.lower())


def test_similar_by_id_leaves_the_reference_out(indexed):
    _, library, _ = indexed
    results = json.loads(run("similar", "--id", "2", "--library", library, "--json").stdout)
    assert results and 2 not in [r["asset_id"] for r in results]


def test_similar_by_url(indexed, photos, tmp_path):
    _, library, _ = indexed
    shutil.copy(photos[-2], tmp_path / "ref.jpg")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/ref.jpg"
    try:
        refused = run("similar", "--url", url, "--library", library, check=False)
        assert refused.returncode == 1 and "loopback" in refused.stderr
        results = json.loads(
            run(
                "similar",
                "--url",
                url,
                "--library",
                library,
                "--json",
                env_extra={"VISUALSEARCH_ALLOW_PRIVATE_URLS": "1"},
            ).stdout
        )
        assert results[0]["source"].endswith(photos[-2].name.lower())
    finally:
        httpd.shutdown()


def test_limit_and_min_score(indexed):
    _, library, _ = indexed
    assert len(json.loads(run("search", "dog", "-L", library, "--json", "-n", "2").stdout)) == 2
    results = json.loads(run("search", "dog", "-L", library, "--json", "--min-score", "0.3").stdout)
    assert all(r["score"] >= 0.3 for r in results)


def test_status(indexed, photos):
    _, library, _ = indexed
    info = json.loads(run("status", "-L", library, "--json", "--failures").stdout)
    assert info["indexed"] == len(photos) and info["failed"] == 1
    assert info["failures"][0]["source"].endswith("broken.jpg")


def test_library_from_environment(indexed):
    _, library, _ = indexed
    proc = run("search", "a ladybug", "--json", "-n", "1", env_extra={"VISUALSEARCH_LIBRARY": str(library)})
    assert json.loads(proc.stdout)[0]["source"].endswith("/ladybird-on-leaf.jpg")


@pytest.mark.parametrize(
    "args, message",
    [
        (["similar", "--id", "99999"], "no asset with id 99999"),
        (["similar"], "exactly one reference"),
        (["similar", "x.jpg", "--id", "1"], "exactly one reference"),
        (["similar", "/no/such/file.jpg"], "no such file"),
        (["similar", "--url", "file:///etc/passwd"], "scheme"),
        (["search", "   "], "empty"),
    ],
)
def test_errors_are_one_readable_line(indexed, args, message):
    _, library, _ = indexed
    proc = run(*args, "--library", library, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_index_missing_folder(tmp_path):
    proc = run("index", tmp_path / "nope", "--library", tmp_path / "lib", check=False)
    assert proc.returncode != 0 and "not a folder" in proc.stderr


def test_corrupt_reference_image(indexed, tmp_path):
    _, library, _ = indexed
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnope")
    proc = run("similar", bad, "--library", library, check=False)
    assert proc.returncode == 1 and "not a recognised image format" in proc.stderr


@pytest.mark.parametrize("command", [["status"], ["keys", "list"], ["serve", "--port", "1"]])
def test_a_bad_setting_is_one_line_naming_the_variable(command, tmp_path):
    """Settings are validated at start-up: a wrong value is a clear error, not a traceback."""
    proc = run(*command, "--library", tmp_path / "lib", env_extra={"VISUALSEARCH_VECTOR_BACKEND": "faiss"}, check=False)
    assert proc.returncode == 1
    assert "VISUALSEARCH_VECTOR_BACKEND" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
