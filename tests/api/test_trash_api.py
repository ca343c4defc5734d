"""The trash over real HTTP: GET /api/trash lists batches, POST /api/trash/{batch}/restore undoes one."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from tests.support.embedders import TinyEmbedder
from tests.support.images import gradient_image
from tests.support.live import LiveServer
from visualsearch.api import create_app
from visualsearch.api.schemas import GroupOut
from visualsearch.catalog import Asset
from visualsearch.config import Settings
from visualsearch.duplicates import DuplicateGroup, Member
from visualsearch.services import KeyService


def png(seed: int, size=(120, 90)) -> bytes:
    buf = io.BytesIO()
    gradient_image(seed, size).save(buf, "PNG")
    return buf.getvalue()


def make_app(root: Path, require_keys: bool = False):
    folder = root / "pictures"
    folder.mkdir(parents=True)
    for i in range(3):
        gradient_image(i, (120, 90)).save(folder / f"g{i}.png")
    app = create_app(
        Settings.from_env(root / "lib", batch_size=4, decode_workers=1),
        embedder=TinyEmbedder(),
        require_keys=require_keys,
    )
    app.state.server.library.index_folder(folder)
    return app, folder


@pytest.fixture
def served(tmp_path):
    app, folder = make_app(tmp_path)
    with LiveServer(app) as live:
        live.wait_ready()
        with live.client() as api:
            yield api, folder


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    return body["error"]


def ids_by_name(api) -> dict[str, int]:
    return {a["name"]: a["id"] for a in api.get("/api/assets", params={"limit": 100}).json()["items"]}


def test_trash_lists_batches_and_restores_one(served):
    api, folder = served
    assert api.get("/api/trash").json() == {"items": [], "total": 0, "in_trash": 0, "limit": 50, "offset": 0}
    uploaded = api.post("/api/assets", files={"files": ("up.png", png(7), "image/png")}).json()["items"][0]["asset"]
    ids = ids_by_name(api)
    before = len(ids)
    moved = api.post("/api/duplicates/trash", json={"asset_ids": [ids["g1.png"], uploaded["id"]]}).json()
    batch = moved["batch"]
    assert not (folder / "g1.png").exists()

    listed = api.get("/api/trash").json()
    assert listed["total"] == 1 and listed["in_trash"] == 2
    [item] = listed["items"]
    assert item["batch"] == batch and item["count"] == 2 and item["restorable"] is True
    assert {f["name"] for f in item["files"]} == {"g1.png", "up.png"}
    assert {f["asset_id"] for f in item["files"]} == {ids["g1.png"], uploaded["id"]}
    assert all(f["in_trash"] for f in item["files"])
    assert str(folder / "g1.png") in [f["original"] for f in item["files"]]
    at = datetime.fromisoformat(item["at"])
    assert abs(datetime.now(UTC) - at) < timedelta(minutes=5)
    assert api.get("/api/assets", params={"limit": 1}).json()["total"] == before - 2

    restored = api.post(f"/api/trash/{batch}/restore")
    assert restored.status_code == 200, restored.text
    body = restored.json()
    assert body["batch"] == batch
    assert {r["name"] for r in body["restored"]} == {"g1.png", "up.png"}
    for r in body["restored"]:
        asset = r["asset"]
        assert asset is not None and asset["status"] == "indexed" and asset["thumbnail_url"]
        assert api.get(f"/api/assets/{asset['id']}").status_code == 200  # back in the library, under a new id
    assert (folder / "g1.png").exists()
    assert api.get("/api/assets", params={"limit": 1}).json()["total"] == before
    assert sorted(ids_by_name(api)) == sorted(ids)
    # Searchable again: the restored upload finds itself first.
    new_up = next(r["asset"]["id"] for r in body["restored"] if r["name"] == "up.png")
    hits = api.post("/api/search/image", files={"file": ("q.png", png(7), "image/png")}).json()["items"]
    assert hits[0]["asset"]["id"] == new_up

    after = api.get("/api/trash").json()
    assert after["in_trash"] == 0 and after["items"][0]["restorable"] is False
    assert not any(f["in_trash"] for f in after["items"][0]["files"])
    assert_error(api.post(f"/api/trash/{batch}/restore"), 404, "not_found")  # nothing left to restore


def test_trashed_images_have_previews(served):
    """The Trash tab shows what each moved file looks like: its preview, kept or made from the trash."""
    api, folder = served
    ids = ids_by_name(api)
    batch = api.post("/api/duplicates/trash", json={"asset_ids": [ids["g0.png"], ids["g1.png"]]}).json()["batch"]
    [item] = api.get("/api/trash").json()["items"]
    urls = {f["name"]: f["thumbnail_url"] for f in item["files"]}
    assert urls["g0.png"] == f"/api/trash/{batch}/files/{ids['g0.png']}/thumbnail"
    # The previews made at indexing are gone (the library's clean-up removes those no asset refers
    # to): they are made again from the files in the trash.
    previews = [p for p in (folder.parent / "lib").rglob("*.jpg") if "thumbnails" in p.parts]
    assert previews
    for p in previews:
        p.unlink()
    for name, url in urls.items():
        response = api.get(url)
        assert response.status_code == 200, (name, response.text)
        assert response.headers["content-type"] == "image/jpeg"
        with Image.open(io.BytesIO(response.content)) as im:
            assert max(im.size) <= 256 and im.size[0] / im.size[1] == pytest.approx(120 / 90, abs=0.02)
    # ... kept in the batch's folder, not among the library's previews (which the pixel check reads).
    assert not [p for p in (folder.parent / "lib").rglob("*.jpg") if "thumbnails" in p.parts]
    assert len(list((folder.parent / "lib" / "trash" / batch / ".previews").rglob("*.jpg"))) == 2
    assert_error(api.get(f"/api/trash/{batch}/files/999999/thumbnail"), 404, "not_found")
    # The log names files; a line pointing out of the trash folder (edited by hand) is not read.
    outside = folder.parent / "elsewhere.png"
    gradient_image(5, (120, 90)).save(outside)
    with open(folder.parent / "lib" / "trash" / "log.jsonl", "a") as log:
        entry = {"batch": batch, "asset_id": 4242, "name": "x.png", "original": str(outside), "trashed": str(outside)}
        log.write(json.dumps(entry | {"sha256": "ab" * 32, "origin": None, "at": 0.0}) + "\n")
    assert_error(api.get(f"/api/trash/{batch}/files/4242/thumbnail"), 404, "not_found")
    assert_error(api.get(f"/api/trash/20990101-000000-abcdef/files/{ids['g0.png']}/thumbnail"), 404, "not_found")
    assert_error(api.get(f"/api/trash/bad_batch!/files/{ids['g0.png']}/thumbnail"), 422, "invalid_request")


def test_unknown_or_malformed_batches(served):
    api, _ = served
    error = assert_error(api.post("/api/trash/20990101-000000-abcdef/restore"), 404, "not_found")
    assert "20990101-000000-abcdef" in error["message"]
    assert_error(api.post("/api/trash/no_such_batch!/restore"), 422, "invalid_request")
    assert_error(api.get("/api/trash", params={"limit": 0}), 422, "invalid_request")


def test_a_batch_is_not_restored_over_a_file_that_came_back(served):
    api, folder = served
    ids = ids_by_name(api)
    batch = api.post("/api/duplicates/trash", json={"asset_ids": [ids["g0.png"], ids["g2.png"]]}).json()["batch"]
    gradient_image(99).save(folder / "g2.png")  # something new where a trashed file would go
    error = assert_error(api.post(f"/api/trash/{batch}/restore"), 400, "error")
    assert "g2.png" in error["message"]
    assert not (folder / "g0.png").exists()  # nothing moved: the whole batch stays restorable
    assert api.get("/api/trash").json()["in_trash"] == 2
    (folder / "g2.png").unlink()
    assert api.post(f"/api/trash/{batch}/restore").status_code == 200
    assert (folder / "g0.png").exists() and (folder / "g2.png").exists()


def test_listing_pages_newest_first(served):
    api, _ = served
    ids = ids_by_name(api)
    first = api.post("/api/duplicates/trash", json={"asset_ids": [ids["g0.png"]]}).json()["batch"]
    second = api.post("/api/duplicates/trash", json={"asset_ids": [ids["g1.png"]]}).json()["batch"]
    listed = api.get("/api/trash").json()
    assert [b["batch"] for b in listed["items"]] == [second, first]
    page = api.get("/api/trash", params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 2 and [b["batch"] for b in page["items"]] == [first]


def test_reading_needs_a_key_and_restoring_an_admin_key(tmp_path):
    app, _ = make_app(tmp_path, require_keys=True)
    keys = KeyService(app.state.server.library.catalog)
    _, admin = keys.create("admin", "admin")
    _, reader = keys.create("reader", "read")
    with LiveServer(app) as live, live.client() as anon, live.client(admin) as adm, live.client(reader) as rd:
        live.wait_ready()
        assert_error(anon.get("/api/trash"), 401, "missing_key")
        assert_error(anon.get("/api/trash/20990101-000000-abcdef/files/1/thumbnail"), 401, "missing_key")
        asset_id = adm.get("/api/assets", params={"limit": 1}).json()["items"][0]["id"]
        batch = adm.post("/api/duplicates/trash", json={"asset_ids": [asset_id]}).json()["batch"]
        assert rd.get("/api/trash").json()["items"][0]["batch"] == batch
        assert_error(rd.post(f"/api/trash/{batch}/restore"), 403, "forbidden")
        assert_error(anon.post(f"/api/trash/{batch}/restore"), 401, "missing_key")
        assert adm.post(f"/api/trash/{batch}/restore").status_code == 200


def test_trash_endpoints_and_keeper_reason_are_in_the_openapi_schema(served):
    api, _ = served
    schema = api.get("/openapi.json").json()
    paths = schema["paths"]
    assert set(paths["/api/trash"]) == {"get"}
    assert set(paths["/api/trash/{batch}/files/{asset_id}/thumbnail"]) == {"get"}
    restore = paths["/api/trash/{batch}/restore"]["post"]
    assert {"200", "401", "403", "404"} <= set(restore["responses"])
    assert restore["parameters"][0]["schema"]["pattern"]
    for model in ("TrashListOut", "TrashBatchOut", "RestoreOut", "RestoredOut"):
        assert model in schema["components"]["schemas"], model
    assert "keeper_reason" in schema["components"]["schemas"]["GroupOut"]["properties"]


def test_groups_carry_a_keeper_reason_when_the_finder_gives_one(served):
    api, _ = served
    for path in ("/api/duplicates", "/api/groups"):
        for group in api.get(path, params={"threshold": 0.5}).json()["items"]:
            assert "keeper_reason" in group and (group["keeper_reason"] is None or group["keeper_reason"].strip())
    # Read from the finder's dataclass: without a reason it is null, with one, the reason.
    asset = Asset(id=1, name="a.png", source="/a.png", sha256="ab" * 32, added_at=datetime.now(UTC))
    group = DuplicateGroup(Member(asset, 1.0, None), [Member(asset, 0.9, "near_duplicate")])
    assert GroupOut.model_validate(group).keeper_reason is None  # no attribute, or the finder's "": null
    group.keeper_reason = "largest (4000×3000)"
    assert GroupOut.model_validate(group).keeper_reason == "largest (4000×3000)"
