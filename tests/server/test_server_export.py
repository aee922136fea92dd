"""The data set exports (``maskloop export --format yolo-seg|voc``, ``GET /api/export/yolo-seg|voc``):
polygons and PNGs, each format read back by its usual reader and compared with the COCO export of
the same store, file names, and the bad inputs that must leave nothing written."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from support.cli import run
from support.data import image_ids, square_mask

from maskloop import masks
from maskloop.errors import UserError
from maskloop.server.jobs import voc, yolo_seg
from maskloop.server.jobs.export_dataset import export_names

VOC_MINI = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "voc-mini"
needs_voc_mini = pytest.mark.skipif(not VOC_MINI.is_dir(), reason="../shared/datasets/voc-mini is not here")


def fill(line: str, height: int, width: int) -> np.ndarray:
    """One YOLO label line drawn as Ultralytics' ``polygon2mask`` draws it (``cv2.fillPoly`` on the
    coordinates scaled to pixels and truncated to integers), HxW bool."""
    xy = np.array(line.split()[1:], dtype=np.float64).reshape(-1, 2) * [width, height]
    return cv2.fillPoly(np.zeros((height, width), np.uint8), [xy.astype(np.int32)], 1).astype(bool)


def shapes_mask() -> np.ndarray:
    """60x80: a square with two holes, an island in one of them, a second part, and a lone pixel."""
    mask = square_mask(60, 80, 5, 5, 45, 50)
    mask[20:30, 15:25] = 0
    mask[30:40, 30:40] = 0
    mask[32:36, 32:36] = 1
    mask |= square_mask(60, 80, 55, 10, 75, 20)
    mask[58, 78] = 1
    return mask


def holed_square() -> np.ndarray:
    """50x50: a square with three holes in a row."""
    mask = square_mask(50, 50, 2, 2, 48, 48)
    for x in (8, 20, 32):
        mask[10:20, x : x + 6] = 0
    return mask


# -- pure functions ----------------------------------------------------------------------------
def test_yolo_lines_split_parts_and_bridge_holes():
    mask = shapes_mask()
    lines = yolo_seg.label_lines(mask, 4)
    assert len(lines) == 3 and all(line.startswith("4 ") for line in lines)  # the lone pixel has no polygon
    values = np.array([v for line in lines for v in line.split()[1:]], dtype=float)
    assert values.min() >= 0 and values.max() <= 1
    drawn = np.any([fill(line, *mask.shape) for line in lines], axis=0)
    expected = mask.astype(bool)
    expected[58, 78] = False
    assert not drawn[20:30, 15:25].any() and not drawn[30:32, 30:40].any()  # the holes stay holes
    assert masks.mask_iou(drawn, expected) >= 0.99
    simpler = yolo_seg.label_lines(mask, 4, tolerance=2.0)
    assert len(simpler) == 3 and sum(map(len, simpler)) < sum(map(len, lines))


def test_voc_palette_and_overlaps():
    colours = voc.palette()
    assert colours[3:6] == (128, 0, 0) and colours[15 * 3 : 16 * 3] == (192, 128, 128)
    assert colours[255 * 3 :] == (224, 224, 192)  # VOC's void colour
    big, small = square_mask(20, 30, 0, 0, 20, 20), square_mask(20, 30, 5, 5, 10, 10)
    instances = [voc.Instance(7, 2, int(small.sum()), masks.encode(small)), voc.Instance(3, 1, 400, masks.encode(big))]
    classes, objects = voc.label_maps(20, 30, instances, "x.jpg")
    assert classes[7, 7] == 2 and objects[7, 7] == 2  # the smaller mask wins; instances numbered by id
    assert classes[0, 0] == 1 and objects[0, 0] == 1 and classes[0, 25] == objects[0, 25] == 0
    png = Image.open(io.BytesIO(voc.png_bytes(classes)))
    assert png.mode == "P" and png.size == (30, 20) and np.array_equal(np.array(png), classes)
    with pytest.raises(UserError, match="line break"):
        voc.labels_txt(["cat", "two\nlines"])
    with pytest.raises(UserError, match="at most 254"):
        voc.label_maps(2, 2, [voc.Instance(i, 1, 1, masks.encode(np.ones((2, 2), np.uint8))) for i in range(255)], "x")


def test_export_names_keep_every_image():
    assert export_names(["a/cat.jpg", "dog.png"]) == {"a/cat.jpg": "cat", "dog.png": "dog"}
    assert export_names(["train/0001.jpg", "val/0001.JPG", "0002.jpg"]) == {
        "train/0001.jpg": "train__0001",
        "val/0001.JPG": "val__0001",
        "0002.jpg": "0002",
    }
    assert export_names(["my cat.jpg", "sub dir/my cat.png", "my\tdog.jpg"]) == {
        "my cat.jpg": "my_cat",
        "sub dir/my cat.png": "sub_dir__my_cat",
        "my\tdog.jpg": "my_dog",
    }
    assert export_names(["a/X.jpg", "b/x.jpg"]) == {"a/X.jpg": "a__X", "b/x.jpg": "b__x"}  # case-blind disks too
    with pytest.raises(UserError, match=r"images x.jpg and x.png would both be exported as 'x'"):
        export_names(["x.jpg", "x.png"])


# -- each format read back by its usual reader, against the COCO export ---------------------------
@pytest.fixture(scope="module")
def voc_mini_exports(tmp_path_factory):
    """voc-mini imported with ``import-coco`` into a temp project, exported in all three formats
    (None when voc-mini is not here)."""
    if not VOC_MINI.is_dir():
        return None
    root = tmp_path_factory.mktemp("voc-mini")
    data = root / "data"
    shutil.copytree(VOC_MINI / "JPEGImages", data / "JPEGImages")
    assert run("import-coco", str(VOC_MINI / "annotations.json"), "--data", str(data)).returncode == 0
    for fmt, out in (("coco", "coco.json"), ("yolo-seg", "yolo"), ("voc", "voc")):
        done = run("export", "--format", fmt, "--out", str(root / out), "--data", str(data))
        assert done.returncode == 0, done.stderr
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(root / "coco.json"))
    return root, coco


@pytest.fixture(scope="module")
def shapes_export(tmp_path_factory) -> Path:
    """``shapes_mask`` on one image, imported as RLE, exported as yolo-seg; the export folder."""
    root = tmp_path_factory.mktemp("shapes")
    (root / "data").mkdir()
    Image.new("RGB", (80, 60)).save(root / "data" / "shapes.png")
    segmentation = masks.encode(shapes_mask())
    coco = {
        "images": [{"id": 1, "file_name": "shapes.png"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": segmentation}],
        "categories": [{"id": 1, "name": "shape"}],
    }
    (root / "in.json").write_text(json.dumps(coco))
    assert run("import-coco", str(root / "in.json"), "--data", str(root / "data")).returncode == 0
    done = run("export", "--format", "yolo-seg", "--out", str(root / "yolo"), "--data", str(root / "data"))
    assert done.returncode == 0, done.stderr
    return root / "yolo"


@pytest.fixture(scope="module")
def ultralytics_read(tmp_path_factory, shapes_export, voc_mini_exports):
    """The YOLO exports as Ultralytics reads them, and ``merge_multi_segment`` of ``holed_square``'s
    rings: one child process for the module (see ``support/ultralytics_reader.py``)."""
    from support.ultralytics_reader import read_with_ultralytics

    datasets = [str(shapes_export / "data.yaml")]
    if voc_mini_exports is not None:
        datasets.append(str(voc_mini_exports[0] / "yolo" / "data.yaml"))
    rings = yolo_seg.rings_with_holes(holed_square())[0]
    merge = [[r.reshape(-1).tolist() for r in rings[:2]], [r.reshape(-1).tolist() for r in rings]]
    return read_with_ultralytics({"datasets": datasets, "merge": merge}, tmp_path_factory.mktemp("ultralytics"))


def test_bridge_is_ultralytics_merge_multi_segment(ultralytics_read):
    """Outer ring and one hole: the very path of Ultralytics' converter; more holes: the same pixels."""
    rings = yolo_seg.rings_with_holes(holed_square())[0]
    assert len(rings) == 4
    one_hole, three_holes = (np.array(xy) for xy in ultralytics_read["merge"])
    assert np.array_equal(yolo_seg.bridge(rings[:2]), one_hole)
    ours = yolo_seg.bridge(rings)
    draw = lambda xy: cv2.fillPoly(np.zeros((50, 50), np.uint8), [xy.astype(np.int32)], 1)
    assert len(ours) == len(three_holes) and np.array_equal(draw(ours), draw(three_holes))


def test_yolo_seg_holes_and_parts_read_back_with_ultralytics(shapes_export, ultralytics_read):
    read = ultralytics_read["datasets"][str(shapes_export / "data.yaml")]
    assert read["train"] == read["val"] == str((shapes_export / "images").resolve()) and read["names"] == ["shape"]
    image = read["images"]["shapes.png"]
    assert image["shape"] == [60, 80] and list(image["classes"]) == ["0"]
    drawn = masks.decode(image["classes"]["0"]).astype(bool)
    expected = shapes_mask().astype(bool)
    expected[58, 78] = False  # a lone pixel has no polygon
    assert not drawn[20:30, 15:25].any() and drawn[33, 33]  # a hole, and the island inside the other
    assert masks.mask_iou(drawn, expected) >= 0.99


def class_masks(coco: COCO, image: dict) -> dict[int, np.ndarray]:
    """Category index (in the COCO file's order) -> the union of the image's masks of that category."""
    out = {}
    for index, cat in enumerate(coco.dataset["categories"]):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]], catIds=[cat["id"]]))
        if anns:
            out[index] = np.any([coco.annToMask(a) for a in anns], axis=0)
    return out


def by_stem(coco: COCO) -> dict[str, dict]:
    return {Path(img["file_name"]).stem: img for img in coco.dataset["images"]}


@needs_voc_mini
def test_voc_mini_yolo_seg_reads_back_with_ultralytics(voc_mini_exports, ultralytics_read):
    root, coco = voc_mini_exports
    read = ultralytics_read["datasets"][str(root / "yolo" / "data.yaml")]
    assert read["train"] == read["val"] == str((root / "yolo" / "images").resolve())
    assert read["names"] == [c["name"] for c in coco.dataset["categories"]]
    assert len(read["images"]) == len(coco.dataset["images"]) == 3
    ious = []
    for file_name, image_read in read["images"].items():
        image = by_stem(coco)[Path(file_name).stem]
        assert image_read["shape"] == [image["height"], image["width"]]
        assert (root / "yolo" / "images" / file_name).read_bytes() == (VOC_MINI / image["file_name"]).read_bytes()
        expected = class_masks(coco, image)
        drawn = {int(c): masks.decode(rle).astype(bool) for c, rle in image_read["classes"].items()}
        assert set(drawn) == set(expected)
        ious += [masks.mask_iou(drawn[c], expected[c]) for c in expected]
    print(f"yolo-seg round trip on voc-mini: min IoU {min(ious):.4f} over {len(ious)} image-class pairs")
    assert min(ious) >= 0.9


@needs_voc_mini
def test_voc_mini_voc_reads_back_by_the_devkit_layout(voc_mini_exports):
    root, coco = voc_mini_exports
    out = root / "voc"
    names = (out / "labels.txt").read_text().splitlines()
    assert names == ["background", *(c["name"] for c in coco.dataset["categories"])]
    ids = (out / "ImageSets" / "Segmentation" / "default.txt").read_text().split()
    assert sorted(ids) == sorted(by_stem(coco))
    ious = []
    for image_id in ids:
        image = by_stem(coco)[image_id]
        assert (out / "JPEGImages" / f"{image_id}.jpg").is_file()
        pngs = [Image.open(out / folder / f"{image_id}.png") for folder in ("SegmentationClass", "SegmentationObject")]
        for png in pngs:
            assert png.mode == "P" and png.size == (image["width"], image["height"])
            assert png.getpalette()[: 3 * 21] == list(voc.palette()[: 3 * 21])
        classes, objects = (np.array(png) for png in pngs)
        expected = class_masks(coco, image)
        assert set(np.unique(classes)) == {0, *(c + 1 for c in expected)}
        ious += [masks.mask_iou(classes == c + 1, expected[c]) for c in expected]
        anns = sorted(coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]])), key=lambda a: a["id"])
        assert objects.max() == len(anns)
        for number, ann in enumerate(anns, start=1):  # instances in id order, each of its own class
            assert masks.mask_iou(objects == number, coco.annToMask(ann).astype(bool)) >= 0.95
            assert np.all(
                classes[objects == number] == coco.dataset["categories"].index(coco.cats[ann["category_id"]]) + 1
            )
    print(f"voc round trip on voc-mini: min IoU {min(ious):.4f} over {len(ious)} image-class pairs")
    assert min(ious) >= 0.98


# -- the command: names, bad input ------------------------------------------------------------------
@pytest.fixture
def project(tmp_path):
    """A folder with the same file name in two sub-folders and one mask on each image."""
    data = tmp_path / "data"
    for sub, colour in (("day", 40), ("night", 200)):
        (data / sub).mkdir(parents=True)
        Image.new("RGB", (40, 30), (colour, colour, colour)).save(data / sub / "0001.jpg")
    Image.new("RGB", (20, 20)).save(data / "plain.png")
    anns = [
        {"id": i, "image_id": i, "category_id": 1, "segmentation": [[4, 4, 16, 4, 16, 14, 4, 14]]} for i in (1, 2, 3)
    ]
    images = [{"id": i, "file_name": f} for i, f in enumerate(("day/0001.jpg", "night/0001.jpg", "plain.png"), start=1)]
    coco = tmp_path / "in.json"
    coco.write_text(json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "box"}]}))
    assert run("import-coco", str(coco), "--data", str(data)).returncode == 0
    return data


def test_same_stem_in_two_folders_is_kept_apart(project, tmp_path):
    out = tmp_path / "yolo"
    assert run("export", "--format", "yolo-seg", "--out", str(out), "--data", str(project)).returncode == 0
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["day__0001.txt", "night__0001.txt", "plain.txt"]
    assert (out / "images" / "night__0001.jpg").read_bytes() == (project / "night" / "0001.jpg").read_bytes()
    assert all((out / "labels" / n).read_text().startswith("0 ") for n in ("day__0001.txt", "plain.txt"))
    out = tmp_path / "voc"
    out.mkdir()  # an empty folder is fine
    assert run("export", "--format", "voc", "--out", str(out), "--data", str(project)).returncode == 0
    assert sorted((out / "ImageSets" / "Segmentation" / "default.txt").read_text().split()) == [
        "day__0001",
        "night__0001",
        "plain",
    ]


def one_line_error(done, fragment: str) -> None:
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and fragment in done.stderr, done.stderr


@pytest.mark.parametrize("fmt", ["yolo-seg", "voc"])
def test_bad_input_is_one_line_and_writes_nothing(project, tmp_path, fmt):
    def export(out: Path, *more: str):
        return run("export", "--format", fmt, "--out", str(out), "--data", str(project), *more)

    def entries() -> list[str]:
        return sorted(p.name for p in tmp_path.iterdir())

    before = entries()
    one_line_error(
        run("export", "--format", "yolo", "--out", str(tmp_path / "x"), "--data", str(project)), "invalid choice"
    )
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    one_line_error(export(full), "is not empty")
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    one_line_error(export(full / "keep.txt"), "is a file")
    one_line_error(export(full / "keep.txt" / "out"), "is not a folder")  # its parent is a file
    one_line_error(export(tmp_path / "no" / "such" / "out"), "does not exist")
    one_line_error(export(tmp_path / "x", "--status", "maybe"), "unknown annotation status")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        one_line_error(export(locked / "out"), "not writable")
        locked.rmdir()
    (project / "night" / "0001.jpg").unlink()  # annotated, then gone
    one_line_error(export(tmp_path / "x"), "image night/0001.jpg is no longer in the data folder")
    assert entries() == sorted([*before, "full"])  # no output, no temporary folder left behind


def test_coco_export_and_its_alias(project, tmp_path):
    out = tmp_path / "coco.json"
    assert run("export", "--format", "coco", "--out", str(out), "--data", str(project)).returncode == 0
    first = json.loads(out.read_text())
    alias = tmp_path / "alias.json"
    assert run("export-coco", "--out", str(alias), "--data", str(project), "--format", "polygon").returncode == 0
    second = json.loads(alias.read_text())
    assert [a["id"] for a in first["annotations"]] == [a["id"] for a in second["annotations"]] == [1, 2, 3]
    assert isinstance(second["annotations"][0]["segmentation"], list)
    one_line_error(run("export", "--format", "coco", "--out", str(tmp_path), "--data", str(project)), "is a folder")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


# -- the HTTP route ---------------------------------------------------------------------------------
def test_http_export_zips(client, data_dir):
    ids = image_ids(client)
    cat = client.post("/api/categories", json={"name": "thing"}).get_json()["id"]
    mask = square_mask(48, 64, 10, 10, 40, 30)
    body = {"category_id": cat, "segmentation": masks.encode(mask)}
    assert client.post(f"/api/images/{ids['a.jpg']}/annotations", json=body).status_code == 201

    r = client.get("/api/export/yolo-seg")
    assert r.status_code == 200 and r.mimetype == "application/zip"
    assert 'filename="maskloop-yolo-seg.zip"' in r.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(r.data)) as z:
        files = set(z.namelist())
        assert {
            "maskloop-yolo-seg/data.yaml",
            "maskloop-yolo-seg/labels/a.txt",
            "maskloop-yolo-seg/images/a.jpg",
        } <= files
        assert "path: null" in z.read("maskloop-yolo-seg/data.yaml").decode()  # the folder data.yaml is in
        (line,) = z.read("maskloop-yolo-seg/labels/a.txt").decode().splitlines()
        assert line.startswith("0 ") and z.read("maskloop-yolo-seg/labels/b.txt") == b""
        assert z.read("maskloop-yolo-seg/images/a.jpg") == (data_dir / "a.jpg").read_bytes()
    x, y = np.array(line.split()[1:], dtype=float).reshape(-1, 2).T
    assert (x.min() * 64, x.max() * 64, y.min() * 48, y.max() * 48) == pytest.approx((10.5, 39.5, 10.5, 29.5), abs=1e-3)

    r = client.get("/api/export/voc?status=accepted")
    assert r.status_code == 200 and r.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.data)) as z:
        assert z.read("maskloop-voc/labels.txt") == b"background\nthing\n"
        classes = np.array(Image.open(io.BytesIO(z.read("maskloop-voc/SegmentationClass/a.png"))))
        assert np.array_equal(classes, mask)
        listed = z.read("maskloop-voc/ImageSets/Segmentation/default.txt").decode().split()
        assert {"a", "b", "rotated", "café_photo_ünï"} <= set(listed)  # no white space in a name

    r = client.get("/api/export/tfrecord")
    assert r.status_code == 404 and "use coco, yolo-seg, voc" in r.get_json()["error"]
    assert client.get("/api/export/voc?status=maybe").status_code == 400
    (data_dir / "a.jpg").unlink()  # the store still holds its mask
    r = client.get("/api/export/voc?status=accepted,proposed")  # not made before: made now, and refused
    assert r.status_code == 400 and "a.jpg is no longer in the data folder" in r.get_json()["error"]
    assert client.get("/api/export/voc").status_code == 200  # the zip made before, while the store is unchanged
    assert client.post("/api/images/rescan").status_code == 200  # the store sees the file gone
    r = client.get("/api/export/voc")
    assert r.status_code == 400 and "a.jpg is no longer in the data folder" in r.get_json()["error"]
    exports = Path(client.application.config["WORKDIR"]) / "exports"
    assert not [p.name for p in exports.iterdir() if p.name.endswith(".tmp")]
