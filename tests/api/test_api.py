"""The REST API, exercised through real HTTP against a running server."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from tests.support.embedders import TinyEmbedder
from tests.support.images import gradient_image, solid
from tests.support.live import LiveServer, wait_for_job
from visualsearch.api import create_app
from visualsearch.api.routes import duplicates as duplicate_routes
from visualsearch.api.uploads import clean_name
from visualsearch.config import Settings
from visualsearch.duplicates.verify import METHOD
from visualsearch.services import KeyService


def jpeg(image, quality=90) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


COLOURS = {"red": (220, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 220)}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)], autouse=True)
def backend(request, monkeypatch):
    """Every test here runs on the embedded SQLite catalog and on PostgreSQL + pgvector."""
    if request.param == "postgresql":
        monkeypatch.setenv("VISUALSEARCH_DATABASE_URL", request.getfixturevalue("postgres_url"))
    return request.param


def make_app(tmp_path, require_keys=False, **overrides):
    overrides.setdefault("folder_roots", (tmp_path,))  # the server may index folders below the test's folder
    settings = Settings.from_env(tmp_path / "lib", batch_size=4, decode_workers=2, **overrides)
    return create_app(settings, embedder=TinyEmbedder(), require_keys=require_keys)


@pytest.fixture
def server(tmp_path):
    with LiveServer(make_app(tmp_path)) as live:
        live.wait_ready()
        yield live


@pytest.fixture
def api(server):
    with server.client() as client:
        yield client


def upload(api, *files, **data):
    return api.post("/api/assets", files=[("files", f) for f in files], data=data)


def seed(api) -> dict[str, int]:
    """Three solid colours and two gradients; returns name -> asset id."""
    files = [(f"{name}.jpg", jpeg(solid(rgb)), "image/jpeg") for name, rgb in COLOURS.items()]
    files += [(f"grad{i}.png", png(gradient_image(i)), "image/png") for i in range(2)]
    r = upload(api, *files, tags="seed")
    assert r.status_code == 201, r.text
    return {item["name"].split(".")[0]: item["asset"]["id"] for item in r.json()["items"]}


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    assert "Traceback" not in response.text
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]


# -- health & stats ----------------------------------------------------------------------


def test_health_readiness_and_stats(api, backend):
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json()["status"] == "ready"
    seed(api)
    stats = api.get("/api/stats").json()
    assert stats["assets"] == 5 and stats["indexed"] == 5 and stats["failed"] == 0
    assert stats["model_id"] == "tiny-test-model"
    assert {i["space"]: i["vectors"] for i in stats["indexes"]} == {"semantic": 5, "visual": 5}
    assert {i["type"] for i in stats["indexes"]} == ({"exact"} if backend == "sqlite" else {"pgvector-hnsw"})


def test_openapi_documents_every_endpoint_with_examples(api):
    schema = api.get("/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/api/assets",
        "/api/assets/{asset_id}",
        "/api/assets/{asset_id}/tags",
        "/api/assets/url",
        "/api/assets/{asset_id}/thumbnail",
        "/api/assets/{asset_id}/original",
        "/api/folders",
        "/api/search",
        "/api/search/image",
        "/api/jobs/{job_id}",
        "/api/stats",
        "/healthz",
        "/readyz",
    ):
        assert path in paths, path
    assert "multipart/form-data" in paths["/api/search/image"]["post"]["requestBody"]["content"]
    assert schema["components"]["schemas"]["SearchIn"]["examples"]


# -- uploads ----------------------------------------------------------------------------


def test_upload_one_image_then_get_thumbnail_and_original(api, tmp_path):
    data = jpeg(gradient_image(3, (900, 600)))
    r = upload(api, ("holiday.jpg", data, "image/jpeg"), tags="Beach, summer ")
    assert r.status_code == 201, r.text
    [item] = r.json()["items"]
    asset = item["asset"]
    assert item["status"] == "created"
    assert (asset["name"], asset["origin"], asset["format"]) == ("holiday.jpg", "upload", "JPEG")
    assert (asset["width"], asset["height"], asset["byte_size"]) == (900, 600, len(data))
    assert asset["tags"] == ["beach", "summer"]
    assert api.get(f"/api/assets/{asset['id']}").json() == asset

    thumb = api.get(asset["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert "immutable" in thumb.headers["cache-control"]
    from PIL import Image

    assert max(Image.open(io.BytesIO(thumb.content)).size) == 256
    again = api.get(asset["thumbnail_url"], headers={"If-None-Match": thumb.headers["etag"]})
    assert again.status_code == 304

    original = api.get(asset["original_url"])
    assert original.status_code == 200 and original.content == data
    assert original.headers["content-type"] == "image/jpeg"
    # Nothing left in staging.
    assert not any((tmp_path / "lib" / "staging").rglob("*.part"))


def test_preview_made_by_an_earlier_version_is_served_as_webp_and_not_remade(api, tmp_path):
    """Libraries indexed before previews were JPEG keep their WebP ones: remaking them would decode
    every image again. A new preview is only made where there is none."""
    from PIL import Image

    asset = upload(api, ("old.jpg", jpeg(gradient_image(4, (600, 400))), "image/jpeg")).json()["items"][0]["asset"]
    folder = tmp_path / "lib" / "thumbnails" / asset["sha256"][:2]
    [made] = folder.glob(asset["sha256"] + ".*")
    assert made.suffix == ".jpg"
    made.unlink()
    legacy = folder / f"{asset['sha256']}.webp"
    Image.new("RGB", (256, 171), (1, 2, 3)).save(legacy, "WEBP")
    thumb = api.get(asset["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    assert thumb.content == legacy.read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == [legacy.name]


@pytest.mark.parametrize(
    "payload, status, code",
    [
        (b"this is not an image at all", 415, "unsupported_image"),
        (jpeg(gradient_image(5, (300, 200)))[:400], 422, "invalid_image"),
        (b"", 422, "invalid_image"),
    ],
)
def test_single_bad_upload_gets_its_status_and_leaves_nothing(api, tmp_path, payload, status, code):
    assert_error(upload(api, ("bad.jpg", payload, "image/jpeg")), status, code)
    assert api.get("/api/assets", params={"status": "all"}).json()["total"] == 0
    lib = tmp_path / "lib"
    assert not any((lib / "originals").rglob("*.*")) if (lib / "originals").exists() else True
    assert not any(p.is_file() for p in (lib / "staging").rglob("*")) if (lib / "staging").exists() else True


def test_upload_too_large_is_refused_while_streaming(api, tmp_path):
    big = b"\xff\xd8\xff" + b"\x00" * (40 * 1024 * 1024 + 10)
    err = assert_error(upload(api, ("huge.jpg", big, "image/jpeg")), 413, "too_large")
    assert "40 MB" in err["message"]
    assert api.get("/api/assets", params={"status": "all"}).json()["total"] == 0


def test_duplicate_upload_is_reported_with_the_existing_asset(api):
    data = jpeg(solid((10, 200, 100)))
    first = upload(api, ("a.jpg", data, "image/jpeg")).json()["items"][0]["asset"]
    err = assert_error(upload(api, ("copy.jpg", data, "image/jpeg")), 409, "duplicate")
    assert err["details"]["asset_id"] == first["id"]


def test_multi_file_upload_reports_each_file(api):
    good = jpeg(solid((1, 2, 3)))
    r = upload(
        api,
        ("good.jpg", good, "image/jpeg"),
        ("text.jpg", b"hello", "image/jpeg"),
        ("again.jpg", good, "image/jpeg"),
        ("big.jpg", b"\x00" * (40 * 1024 * 1024 + 1), "image/jpeg"),
    )
    assert r.status_code == 201
    body = r.json()
    assert [(i["name"], i["status"], (i["error"] or {}).get("code")) for i in body["items"]] == [
        ("good.jpg", "created", None),
        ("text.jpg", "error", "unsupported_image"),
        ("again.jpg", "error", "duplicate"),
        ("big.jpg", "error", "too_large"),
    ]
    assert (body["created"], body["failed"]) == (1, 3)


def test_upload_needs_multipart_with_files(api):
    assert_error(api.post("/api/assets", json={"files": []}), 415, "unsupported_media_type")
    assert_error(api.post("/api/assets", data={"tags": "x"}, files=[("other", ("a.jpg", b"x"))]), 422)


def test_file_names_from_clients_are_cleaned(api):
    r = upload(
        api,
        ("../../etc/passwd.jpg", jpeg(solid((9, 9, 9))), "image/jpeg"),
        ("C:\\photos\\x.jpg", jpeg(solid((9, 9, 19))), "image/jpeg"),
    )
    assert [i["asset"]["name"] for i in r.json()["items"]] == ["passwd.jpg", "x.jpg"]
    assert clean_name("a\x00b\x1fc.jpg") == "a_b_c.jpg" and clean_name("") == clean_name("/") == "upload"


# -- listing, tags, delete -----------------------------------------------------------------


def test_list_paginates_with_a_cursor_and_filters(api):
    ids = seed(api)
    page1 = api.get("/api/assets", params={"limit": 2}).json()
    assert page1["total"] == 5 and len(page1["items"]) == 2 and page1["next_cursor"]
    seen = [a["id"] for a in page1["items"]]
    cursor = page1["next_cursor"]
    while cursor:
        page = api.get("/api/assets", params={"limit": 2, "cursor": cursor}).json()
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
    assert seen == sorted(ids.values(), reverse=True)  # newest first, each once

    assert {a["name"] for a in api.get("/api/assets", params={"format": "png"}).json()["items"]} == {
        "grad0.png",
        "grad1.png",
    }
    assert [a["name"] for a in api.get("/api/assets", params={"q": "RED"}).json()["items"]] == ["red.jpg"]
    assert api.get("/api/assets", params={"tag": "seed"}).json()["total"] == 5
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert api.get("/api/assets", params={"added_after": future}).json()["total"] == 0
    assert api.get("/api/assets", params={"added_after": past}).json()["total"] == 5
    assert api.get("/api/assets", params={"prefix": "/nowhere"}).json()["total"] == 0
    assert_error(api.get("/api/assets", params={"cursor": "abc"}), 422, "invalid_request")
    assert_error(api.get("/api/assets", params={"limit": 100000}), 422, "invalid_request")


def test_tags_replace_and_filter(api):
    ids = seed(api)
    r = api.put(f"/api/assets/{ids['red']}/tags", json={"tags": ["Warm", " sunset  glow", "warm"]})
    assert r.json() == {"asset_id": ids["red"], "tags": ["sunset glow", "warm"]}
    assert [a["id"] for a in api.get("/api/assets", params={"tag": "warm"}).json()["items"]] == [ids["red"]]
    assert api.get(f"/api/assets/{ids['red']}").json()["tags"] == ["sunset glow", "warm"]
    assert_error(api.put("/api/assets/99999/tags", json={"tags": ["x"]}), 404, "not_found")
    assert_error(api.put(f"/api/assets/{ids['red']}/tags", json={"tags": "x"}), 422, "invalid_request")


def test_delete_removes_the_asset_its_file_and_its_vectors(api, tmp_path):
    ids = seed(api)
    asset = api.get(f"/api/assets/{ids['blue']}").json()
    assert api.delete(f"/api/assets/{ids['blue']}").status_code == 204
    assert_error(api.get(f"/api/assets/{ids['blue']}"), 404, "not_found")
    assert_error(api.get(asset["original_url"]), 404, "not_found")
    assert_error(api.delete(f"/api/assets/{ids['blue']}"), 404, "not_found")
    assert not list((tmp_path / "lib" / "originals").rglob(asset["sha256"] + "*"))
    hits = api.post("/api/search", json={"text": "blue", "limit": 10}).json()["items"]
    assert ids["blue"] not in [h["asset_id"] for h in hits]


# -- search -------------------------------------------------------------------------------


def test_text_search_ranks_best_first_with_scores(api):
    ids = seed(api)
    body = api.post("/api/search", json={"text": "red", "limit": 5}).json()
    items = body["items"]
    assert items[0]["asset_id"] == ids["red"] and items[0]["rank"] == 1
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)
    assert items[0]["asset"]["thumbnail_url"].startswith(f"/api/assets/{ids['red']}/thumbnail")
    assert body["query"] == {
        "kind": "text",
        "text": "red",
        "understood": "red",
        "asset_id": None,
        "image_url": None,
        "file_name": None,
    }
    # The GET form gives the same answer.
    got = api.get("/api/search", params={"text": "red", "limit": 5}).json()
    assert [i["asset_id"] for i in got["items"]] == [i["asset_id"] for i in items]


def test_text_query_language_negatives_weights_and_a_reference_asset(api):
    ids = seed(api)

    def order(**body):
        return [i["asset_id"] for i in api.post("/api/search", json={"limit": 10, **body}).json()["items"]]

    assert order(text="red + blue^0.1")[0] == ids["red"]
    assert order(text="red^0.1 + blue")[0] == ids["blue"]
    away = order(text="red -blue")
    assert away[0] == ids["red"] and away[-1] == ids["blue"]  # what was left out comes last
    body = api.post("/api/search", json={"text": 'red -"blue"^2'}).json()
    assert body["query"]["understood"] == "red, without blue (x2)"
    like = api.post("/api/search", json={"text": "red", "asset_id": ids["green"]}).json()
    assert ids["green"] not in [i["asset_id"] for i in like["items"]]
    assert like["query"]["asset_id"] == ids["green"] and like["query"]["kind"] == "text"
    got = api.get("/api/search", params={"text": "red", "asset_id": ids["green"]}).json()
    assert [i["asset_id"] for i in got["items"]] == [i["asset_id"] for i in like["items"]]
    assert "only says what to leave out" in assert_error(api.post("/api/search", json={"text": "-red"}), 422)["message"]
    assert "at most 10" in assert_error(api.post("/api/search", json={"text": "red^50"}), 422)["message"]
    assert_error(api.post("/api/search", json={"text": "red", "asset_id": 99999}), 404, "not_found")
    explained = api.post("/api/search", json={"text": "red -blue", "explain": True, "limit": 3}).json()["items"]
    first = explained[0]["why"]
    assert first["concepts"] is None  # the test model has no vocabulary to say what it sees
    assert [(p["text"], p["negative"]) for p in first["parts"]] == [("red", False), ("blue", True)]
    assert first["parts"][0]["score"] > 0.99 and first["parts"][1]["score"] < 0.1
    assert api.post("/api/search", json={"text": "red"}).json()["items"][0]["why"] is None  # only when asked
    assert_error(api.post("/api/search", json={"asset_id": ids["red"], "image_url": "http://127.0.0.1/x.jpg"}), 422)


def test_search_by_asset_leaves_the_asset_out(api):
    ids = seed(api)
    items = api.post("/api/search", json={"asset_id": ids["grad0"], "limit": 10}).json()["items"]
    assert ids["grad0"] not in [i["asset_id"] for i in items] and len(items) == 4
    assert_error(api.post("/api/search", json={"asset_id": 424242}), 404, "not_found")


def test_search_by_uploaded_image_finds_the_same_picture(api):
    ids = seed(api)
    r = api.post(
        "/api/search/image", files={"file": ("q.png", png(gradient_image(1)), "image/png")}, data={"limit": "3"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["items"][0]["asset_id"] == ids["grad1"] and body["items"][0]["score"] > 0.99
    assert body["query"]["kind"] == "image" and body["query"]["file_name"] == "q.png"
    assert len(body["items"]) == 3
    assert api.get("/api/assets").json()["total"] == 5  # searching does not add


def test_search_by_image_errors(api):
    seed(api)
    assert_error(api.post("/api/search/image", files={"file": ("x.txt", b"plain text", "text/plain")}), 415)
    assert_error(api.post("/api/search/image", files={"file": ("x.jpg", b"\xff\xd8\xff\xe0garbage")}), 422)
    big = b"\xff\xd8\xff" + b"\x00" * (40 * 1024 * 1024 + 1)
    assert_error(api.post("/api/search/image", files={"file": ("big.jpg", big)}), 413, "too_large")
    assert_error(api.post("/api/search/image", data={"limit": "3"}, files={"other": ("a", b"x")}), 422)
    assert_error(api.post("/api/search/image", content=b"raw", headers={"content-type": "image/jpeg"}), 415)
    assert_error(
        api.post("/api/search/image", files={"file": ("q.png", png(solid((1, 1, 1))))}, data={"limit": "many"}),
        422,
        "invalid_request",
    )


def test_search_paging_min_score_and_limits(api):
    seed(api)
    everything = api.post("/api/search", json={"text": "green", "limit": 5}).json()["items"]
    page2 = api.post("/api/search", json={"text": "green", "limit": 2, "offset": 2}).json()
    assert [i["asset_id"] for i in page2["items"]] == [i["asset_id"] for i in everything[2:4]]
    assert [i["rank"] for i in page2["items"]] == [3, 4] and page2["next_offset"] == 4
    cut = everything[1]["score"]
    kept = api.post("/api/search", json={"text": "green", "limit": 5, "min_score": cut}).json()["items"]
    assert all(i["score"] >= cut for i in kept) and len(kept) >= 2
    # Scores of colour-word queries go past 1 (text cosine + weighted colour cosine): so may the cut.
    assert api.post("/api/search", json={"text": "green", "min_score": 1.5}).status_code == 200
    assert api.get("/api/search", params={"text": "green", "min_score": -1.5}).status_code == 200
    assert_error(api.post("/api/search", json={"text": "green", "min_score": 3.5}), 422, "invalid_request")
    assert_error(api.post("/api/search", json={"text": "green", "limit": 1000}), 422, "invalid_request")
    assert_error(
        api.post("/api/search", json={"text": "a", "image_url": "http://127.0.0.1/a.jpg"}), 422, "invalid_request"
    )
    assert_error(api.post("/api/search", json={}), 422, "invalid_request")
    assert_error(api.post("/api/search", json={"text": "   "}), 422, "invalid_request")
    assert_error(api.post("/api/search", content=b"{not json", headers={"content-type": "application/json"}), 422)


def test_search_filters_apply_inside_the_vector_search(api):
    ids = seed(api)
    api.put(f"/api/assets/{ids['blue']}/tags", json={"tags": ["sky"]})
    items = api.post("/api/search", json={"text": "red", "limit": 5, "filters": {"tag": "sky"}}).json()["items"]
    assert [i["asset_id"] for i in items] == [ids["blue"]]  # the one match, although red scores higher
    pngs = api.post("/api/search", json={"text": "red", "limit": 5, "filters": {"format": "PNG"}}).json()["items"]
    assert {i["asset_id"] for i in pngs} == {ids["grad0"], ids["grad1"]}


class _ImageHandler(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):  # noqa: N802
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # the fetcher hangs up on purpose (over the size cap): not an error here


@pytest.fixture
def image_host():
    _ImageHandler.body = png(gradient_image(0))
    httpd = _QuietServer(("127.0.0.1", 0), _ImageHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture
def allow_loopback_only(monkeypatch):
    """Let the fetcher reach 127.0.0.1 (our test host) and nothing else private."""
    from visualsearch.ingest import fetch

    real = fetch.address_refusal
    monkeypatch.setattr(fetch, "address_refusal", lambda ip: None if ip == "127.0.0.1" else real(ip))


def test_search_and_add_by_url(api, image_host, allow_loopback_only):
    ids = seed(api)
    r = api.post("/api/search", json={"image_url": f"{image_host}/pic.png", "limit": 2})
    assert r.status_code == 200, r.text
    assert r.json()["items"][0]["asset_id"] == ids["grad0"]
    _ImageHandler.body = png(gradient_image(7))
    added = api.post("/api/assets/url", json={"url": f"{image_host}/photos/new%20one.png", "tags": ["web"]})
    assert added.status_code == 201, added.text
    asset = added.json()
    assert (asset["origin"], asset["name"], asset["source"], asset["tags"]) == (
        "url",
        "new one.png",
        f"{image_host}/photos/new%20one.png",
        ["web"],
    )
    assert api.get(asset["original_url"]).content == _ImageHandler.body
    assert_error(api.post("/api/assets/url", json={"url": f"{image_host}/again.png"}), 409, "duplicate")


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://127.0.0.1:9/x.png", "private_address"),
        ("http://169.254.169.254/latest/meta-data/", "private_address"),
        ("http://[::1]/x.png", "private_address"),
        ("http://10.0.0.7/x.png", "private_address"),
        ("file:///etc/passwd", "scheme"),
        ("ftp://example.org/x.png", "scheme"),
        ("not a url", "scheme"),
    ],
)
def test_ssrf_urls_are_refused_with_the_reason(api, url, reason):
    for path, body in (("/api/search", {"image_url": url}), ("/api/assets/url", {"url": url})):
        err = assert_error(api.post(path, json=body), 400, "url_refused")
        assert err["details"]["reason"] == reason, err


def test_redirect_to_a_private_address_is_refused(api, image_host, allow_loopback_only):
    err = assert_error(api.post("/api/search", json={"image_url": f"{image_host}/redirect"}), 400, "url_refused")
    assert err["details"]["reason"] == "private_address" and "169.254.169.254" in err["message"]


def test_url_that_is_not_an_image_or_too_large(api, image_host, allow_loopback_only, monkeypatch):
    _ImageHandler.body = b"<html>hello</html>"
    err = assert_error(api.post("/api/search", json={"image_url": f"{image_host}/page"}), 400, "url_refused")
    assert err["details"]["reason"] == "content_type"
    _ImageHandler.body = b"\x89PNG\r\n\x1a\n" + b"\x00" * (40 * 1024 * 1024 + 1)
    err = assert_error(api.post("/api/search", json={"image_url": f"{image_host}/big"}), 400, "url_refused")
    assert err["details"]["reason"] == "too_large"


# -- jobs -----------------------------------------------------------------------------------


def test_folder_job_indexes_in_the_background(api, tmp_path):
    folder = tmp_path / "photos"
    (folder / "deep").mkdir(parents=True)
    for i in range(6):
        gradient_image(10 + i).save(folder / ("deep" if i % 2 else "") / f"g{i}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xffnope")
    r = api.post("/api/folders", json={"path": str(folder)})
    assert r.status_code == 202 and r.headers["location"] == r.json()["status_url"]
    job = wait_for_job(api, r.json()["status_url"])
    assert job["status"] == "done" and (job["total"], job["done"], job["failed"]) == (7, 7, 1)
    assert job["failures"][0]["name"].endswith("broken.jpg")
    assert api.get("/api/assets", params={"prefix": str(folder)}).json()["total"] == 6
    assert any(j["id"] == job["id"] for j in api.get("/api/jobs").json())
    assert_error(api.post("/api/folders", json={"path": str(tmp_path / "missing")}), 404, "not_found")
    assert_error(api.post("/api/folders", json={"path": "relative/path"}), 422)
    assert_error(api.get("/api/jobs/nope"), 404, "not_found")


def test_a_copy_check_follows_indexing_so_the_duplicates_answer_at_once(server, api, tmp_path, photos):
    """The pixel check of new pictures' candidate copies runs as a `copies` job after the folder job, so
    the Duplicates tab's request reads its verdicts instead of checking pairs (minutes on a big library)."""
    folder = tmp_path / "shots"
    folder.mkdir()
    photo = Image.open(photos[0]).convert("RGB")
    photo.save(folder / "cat.jpg", quality=92)
    photo.resize((photo.width // 2, photo.height // 2)).save(folder / "cat-small.jpg", quality=85)
    gradient_image(3).save(folder / "other.png")
    indexed = wait_for_job(api, api.post("/api/folders", json={"path": str(folder)}).json()["status_url"])
    assert indexed["status"] == "done"
    [check] = [j for j in api.get("/api/jobs").json() if j["kind"] == "copies"]  # queued before the folder job ended
    check = wait_for_job(api, f"/api/jobs/{check['id']}")
    assert check["status"] == "done" and check["total"] >= 1 and check["done"] == check["total"]
    state = server.app.state.server
    assert state.library.catalog.verdicts.all(METHOD)  # kept in the catalog: a restarted server has them too
    verifier = state.duplicates.verifier()
    before = verifier.checked
    [group] = api.get("/api/duplicates").json()["items"]
    assert verifier.checked == before  # the request compared no pictures
    assert {m["asset"]["name"] for m in [group["keeper"], *group["others"]]} == {"cat.jpg", "cat-small.jpg"}


def test_while_the_copy_check_runs_the_groups_answer_503_with_its_progress(server, api, tmp_path, photos, monkeypatch):
    """Not a request that waits for minutes (a proxy in front would cut it): 503, Retry-After, how far."""
    import time

    import visualsearch.duplicates.verify as verify

    compare = verify.compare

    def slow(a: verify.Prepared, b: verify.Prepared) -> verify.Comparison:
        time.sleep(0.5)
        return compare(a, b)

    monkeypatch.setattr(verify, "compare", slow)
    monkeypatch.setattr(duplicate_routes, "GROUPS_WAIT", 0.2)  # seconds a request waits for the groups
    folder = tmp_path / "shots"
    folder.mkdir()
    photo = Image.open(photos[0]).convert("RGB")
    for side in (640, 480, 320, 240):
        photo.resize((side, side * photo.height // photo.width)).save(folder / f"cat-{side}.jpg", quality=90)
    wait_for_job(api, api.post("/api/folders", json={"path": str(folder)}).json()["status_url"])
    [check] = [j for j in api.get("/api/jobs").json() if j["kind"] == "copies"]
    deadline = time.monotonic() + 30
    while api.get(f"/api/jobs/{check['id']}").json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for path in ("/api/duplicates", "/api/groups"):
        busy = api.get(path)
        assert busy.status_code == 503 and int(busy.headers["retry-after"]) >= 1, busy.text
        error = busy.json()["error"]
        assert error["code"] == "checking_copies" and error["details"]["total"] >= error["details"]["done"] >= 0
    assert wait_for_job(api, f"/api/jobs/{check['id']}")["status"] == "done"
    [group] = api.get("/api/duplicates").json()["items"]
    assert len(group["others"]) == 3
    assert api.get("/api/groups").status_code == 200


def test_a_first_run_on_a_big_library_goes_on_in_the_background(tmp_path, photos, monkeypatch):
    """With the check at indexing off, the first request starts the work and answers 503 with its
    progress; the requests that follow pick the same work up, and no pair is checked twice."""
    import time

    import visualsearch.duplicates.verify as verify

    compare = verify.compare

    def slow(a: verify.Prepared, b: verify.Prepared) -> verify.Comparison:
        time.sleep(0.3)
        return compare(a, b)

    monkeypatch.setattr(verify, "compare", slow)
    monkeypatch.setattr(duplicate_routes, "GROUPS_WAIT", 0.2)
    folder = tmp_path / "shots"
    folder.mkdir()
    photo = Image.open(photos[0]).convert("RGB")
    for side in (640, 480, 320, 240):
        photo.resize((side, side * photo.height // photo.width)).save(folder / f"cat-{side}.jpg", quality=90)
    with LiveServer(make_app(tmp_path, copies_at_index=False)) as live, live.client() as api:
        live.wait_ready()
        wait_for_job(api, api.post("/api/folders", json={"path": str(folder)}).json()["status_url"])
        answers = []
        deadline = time.monotonic() + 30
        while not answers or answers[-1].status_code == 503:
            assert time.monotonic() < deadline
            answers.append(api.get("/api/duplicates"))
            time.sleep(0.1)
        assert answers[0].status_code == 503 and answers[0].json()["error"]["code"] == "checking_copies"
        assert len(answers[-1].json()["items"]) == 1
        assert live.app.state.server.duplicates.verifier().checked == 6  # four sizes: six pairs, each once


def test_no_copy_check_job_with_the_setting_off(tmp_path):
    (tmp_path / "shots").mkdir()
    gradient_image(3).save(tmp_path / "shots" / "g.png")
    with LiveServer(make_app(tmp_path, copies_at_index=False)) as live, live.client() as api:
        live.wait_ready()
        wait_for_job(api, api.post("/api/folders", json={"path": str(tmp_path / "shots")}).json()["status_url"])
        assert [j["kind"] for j in api.get("/api/jobs").json()] == ["folder"]


def test_folder_roots_limit_what_an_admin_may_index(tmp_path):
    (tmp_path / "allowed").mkdir()
    with LiveServer(make_app(tmp_path, folder_roots=(tmp_path / "allowed",))) as live, live.client() as api:
        assert api.post("/api/folders", json={"path": str(tmp_path / "allowed")}).status_code == 202
        assert_error(api.post("/api/folders", json={"path": str(tmp_path)}), 403, "folder_not_allowed")


def test_large_upload_runs_as_a_job(api):
    files = [(f"g{i}.png", png(gradient_image(100 + i)), "image/png") for i in range(10)]
    files.append(("junk.png", b"junk", "image/png"))
    r = upload(api, *files)
    assert r.status_code == 202, r.text
    job = wait_for_job(api, r.json()["status_url"])
    assert job["status"] == "done" and (job["done"], job["failed"]) == (11, 1)
    assert job["failures"] == [
        {"name": "junk.png", "error": "not a recognised image format", "code": "unsupported_image"}
    ]
    assert api.get("/api/assets").json()["total"] == 10


# -- safety ---------------------------------------------------------------------------------


def test_json_bodies_have_a_size_limit(api):
    assert_error(api.post("/api/search", json={"text": "x" * (2 * 1024 * 1024)}), 413, "too_large")


def test_unexpected_errors_are_500_without_details(server, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(server.app.state.server.search, "text_with_verdict", boom)
    with server.client() as api:
        err = assert_error(api.post("/api/search", json={"text": "x"}), 500, "internal_error")
    assert "secret" not in err["message"]


def test_unknown_routes_and_methods_use_the_error_shape(api):
    assert_error(api.get("/api/nothing-here"), 404)
    assert_error(api.patch("/api/search"), 405)


def test_concurrent_uploads_and_searches(api, server):
    seed(api)
    errors: list[str] = []

    def uploader(n: int) -> None:
        with server.client() as c:
            for i in range(4):
                r = upload(c, (f"c{n}-{i}.png", png(gradient_image(1000 + n * 10 + i, (64 + n, 48))), "image/png"))
                if r.status_code != 201:
                    errors.append(r.text)

    def searcher(n: int) -> None:
        with server.client() as c:
            for i in range(10):
                r = c.post("/api/search", json={"text": ["red", "green", "blue"][i % 3], "limit": 5})
                if r.status_code != 200 or not r.json()["items"]:
                    errors.append(r.text)
                r = c.get("/api/assets", params={"limit": 5})
                if r.status_code != 200:
                    errors.append(r.text)

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(uploader, n) for n in range(4)] + [pool.submit(searcher, n) for n in range(4)]
        for f in futures:
            f.result()
    assert errors == []
    assert api.get("/api/assets").json()["total"] == 5 + 16
    assert api.get("/api/stats").json()["indexes"][0]["vectors"] == 21


# -- keys, roles, rate limits -------------------------------------------------------------------


@pytest.fixture
def keyed(tmp_path):
    app = make_app(tmp_path, require_keys=True)
    keys = KeyService(app.state.server.library.catalog)
    _, admin = keys.create("admin", "admin")
    _, reader = keys.create("reader", "read")
    with LiveServer(app) as live:
        live.wait_ready()
        yield live, admin, reader, keys


def test_keys_and_roles(keyed):
    live, admin, reader, keys = keyed
    with live.client() as anon, live.client(admin) as adm, live.client(reader) as rd:
        assert anon.get("/healthz").status_code == 200  # probes need no key
        assert_error(anon.get("/api/assets"), 401, "missing_key")
        assert_error(anon.get("/api/assets", headers={"Authorization": "Bearer vs_nope_nope"}), 401, "invalid_key")
        assert_error(anon.get("/api/assets", headers={"X-API-Key": reader + "x"}), 401, "invalid_key")
        assert anon.get("/api/assets", headers={"X-API-Key": reader}).status_code == 200
        with live.client(cookies={"visualsearch_key": reader}) as browser:
            assert browser.get("/api/assets").status_code == 200

        r = upload(adm, ("a.png", png(gradient_image(1)), "image/png"))
        assert r.status_code == 201
        asset_id = r.json()["items"][0]["asset"]["id"]
        assert rd.post("/api/search", json={"text": "red"}).status_code == 200
        assert rd.get(f"/api/assets/{asset_id}/thumbnail").status_code == 200
        assert_error(upload(rd, ("b.png", png(gradient_image(2)), "image/png")), 403, "forbidden")
        assert_error(rd.delete(f"/api/assets/{asset_id}"), 403, "forbidden")
        assert_error(rd.put(f"/api/assets/{asset_id}/tags", json={"tags": []}), 403, "forbidden")
        assert_error(rd.post("/api/folders", json={"path": "/tmp"}), 403, "forbidden")
        assert_error(rd.get("/api/keys"), 403, "forbidden")

        created = adm.post("/api/keys", json={"name": "frame", "role": "read"})
        assert created.status_code == 201
        new = created.json()
        assert new["key"].startswith(new["prefix"] + "_")
        assert "key" not in adm.get("/api/keys").json()[0]
        assert anon.get("/api/stats", headers={"X-API-Key": new["key"]}).status_code == 200
        assert adm.delete(f"/api/keys/{new['id']}").json()["revoked"] is True
        assert_error(anon.get("/api/stats", headers={"X-API-Key": new["key"]}), 401, "invalid_key")


def test_keys_are_stored_hashed(keyed):
    live, admin, reader, keys = keyed
    catalog = live.app.state.server.library.catalog
    with catalog.engine.connect() as c:
        stored = [row[0] for row in c.exec_driver_sql("select key_hash from api_keys")]
    assert admin not in stored and reader not in stored and all(len(h) == 64 for h in stored)


def test_rate_limit_per_key(tmp_path):
    app = make_app(tmp_path, require_keys=True, rate_limit_per_minute=12)
    keys = KeyService(app.state.server.library.catalog)
    _, first = keys.create("first", "admin")
    _, second = keys.create("second", "read")
    with LiveServer(app) as live, live.client(first) as api, live.client(second) as other:
        asset = upload(api, ("a.png", png(gradient_image(1)), "image/png")).json()["items"][0]["asset"]
        statuses = [api.get("/api/assets").status_code for _ in range(4)]
        assert statuses[0] == 200 and statuses[-1] == 429
        r = api.get("/api/assets")
        assert_error(r, 429, "rate_limited")
        assert int(r.headers["retry-after"]) >= 1
        assert other.get("/api/assets").status_code == 200  # buckets are per key
        # Thumbnails and originals are plain file reads and do not count.
        assert all(api.get(asset["thumbnail_url"]).status_code == 200 for _ in range(5))


def test_local_single_user_is_not_rate_limited(tmp_path):
    with LiveServer(make_app(tmp_path, rate_limit_per_minute=6)) as live, live.client() as api:
        assert {api.get("/api/assets").status_code for _ in range(10)} == {200}
