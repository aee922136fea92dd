"""Issue 10, hardening: one named regression test per case found by trying the server as an
attacker and as a careless user would (cross-site requests, starvation, crashes on import,
memory, unusual image modes, symlinks, 500s, unbounded strings)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.data import image_ids, make_data_dir, square_mask, write_jpeg

from maskloop import masks


@pytest.fixture
def ids(client):
    return image_ids(client)


@pytest.fixture
def cat(client):
    r = client.post("/api/categories", json={"name": "cat"})
    assert r.status_code == 201
    return r.get_json()


def mask_body(category_id, **extra) -> dict:
    return {"category_id": category_id, "segmentation": masks.encode(square_mask(48, 64, 4, 4, 20, 20)), **extra}


def post_raw(client, url: str, data: bytes | str, content_type: str = "application/json", **headers):
    return client.post(url, data=data, content_type=content_type, headers=headers)


def error_of(response) -> str:
    error = response.get_json()["error"]
    assert "\n" not in error and len(error) < 400
    return error


# -- 1. cross-site request forgery ---------------------------------------------------------------
@pytest.mark.parametrize(
    "content_type, body",
    [
        ("text/plain", '{"name": "evil"}'),
        ("application/x-www-form-urlencoded", "name=evil"),
        (
            "multipart/form-data; boundary=x",
            '--x\r\nContent-Disposition: form-data; name="name"\r\n\r\nevil\r\n--x--\r\n',
        ),
    ],
)
def test_csrf_writes_must_be_json(client, content_type, body):
    r = post_raw(client, "/api/categories", body, content_type)
    assert r.status_code == 415 and "application/json" in error_of(r)
    assert client.get("/api/categories").get_json() == []


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://localhost:9999", "file://"])
def test_csrf_foreign_origin_is_refused_on_writes(client, origin):
    r = client.post("/api/categories", json={"name": "evil"}, headers={"Origin": origin})
    assert r.status_code == 403 and "cross-site" in error_of(r)
    assert client.post("/api/images/rescan", headers={"Origin": origin}).status_code == 403
    assert client.get("/api/categories").get_json() == []


def test_csrf_cross_site_fetch_metadata_is_refused(client, ids):
    for url in ("/api/export/coco?format=polygon", f"/api/images/{ids['a.jpg']}/embedding", "/api/images", "/stats"):
        r = client.get(url, headers={"Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 403, url
        assert client.get(url, headers={"Sec-Fetch-Site": "same-site"}).status_code == 403, url
    r = client.post(f"/api/images/{ids['a.jpg']}/propose", json={}, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403


def test_csrf_same_origin_page_requests_still_work(client):
    """What web/js/api.js sends: JSON with fetch from the same origin (Origin and Sec-Fetch-Site set)."""
    page = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}
    r = client.post("/api/categories", json={"name": "ok"}, headers=page)
    assert r.status_code == 201
    assert client.delete(f"/api/categories/{r.get_json()['id']}", headers=page).status_code == 204
    assert client.get("/api/categories", headers={"Sec-Fetch-Site": "none"}).status_code == 200
    # scripts and curl send neither header
    assert client.post("/api/categories", json={"name": "script"}).status_code == 201


# -- 2. starvation: exports run in one child process, are reused while the store is unchanged ----
def test_export_is_computed_once_per_store_version(client, ids, cat):
    assert client.post(f"/api/images/{ids['a.jpg']}/annotations", json=mask_body(cat["id"])).status_code == 201
    first = client.get("/api/export/coco?format=polygon")
    assert first.status_code == 200 and len(first.get_json()["annotations"]) == 1
    exports = Path(client.application.config["WORKDIR"]) / "exports"
    files = sorted(exports.glob("coco-polygon-*.json"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    again = client.get("/api/export/coco?format=polygon")
    assert again.data == first.data and files[0].stat().st_mtime_ns == stamp  # reused, not recomputed
    assert (
        client.post(
            f"/api/images/{ids['b.png']}/annotations",
            json={"category_id": cat["id"], "segmentation": masks.encode(square_mask(40, 30, 1, 1, 5, 5))},
        ).status_code
        == 201
    )
    after = client.get("/api/export/coco?format=polygon").get_json()  # a write is seen at once
    assert len(after["annotations"]) == 2
    assert len(list(exports.glob("coco-polygon-*.json"))) == 1  # the stale file is gone


def test_waiting_exports_are_bounded(app, client, ids, cat):
    from maskloop.server.jobs.coco import STATUSES
    from maskloop.server.jobs.export_cache import ExportBusy, ExportCache, ExportKind

    cache = ExportCache(Path(app.config["DATABASE"]), Path(app.config["WORKDIR"]) / "exports-bounded", max_waiting=1)
    kind = ExportKind("polygon", 0.0, STATUSES[1:2])
    job = cache._job(kind)  # one request waiting
    assert client.post(f"/api/images/{ids['a.jpg']}/annotations", json=mask_body(cat["id"])).status_code == 201
    with pytest.raises(ExportBusy):  # the store changed: a second export would have to wait as well
        cache._job(kind)
    job.future.result(timeout=120)
    cache.close()
    r = client.get("/api/export/coco?format=polygon&status=accepted")
    assert r.status_code == 200


# -- 3. crash on import: polygons far outside the image --------------------------------------------
@pytest.mark.parametrize("far", [1e9, 1e7, 10**400 // 10**390])
def test_import_far_polygon_is_refused_not_rasterised(tmp_path, far):
    data = make_data_dir(tmp_path / "data", bad=False)
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg"}],
        "categories": [{"id": 1, "name": "x"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[0, 0, far, 0, far, far]]}],
    }
    src = tmp_path / "far.json"
    src.write_text(json.dumps(coco))
    run = subprocess.run(
        [sys.executable, "-m", "maskloop.cli", "import-coco", str(src), "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and "far outside the 64x48 image" in run.stderr


# -- 4. memory: a configurable pixel limit, decodes bounded ------------------------------------------
def test_images_above_the_pixel_limit_are_listed_as_errors(data_dir, tmp_path, onnx_dir):
    from maskloop.server.http.app import create_app

    app = create_app(
        {
            "TESTING": True,
            "DATA_DIR": str(data_dir),
            "WORKDIR": str(tmp_path / "w"),
            "ONNX_DIR": str(onnx_dir),
            "PRECOMPUTE": False,
            "MAX_IMAGE_PIXELS": 2000,
            "MAX_DECODES": 1,
        }
    )
    listing = {im["file_name"]: im for im in app.test_client().get("/api/images").get_json()}
    assert listing["a.jpg"]["status"] == "error" and "64x48 is more than 2000 pixels" in listing["a.jpg"]["error"]
    assert listing["sub/café photo ünï.jpg"]["status"] == "not_started"  # 32 x 32 = 1024 pixels
    assert app.extensions["maskloop"].embeddings.decode_slots._initial_value == 1


# -- 5. image modes: 16-bit, CMYK, palette with transparency, animated GIF ---------------------------
def test_16bit_greyscale_png_is_scaled_like_a_browser(tmp_path):
    from maskloop.exporter.embedding import load_image_rgb

    grey16 = (np.linspace(0, 65535, 64 * 48).reshape(48, 64)).astype(np.uint16)
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    rgb = load_image_rgb(tmp_path / "g16.png")
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    expected = np.round(grey16 / 257.0)
    assert np.abs(rgb[:, :, 0].astype(int) - expected).max() <= 1
    assert (rgb == 255).mean() < 0.01  # not "99.6 % white"


def test_cmyk_jpeg_palette_transparency_and_animated_gif(tmp_path):
    from maskloop.exporter.embedding import load_image_rgb

    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[:, :30] = (200, 30, 30)
    rgb[:, 30:] = (20, 160, 220)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    assert np.abs(load_image_rgb(tmp_path / "cmyk.jpg").astype(int) - rgb).mean() < 6

    pal = Image.new("P", (20, 10), 1)
    pal.putpalette([255, 255, 255, 250, 0, 0] + [0] * 762)
    pal.paste(0, (0, 0, 10, 10))  # left half: index 0, white in the palette but transparent
    pal.save(tmp_path / "pal.png", transparency=0)
    shown = load_image_rgb(tmp_path / "pal.png")
    assert (shown[:, :10] == 0).all() and (shown[:, 10:] == (250, 0, 0)).all()  # transparent over the dark stage

    frames = [Image.new("RGB", (16, 12), colour) for colour in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    first = load_image_rgb(tmp_path / "anim.gif")
    assert first[..., 0].mean() > 200 and first[..., 2].mean() < 50  # frame 0


def test_animated_gif_is_flagged_in_the_image_list(tmp_path, onnx_dir):
    from maskloop.server.http.app import create_app

    data = tmp_path / "data"
    data.mkdir()
    frames = [Image.new("RGB", (16, 12), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(data / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(data / "still.gif")
    app = create_app(
        {
            "TESTING": True,
            "DATA_DIR": str(data),
            "WORKDIR": str(tmp_path / "w"),
            "ONNX_DIR": str(onnx_dir),
            "PRECOMPUTE": False,
        }
    )
    listing = {im["file_name"]: im for im in app.test_client().get("/api/images").get_json()}
    assert listing["anim.gif"]["animated"] is True and "first frame" in listing["anim.gif"]["note"]
    assert "animated" not in listing["still.gif"]


# -- 6. symlinks leaving the data folder ---------------------------------------------------------------
def test_symlink_to_a_file_outside_is_not_served(tmp_path, onnx_dir):
    from maskloop.server.http.app import create_app

    data = make_data_dir(tmp_path / "data", bad=False)
    outside = write_jpeg(tmp_path / "secret.jpg", 20, 20)
    (data / "link.jpg").symlink_to(outside)
    (data / "inside-link.jpg").symlink_to(data / "a.jpg")
    app = create_app(
        {
            "TESTING": True,
            "DATA_DIR": str(data),
            "WORKDIR": str(tmp_path / "w"),
            "ONNX_DIR": str(onnx_dir),
            "PRECOMPUTE": False,
        }
    )
    client = app.test_client()
    ids = image_ids(client)
    listing = {im["file_name"]: im for im in client.get("/api/images").get_json()}
    assert listing["link.jpg"]["status"] == "error" and "outside the data folder" in listing["link.jpg"]["error"]
    assert client.get(f"/api/images/{ids['link.jpg']}/file").status_code in (403, 422)
    assert client.get(f"/api/images/{ids['inside-link.jpg']}/file").status_code == 200  # a link inside is fine


def test_scanned_file_swapped_for_a_symlink_is_refused_at_send_time(client, ids):
    data = Path(client.application.config["DATA_DIR"])
    assert client.get(f"/api/images/{ids['a.jpg']}/file").status_code == 200
    (data / "a.jpg").unlink()
    (data / "a.jpg").symlink_to("/etc/passwd")
    r = client.get(f"/api/images/{ids['a.jpg']}/file")
    assert r.status_code == 403 and "outside the data folder" in error_of(r)
    assert b"root:" not in r.data
    assert client.get(f"/api/images/{ids['a.jpg']}/embedding").status_code == 403


# -- 7. what used to be a 500 -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "/api/images/{big}",
        "/api/images/{big}/file",
        "/api/images/{big}/embedding",
        "/api/images/{big}/annotations",
        "/api/annotations/{big}",
        "/api/categories/{big}",
    ],
)
def test_ids_above_int64_are_404(client, url):
    for big in (2**63, 2**64, 10**30):
        r = client.get(url.format(big=big))
        assert r.status_code in (404, 405), (url, big)
    assert client.delete(f"/api/annotations/{2**64}").status_code == 404
    assert client.patch(f"/api/categories/{2**64}", json={"name": "x"}).status_code == 404


@pytest.mark.parametrize(
    "field, value",
    [
        ("category_id", 10**30),
        ("category_id", -(10**30)),
        ("clicks", 10**30),
        ("seconds", 10**400),
        ("predicted_iou", 10**400),
        ("seconds", float("inf")),
        ("clicks", 1e308),
    ],
)
def test_huge_numbers_are_400(client, ids, cat, field, value):
    body = {**mask_body(cat["id"]), field: value}
    text = json.dumps(body).replace("Infinity", "1e999")  # 1e999 parses as inf
    r = post_raw(client, f"/api/images/{ids['a.jpg']}/annotations", text)
    assert r.status_code == 400 and field in error_of(r)


def test_1e308_seconds_is_a_number_and_is_stored(client, ids, cat):
    r = client.post(f"/api/images/{ids['a.jpg']}/annotations", json=mask_body(cat["id"], seconds=1e308))
    assert r.status_code == 201 and r.get_json()["seconds"] == 1e308


def test_lone_surrogates_and_deep_json_are_400(client, ids, cat):
    for text in ('{"name": "\\ud800"}', '{"name": "a\\udfffb"}', '{"name": "x", "supercategory": "\\udc80"}'):
        r = post_raw(client, "/api/categories", text)
        assert r.status_code == 400 and "surrogate" in error_of(r)
    deep = '{"name": "x", "supercategory": ' + "[" * 100_000 + "]" * 100_000 + "}"
    r = post_raw(client, "/api/categories", deep)
    assert r.status_code == 400 and "nested" in error_of(r)
    prompts = '{"a": ' * 50 + "1" + "}" * 50
    r = post_raw(
        client,
        f"/api/images/{ids['a.jpg']}/annotations",
        json.dumps(mask_body(cat["id"]))[:-1] + f', "prompts": {prompts}}}',
    )
    assert r.status_code == 400 and "nested" in error_of(r)
    r = post_raw(client, "/api/categories", '{"name": "x", "n": ' + "9" * 5000 + "}")
    assert r.status_code == 400


@pytest.mark.parametrize(
    "query",
    [
        "format=polygon&tolerance=1e30",
        "tolerance=nan",
        "tolerance=inf",
        "tolerance=-1",
        "format=polygon&tolerance=1e400",
        "status=%ED%A0%80",
        "status=%FF%00",
        "format=" + "x" * 5000,
    ],
)
def test_export_query_values_are_400(client, query):
    r = client.get(f"/api/export/coco?{query}")
    assert r.status_code == 400


def test_category_delete_racing_annotation_post_never_500(client, ids):
    """The check and the delete are one transaction: each race ends 204 + 409 or 409 + 201."""
    app = client.application
    outcomes = set()
    for i in range(40):
        cid = client.post("/api/categories", json={"name": f"race{i}"}).get_json()["id"]
        results: dict[str, int] = {}
        barrier = threading.Barrier(2)

        def post() -> None:
            c = app.test_client()
            barrier.wait()
            results["post"] = c.post(f"/api/images/{ids['a.jpg']}/annotations", json=mask_body(cid)).status_code

        def delete() -> None:
            c = app.test_client()
            barrier.wait()
            results["delete"] = c.delete(f"/api/categories/{cid}").status_code

        threads = [threading.Thread(target=post), threading.Thread(target=delete)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert (results["post"], results["delete"]) in ((201, 409), (409, 204), (400, 204)), results
        outcomes.add((results["post"], results["delete"]))
    cats = {c["id"] for c in client.get("/api/categories").get_json()}
    for a in client.get(f"/api/images/{ids['a.jpg']}/annotations").get_json():
        assert a["category_id"] in cats


@pytest.mark.parametrize(
    "coco_text, fragment",
    [
        ('{"images": [], "categories": [{"id": 1, "name": "\\ud800"}], "annotations": []}', "surrogate"),
        ('{"images": [], "categories": [{"id": 1, "name": "a\\u0000"}], "annotations": []}', "NUL"),
        ('{"images": [], "categories": [], "annotations": [' + "[" * 100_000 + "]" * 100_000 + "]}", "nested"),
        (
            '{"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1, "name": "x"}], "annotations": '
            '[{"image_id": 1, "category_id": 1, "segmentation": [[0, 0, 1e400, 0, 5, 5]]}]}',
            "finite",
        ),
        (
            '{"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1, "name": "x"}], "annotations": '
            '[{"image_id": 1, "category_id": 1, "segmentation": [[0, 0, ' + "1" + "0" * 400 + ", 0, 5, 5]]}]}",
            "finite",
        ),
        ('{"images": [], "categories": [], "annotations": [{"id": ' + "9" * 5000 + "}]}", "not usable JSON"),
        (
            '{"images": [{"id": 1, "file_name": "a.jpg", "width": 1e400}], "categories": [{"id": 1, "name": "x"}], '
            '"annotations": [{"image_id": 1, "category_id": 1, "segmentation": [[0, 0, 9, 0, 5, 5]]}]}',
            "the file says",
        ),
    ],
)
def test_cli_import_bad_values_is_one_line_exit_2(tmp_path, capsys, coco_text, fragment):
    from maskloop.cli import main

    data = make_data_dir(tmp_path / "data", bad=False)
    src = tmp_path / "in.json"
    src.write_text(coco_text)
    assert main(["import-coco", str(src), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err and len(err) < 500


@pytest.mark.parametrize("tolerance", ["1e30", "nan", "inf", "-1"])
def test_cli_export_bad_tolerance_is_one_line_exit_2(tmp_path, capsys, tolerance):
    from maskloop.cli import main

    data = make_data_dir(tmp_path / "data", bad=False)
    assert (
        main(["export-coco", "--data", str(data), "--out", "-", "--format", "polygon", "--tolerance", tolerance]) == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tolerance" in err


# -- 8. strings: sizes, NUL, spaces, types; a 60000x1 image; token mode ---------------------------------
def test_long_names_and_prompts_are_refused(client, ids, cat):
    r = client.post("/api/categories", json={"name": "n" * 50_000_000})
    assert r.status_code in (400, 413) and len(r.data) < 1000
    r = client.post("/api/categories", json={"name": "n" * 201})
    assert r.status_code == 400 and "at most 200" in error_of(r)
    r = client.post(f"/api/images/{ids['a.jpg']}/annotations", json=mask_body(cat["id"], prompts="p" * 70_000))
    assert r.status_code == 400 and "prompts" in error_of(r)
    r = client.post(f"/api/images/{ids['a.jpg']}/annotations", json=mask_body(cat["id"], model="m" * 10_000))
    assert r.status_code == 400 and "model" in error_of(r)


def test_nul_spaces_and_non_string_supercategory_are_refused(client, cat):
    assert "NUL" in error_of(client.post("/api/categories", json={"name": "a\x00b"}))
    r = client.post("/api/categories", json={"name": " cat "})
    assert r.status_code == 400 and "whitespace" in error_of(r)  # not merged with "cat"
    r = client.post("/api/categories", json={"name": "dog", "supercategory": ["a"]})
    assert r.status_code == 400 and "supercategory must be a string" in error_of(r)
    r = client.patch(f"/api/categories/{cat['id']}", json={"supercategory": {"a": 1}})
    assert r.status_code == 400
    assert [c["name"] for c in client.get("/api/categories").get_json()] == ["cat"]


def test_import_refuses_names_equal_after_stripping_and_list_supercategory(tmp_path):
    from maskloop.errors import UserError
    from maskloop.server.jobs.catalog import scan
    from maskloop.server.jobs.coco import import_coco
    from maskloop.server.store.db import open_database

    data = make_data_dir(tmp_path / "data", bad=False)
    conn = open_database(tmp_path / "w" / "m.db")
    scan(conn, data)
    base = {"images": [], "annotations": []}
    with pytest.raises(UserError, match="same as categories"):
        import_coco(conn, {**base, "categories": [{"id": 1, "name": "dupname"}, {"id": 2, "name": " dupname "}]})
    with pytest.raises(UserError, match="supercategory must be a string"):
        import_coco(conn, {**base, "categories": [{"id": 1, "name": "x", "supercategory": ["a"]}]})
    assert conn.execute("SELECT count(*) FROM category").fetchone()[0] == 0
    conn.close()


def test_a_60000x1_image_is_marked_unusable_at_scan(tmp_path, onnx_dir):
    from maskloop.server.http.app import create_app

    data = tmp_path / "data"
    data.mkdir()
    Image.new("L", (60000, 1), 128).save(data / "line.png")
    Image.new("L", (1, 3000), 128).save(data / "column.png")  # 1024 / 3000 rounds to 0 pixels as well
    Image.new("L", (1, 1500), 128).save(data / "thin-but-fine.png")  # 0.68 px -> 1
    app = create_app(
        {
            "TESTING": True,
            "DATA_DIR": str(data),
            "WORKDIR": str(tmp_path / "w"),
            "ONNX_DIR": str(onnx_dir),
            "PRECOMPUTE": False,
        }
    )
    listing = {im["file_name"]: im for im in app.test_client().get("/api/images").get_json()}
    assert listing["line.png"]["status"] == "error" and "too thin" in listing["line.png"]["error"]
    assert listing["column.png"]["status"] == "error"
    assert listing["thin-but-fine.png"]["status"] == "not_started"
    assert app.extensions["maskloop"].embeddings.progress()["total"] == 1


def test_token_mode_protects_stats_and_node_modules_stays_hidden(data_dir, tmp_path, onnx_dir):
    from maskloop.server.http.app import create_app

    web = tmp_path / "web"
    (web / "node_modules" / "pkg").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html>")
    (web / "node_modules" / "pkg" / "secret.js").write_text("TOPSECRET")
    app = create_app(
        {
            "TESTING": True,
            "DATA_DIR": str(data_dir),
            "WORKDIR": str(tmp_path / "w"),
            "ONNX_DIR": str(onnx_dir),
            "PRECOMPUTE": False,
            "HOST": "0.0.0.0",
            "TOKEN": "tok-tok-tok",
            "WEB_DIR": str(web),
        }
    )
    client = app.test_client()
    assert client.get("/stats").status_code == 401
    assert client.get("/stats?token=tok-tok-tok").status_code == 200
    for path in (
        "/web/node_modules/pkg/secret.js",
        "/web/./node_modules/pkg/secret.js",
        "/web/x/../node_modules/pkg/secret.js",
        "/web/.//node_modules/pkg/secret.js",
    ):
        r = client.get(path)
        assert r.status_code == 404 and b"TOPSECRET" not in r.data, path


@pytest.mark.parametrize(
    "flags, fragment",
    [
        (["--points-per-side", str(10**30)], "--points-per-side must be from 1 to 256"),
        (["--points-per-side", "0"], "--points-per-side must be from 1 to 256"),
        (["--crop-layers", "1000"], "--crop-layers"),
        (["--pred-iou-thresh", "nan"], "--pred-iou-thresh must be a finite number"),
    ],
)
def test_cli_propose_bad_numbers_is_one_line_exit_2(tmp_path, capsys, flags, fragment):
    from maskloop.cli import main

    data = make_data_dir(tmp_path / "data", bad=False)
    assert main(["propose", "--data", str(data), *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err


@pytest.mark.slow
def test_export_process_exits_with_a_killed_server(tmp_path, onnx_dir):
    """The export child must not outlive ``maskloop serve``, even after a SIGKILL."""
    import time
    import urllib.request

    from test_server_durability import start_server

    def alive(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
        except OSError:
            return False

    server = start_server(make_data_dir(tmp_path / "data", bad=False), tmp_path / "work", onnx_dir, "--no-precompute")
    proc = server.proc
    try:
        with urllib.request.urlopen(f"{server.url}/api/export/coco?format=polygon", timeout=120) as response:
            assert response.status == 200 and json.loads(response.read())["annotations"] == []
        children = {
            int(c) for task in Path(f"/proc/{proc.pid}/task").iterdir() for c in (task / "children").read_text().split()
        }
        assert children
    finally:
        server.kill()
    deadline = time.monotonic() + 20
    while any(alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(c) for c in children)
