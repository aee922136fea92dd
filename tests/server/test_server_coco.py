"""COCO out and in: exact RLE round trip, polygons, COCOeval, import rules, the CLI commands."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from support.data import image_ids, make_data_dir, square_mask

from maskloop import masks
from maskloop.errors import UserError
from maskloop.server.jobs.coco import export_coco, import_coco, mask_to_polygons
from maskloop.server.store.db import open_database

BACKENDS = ("sqlite", "postgresql")  # every test on a store runs on both (tests/conftest.py)
VOC_MINI = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "voc-mini"


def blob(rng: np.random.Generator, h: int, w: int, holes: bool = False) -> np.ndarray:
    """A random mask of 1-3 filled ellipses (one ring cut out when ``holes``)."""
    mask = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        centre = (int(rng.integers(w // 4, 3 * w // 4)), int(rng.integers(h // 4, 3 * h // 4)))
        axes = (int(rng.integers(3, w // 3)), int(rng.integers(3, h // 3)))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    if holes:
        ys, xs = np.nonzero(mask)
        cy, cx = int(np.median(ys)), int(np.median(xs))
        mask[cy - 1 : cy + 2, cx - 1 : cx + 2] = 0
        mask[cy - 4 : cy + 5, cx - 4] = mask[cy - 4 : cy + 5, cx + 4] = 1
        mask[cy - 4, cx - 4 : cx + 5] = mask[cy + 4, cx - 4 : cx + 5] = 1
    return mask


def load_coco(data: dict, tmp_path: Path) -> COCO:
    path = tmp_path / "export.json"
    path.write_text(json.dumps(data))
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


# -- pure functions ----------------------------------------------------------------------------
def test_compressed_runs_agree_with_pycocotools():
    rng = np.random.default_rng(0)
    for _ in range(50):
        h, w = int(rng.integers(1, 60)), int(rng.integers(1, 60))
        mask = (rng.random((h, w)) < rng.uniform(0, 1)).astype(np.uint8)
        rle = masks.encode(mask)
        runs = masks.compressed_runs(rle["counts"])
        assert sum(runs) == h * w
        flat = np.repeat(np.arange(len(runs)) % 2, runs).astype(np.uint8)
        assert np.array_equal(flat.reshape((w, h)).T, mask)


def test_polygons_decode_exactly_for_masks_without_holes():
    rng = np.random.default_rng(1)
    cases = [blob(rng, int(rng.integers(20, 120)), int(rng.integers(20, 120))) for _ in range(60)]
    tiny = np.zeros((9, 9), np.uint8)
    tiny[4, 4] = 1
    diagonal = np.eye(9, dtype=np.uint8)
    edge = np.zeros((9, 9), np.uint8)
    edge[0, :] = edge[:, 8] = 1
    for mask in cases + [tiny, diagonal, edge, np.ones((5, 7), np.uint8)]:
        if not mask.any():
            continue
        polygons = mask_to_polygons(mask)
        h, w = mask.shape
        if polygons is None:  # overlapping ellipses can enclose a hole
            contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
            assert (hierarchy[0][:, 3] >= 0).any()
            continue
        assert all(len(p) >= 6 and len(p) % 2 == 0 for p in polygons)
        drawn = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, h, w)))
        assert np.array_equal(drawn, mask)


def test_masks_with_holes_stay_rle_and_tolerance_simplifies():
    rng = np.random.default_rng(2)
    assert mask_to_polygons(blob(rng, 80, 80, holes=True)) is None
    mask = blob(rng, 200, 200)
    exact, simple = mask_to_polygons(mask), mask_to_polygons(mask, tolerance=0.5)
    assert sum(map(len, simple)) < sum(map(len, exact))
    drawn = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(simple, 200, 200)))
    assert masks.mask_iou(drawn, mask) >= 0.98


# -- export through the API --------------------------------------------------------------------
@pytest.fixture
def annotated(client):
    """Five accepted masks (one with a hole, one in two parts) + one proposal over two images."""
    ids = image_ids(client)
    cat = client.post("/api/categories", json={"name": "thing"}).get_json()["id"]
    other = client.post("/api/categories", json={"name": "other"}).get_json()["id"]
    rng = np.random.default_rng(3)
    two_parts = square_mask(48, 64, 2, 2, 10, 10) | square_mask(48, 64, 40, 30, 60, 44)
    stored = {}
    for image, mask, category in [
        ("a.jpg", blob(rng, 48, 64), cat),
        ("a.jpg", blob(rng, 48, 64, holes=True), other),
        ("a.jpg", two_parts, cat),
        ("b.png", blob(rng, 40, 30), cat),
        ("b.png", square_mask(40, 30, 0, 0, 30, 40), other),
    ]:
        r = client.post(
            f"/api/images/{ids[image]}/annotations", json={"category_id": category, "segmentation": masks.encode(mask)}
        )
        assert r.status_code == 201
        stored[r.get_json()["id"]] = mask
    client.post(
        f"/api/images/{ids['b.png']}/annotations",
        json={"category_id": cat, "segmentation": masks.encode(square_mask(40, 30, 1, 1, 3, 3)), "status": "proposed"},
    )
    return stored


def test_rle_export_round_trips_exactly(client, annotated, tmp_path):
    r = client.get("/api/export/coco")
    assert r.status_code == 200 and r.mimetype == "application/json"
    data = r.get_json()
    coco = load_coco(data, tmp_path)
    assert sorted(coco.getAnnIds()) == sorted(annotated) and min(annotated) == 1
    assert min(img["id"] for img in data["images"]) == 1 and min(c["id"] for c in data["categories"]) == 1
    assert {img["file_name"] for img in data["images"]} >= {"a.jpg", "b.png", "rotated.jpg", "sub/café photo ünï.jpg"}
    assert not any(img["file_name"] in ("notes.jpg", "empty.png") for img in data["images"])
    for ann in data["annotations"]:
        assert ann["iscrowd"] == 0 and isinstance(ann["segmentation"]["counts"], str)
        mask = annotated[ann["id"]]
        assert np.array_equal(coco.annToMask(ann), mask)
        assert ann["area"] == int(mask.sum())
        ys, xs = np.nonzero(mask)
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]

    results = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "segmentation": a["segmentation"], "score": 1.0}
        for a in data["annotations"]
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(coco, coco.loadRes(results), "segm")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert evaluator.stats[0] == pytest.approx(1.0)


def test_provenance_tells_a_hand_fixed_mask_from_a_model_mask(client):
    """The page's hand edits (brush / eraser strokes, clean-ups), stored with the prompts, come out in the COCO export's
    ``provenance`` and are counted per model version."""
    ids = image_ids(client)
    cat = client.post("/api/categories", json={"name": "thing"}).get_json()["id"]
    model_made = {"points": [[10, 10, 1]], "box": None, "candidate": 1}
    stroke = {"mode": "brush", "radius": 4.5, "points": [1.0, 2.0, 30.5, 2.0]}
    made = {}
    for name, prompts in (("model", model_made), ("hand", {**model_made, "edits": [stroke]})):
        r = client.post(
            f"/api/images/{ids['a.jpg']}/annotations",
            json={
                "category_id": cat,
                "segmentation": masks.encode(square_mask(48, 64, 2, 2, 20, 20)),
                "clicks": 1,
                "seconds": 3.5,
                "prompts": prompts,
                "stage": "manual",
            },
        )
        assert r.status_code == 201
        made[name] = r.get_json()["id"]
    by_id = {a["id"]: a for a in client.get("/api/export/coco").get_json()["annotations"]}
    hand, model = by_id[made["hand"]]["provenance"], by_id[made["model"]]["provenance"]
    assert hand["hand_edited"] is True and hand["prompts"]["edits"] == [stroke]
    assert model["hand_edited"] is False and "edits" not in model["prompts"]
    assert hand["stage"] == "manual" and hand["clicks"] == 1 and hand["seconds"] == 3.5
    (base,) = [v for v in client.get("/api/models").get_json()["versions"] if v["version"] == "base"]
    assert base["usage"]["masks"] == 2 and base["usage"]["hand_edited"] == 1


def test_polygon_export(client, annotated, tmp_path):
    data = client.get("/api/export/coco?format=polygon").get_json()
    coco = load_coco(data, tmp_path)
    kinds = {}
    for ann in data["annotations"]:
        mask = annotated[ann["id"]]
        kinds[ann["id"]] = "polygon" if isinstance(ann["segmentation"], list) else "rle"
        assert masks.mask_iou(coco.annToMask(ann), mask) >= 0.98
        if kinds[ann["id"]] == "polygon":
            assert np.array_equal(coco.annToMask(ann), mask)  # tolerance 0: exact
    with_holes = {
        i
        for i, m in annotated.items()
        if (cv2.findContours(m, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)[1][0][:, 3] >= 0).any()
    }
    assert 2 in with_holes and {i for i, kind in kinds.items() if kind == "rle"} == with_holes
    two_parts = next(a for a in data["annotations"] if a["id"] == 3)
    assert len(two_parts["segmentation"]) == 2
    simplified = client.get("/api/export/coco?format=polygon&tolerance=1.5").get_json()
    for ann, exact in zip(simplified["annotations"], data["annotations"]):
        if isinstance(ann["segmentation"], list):  # fewer points; area/bbox describe the polygons drawn
            assert sum(map(len, ann["segmentation"])) <= sum(map(len, exact["segmentation"]))
            assert ann["area"] == coco.annToMask(ann).sum()
    assert client.get("/api/export/coco?format=svg").status_code == 400
    assert client.get("/api/export/coco?tolerance=-1").status_code == 400


def test_export_status_filter(client, annotated):
    assert len(client.get("/api/export/coco?status=proposed").get_json()["annotations"]) == 1
    assert len(client.get("/api/export/coco?status=all").get_json()["annotations"]) == len(annotated) + 1
    assert client.get("/api/export/coco?status=maybe").status_code == 400


# -- import ------------------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path, database):
    """(connection, data folder) of a scanned temp folder, no app."""
    from maskloop.server.jobs.catalog import scan

    data = make_data_dir(tmp_path / "data", bad=False)
    conn = open_database(database)
    scan(conn, data)
    yield conn, data
    conn.close()


def coco_file(annotations: list[dict], images: list[dict] | None = None) -> dict:
    return {
        "images": images
        or [
            {"id": 0, "file_name": "a.jpg", "width": 64, "height": 48},
            {"id": 7, "file_name": "photos/b.png", "width": 30, "height": 40},
        ],
        "categories": [{"id": 0, "name": "_background_"}, {"id": 5, "name": "cat", "supercategory": "animal"}],
        "annotations": annotations,
    }


def test_import_polygons_rle_and_uncompressed(store):
    conn, _ = store
    square = square_mask(48, 64, 4, 4, 12, 10)
    uncompressed = mask_utils.frPyObjects({"size": [40, 30], "counts": [0, 5, 1195]}, 40, 30)
    anns = [
        {"id": 0, "image_id": 0, "category_id": 5, "segmentation": [[4, 4, 12, 4, 12, 10, 4, 10]], "iscrowd": 0},
        {"id": 1, "image_id": 0, "category_id": 5, "segmentation": masks.encode(square)},
        {
            "id": 2,
            "image_id": 7,
            "category_id": 5,
            "segmentation": {"size": [40, 30], "counts": [0, 5, 1195]},
            "iscrowd": 1,
        },
        {
            "id": 3,
            "image_id": 0,
            "category_id": 5,
            "segmentation": [[1, 1, 3, 1, 3, 3, 1, 3], [20, 20, 30, 20, 30, 30, 20, 30]],
        },  # two parts
    ]
    report = import_coco(conn, coco_file(anns))
    assert report.annotations == 4 and report.images_matched == 2
    assert report.categories_created == ["_background_", "cat"]
    rows = conn.execute("SELECT * FROM annotation ORDER BY id").fetchall()
    assert [r["id"] for r in rows] == [1, 2, 3, 4]
    assert {r["stage"] for r in rows} == {"import"} and {r["status"] for r in rows} == {"accepted"}
    decoded = [masks.decode({"size": [r["rle_height"], r["rle_width"]], "counts": r["rle_counts"]}) for r in rows]
    assert np.array_equal(decoded[0], square) and np.array_equal(decoded[1], square)
    assert np.array_equal(decoded[2], mask_utils.decode(uncompressed))
    assert rows[3]["area"] == 4 + 100
    # importing again reuses the categories by name
    another = {"id": 9, "image_id": 0, "category_id": 5, "segmentation": [[20, 4, 28, 4, 28, 10, 20, 10]]}
    report = import_coco(conn, coco_file([another]), as_proposals=True)
    assert report.categories_created == [] and report.annotations == 1
    assert conn.execute("SELECT status FROM annotation WHERE id=5").fetchone()[0] == "proposed"


def test_importing_the_same_annotations_again_is_a_no_op(store):
    conn, _ = store
    square = [[4, 4, 12, 4, 12, 10, 4, 10]]
    anns = [
        {"id": 1, "image_id": 0, "category_id": 5, "segmentation": square},
        {"id": 2, "image_id": 0, "category_id": 5, "segmentation": masks.encode(square_mask(48, 64, 4, 4, 12, 10))},
        {"id": 3, "image_id": 7, "category_id": 5, "segmentation": {"size": [40, 30], "counts": [0, 5, 1195]}},
    ]
    first = import_coco(conn, coco_file(anns))
    assert (first.annotations, first.annotations_already_stored) == (3, 0)  # a file's own repeats are kept
    before = conn.execute("SELECT * FROM annotation ORDER BY id").fetchall()

    again = import_coco(conn, coco_file(anns), as_proposals=True)  # whatever the status asked for
    assert (again.annotations, again.annotations_already_stored) == (0, 3)
    assert [tuple(r) for r in conn.execute("SELECT * FROM annotation ORDER BY id")] == [tuple(r) for r in before]

    # same name under another id in the file is the same category; another category or mask is new
    renumbered = coco_file([])
    renumbered["categories"] = [{"id": 40, "name": "cat"}, {"id": 41, "name": "dog"}]
    renumbered["annotations"] = [
        {"id": 1, "image_id": 0, "category_id": 40, "segmentation": square},
        {"id": 2, "image_id": 0, "category_id": 41, "segmentation": square},
        {"id": 3, "image_id": 0, "category_id": 40, "segmentation": [[4, 4, 13, 4, 13, 10, 4, 10]]},
    ]
    mixed = import_coco(conn, renumbered)
    assert (mixed.annotations, mixed.annotations_already_stored) == (2, 1)
    names = [
        r[0]
        for r in conn.execute(
            "SELECT c.name FROM annotation a JOIN category c ON c.id = a.category_id WHERE a.id > 3 ORDER BY a.id"
        )
    ]
    assert names == ["dog", "cat"]


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ({"segmentation": [[1, 2, 3, 4]]}, "polygon 0 has 4 coordinates"),
        ({"segmentation": [[1, 2, 3, 4, 5, "x"]]}, "not a finite number"),
        ({"segmentation": {"size": [10, 10], "counts": "PP2"}}, "does not match the image"),
        ({"segmentation": {"size": [48, 64], "counts": "0"}}, "RLE runs cover"),
        ({"segmentation": [[-10, -10, -5, -10, -5, -5]]}, "cover no pixel"),
        ({"category_id": 42}, "category_id 42 is not in the file's categories"),
        ({"image_id": 3}, "image_id 3 is not in the file's images"),
        ({"image_id": [0]}, "image_id [0] is not in the file's images"),
        ({"segmentation": None}, "no segmentation"),
    ],
)
def test_a_bad_annotation_is_reported_by_index_and_nothing_is_imported(store, bad, fragment):
    conn, _ = store
    good = {"id": 10, "image_id": 0, "category_id": 5, "segmentation": [[4, 4, 12, 4, 12, 10, 4, 10]]}
    anns = [good, dict(good, id=11), {**good, "id": 12, **bad}]
    with pytest.raises(UserError) as info:
        import_coco(conn, coco_file(anns))
    message = str(info.value)
    assert (
        message.startswith("nothing imported: annotations[2] (id 12):") and fragment in message and "\n" not in message
    )
    assert conn.execute("SELECT count(*) FROM annotation").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM category").fetchone()[0] == 0


def test_import_image_rules(store):
    conn, _ = store
    ann = {"id": 1, "image_id": 9, "category_id": 5, "segmentation": [[1, 1, 5, 1, 5, 5]]}
    missing = coco_file([ann], images=[{"id": 9, "file_name": "elsewhere/zzz.jpg"}])
    with pytest.raises(UserError, match="zzz.jpg' is not in the data folder"):
        import_coco(conn, missing)
    assert import_coco(conn, missing, skip_missing_images=True).annotations_skipped == 1
    wrong_size = coco_file([ann], images=[{"id": 9, "file_name": "rotated.jpg", "width": 64, "height": 48}])
    with pytest.raises(UserError, match="EXIF orientation"):
        import_coco(conn, wrong_size)
    by_base = coco_file([ann], images=[{"id": 9, "file_name": "C:\\data\\café photo ünï.jpg"}])
    assert import_coco(conn, by_base).images_matched == 1
    with pytest.raises(UserError, match="categories"):
        import_coco(conn, {"images": [], "annotations": [], "categories": "cat"})


@pytest.mark.skipif(not VOC_MINI.is_dir(), reason="../shared/datasets/voc-mini is not here")
def test_import_voc_mini(tmp_path):
    """Real file: ids from 0, a multi-part polygon, file names with a folder."""
    from maskloop.server.jobs.catalog import scan

    gt_path = VOC_MINI / "annotations.json"
    gt = json.loads(gt_path.read_text())
    conn = open_database(tmp_path / "voc.db")
    scan(conn, VOC_MINI, exclude=VOC_MINI / ".maskloop")
    report = import_coco(conn, gt)
    assert report.annotations == len(gt["annotations"]) == 12 and report.images_matched == 3
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_path))
    exported = export_coco(conn)
    coco_ours = load_coco(exported, tmp_path)
    ours_by_file = {img["file_name"]: img["id"] for img in exported["images"]}
    gt_sorted = sorted(gt["annotations"], key=lambda a: a["id"])
    ours_sorted = sorted(exported["annotations"], key=lambda a: a["id"])
    for gt_ann, our_ann in zip(gt_sorted, ours_sorted):
        file_name = coco_gt.imgs[gt_ann["image_id"]]["file_name"]
        assert our_ann["image_id"] == ours_by_file[file_name]
        assert np.array_equal(coco_ours.annToMask(our_ann), coco_gt.annToMask(gt_ann))
    multi = max(gt["annotations"], key=lambda a: len(a["segmentation"]))
    assert len(multi["segmentation"]) > 1


def test_cli_import_and_export(tmp_path, capsys):
    from maskloop.cli import main

    data = make_data_dir(tmp_path / "data", bad=True)
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    assert main(["import-coco", str(bad), "--data", str(data)]) == 2
    assert "is not valid JSON" in capsys.readouterr().err
    assert main(["import-coco", str(tmp_path / "absent.json"), "--data", str(data)]) == 2
    assert "COCO file not found" in capsys.readouterr().err
    anns = [{"id": 0, "image_id": 0, "category_id": 5, "segmentation": [[4, 4, 12, 4, 12, 10, 4, 10]]}]
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps(coco_file(anns, images=[{"id": 0, "file_name": "elsewhere.jpg"}])))
    assert main(["import-coco", str(elsewhere), "--data", str(data)]) == 2
    assert "annotations[0] (id 0): image 'elsewhere.jpg' is not in the data folder" in capsys.readouterr().err
    src = tmp_path / "in.json"
    src.write_text(json.dumps(coco_file(anns)))
    assert main(["import-coco", str(src), "--data", str(data), "--as-proposals"]) == 0
    assert "imported 1 proposals on 1 images" in capsys.readouterr().out
    assert main(["import-coco", str(src), "--data", str(data), "--as-proposals"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "maskloop: imported 0 proposals on 1 images",
        "maskloop: skipped 1 annotations already in the store (same image, mask and category)",
    ]
    out = tmp_path / "out.json"
    assert (
        main(["export-coco", "--data", str(data), "--out", str(out), "--status", "proposed", "--format", "polygon"])
        == 0
    )
    exported = json.loads(out.read_text())
    assert exported["annotations"][0]["segmentation"] == [[4.0, 4.0, 4.0, 10.0, 12.0, 10.0, 12.0, 4.0]]
    assert exported["annotations"][0]["area"] == 48
    assert (data / ".maskloop" / "maskloop.db").is_file()
    assert main(["export-coco", "--data", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "data folder not found" in capsys.readouterr().err
