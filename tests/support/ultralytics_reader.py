"""Reads YOLO segmentation data sets with Ultralytics' own code, in a process of its own.

``python ultralytics_reader.py REQUEST.json ANSWER.json``; the request holds
``{"datasets": [data.yaml, ...], "merge": [[ring, ring, ...], ...]}`` (a ring: flat x, y list).
The answer holds, per data set, every image's ``shape`` ([h, w]) and per class index the union of
its polygons drawn by ``ultralytics.data.utils.polygon2mask`` at full size (COCO RLE), and per
``merge`` entry the path ``ultralytics.data.converter.merge_multi_segment`` makes of the rings.

A process of its own because importing Ultralytics patches ``PIL.Image.open`` for the whole
process (and would try to pip-install a HEIF plugin on the first file Pillow cannot read), which
must not reach the other tests. Run with ``YOLO_OFFLINE=1`` and a temporary ``YOLO_CONFIG_DIR``
(``read_with_ultralytics`` does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def read_with_ultralytics(request: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Run this script on ``request`` in a child process; its answer (see the module)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "request.json").write_text(json.dumps(request))
    env = dict(os.environ, YOLO_OFFLINE="1", YOLO_CONFIG_DIR=str(workdir / "config"), YOLO_VERBOSE="0")
    done = subprocess.run(
        [sys.executable, __file__, str(workdir / "request.json"), str(workdir / "answer.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer: dict[str, Any] = json.loads((workdir / "answer.json").read_text())
    return answer


def main(request_path: str, answer_path: str) -> None:
    import numpy as np
    from pycocotools import mask as mask_utils
    from ultralytics.data import utils
    from ultralytics.data.converter import merge_multi_segment
    from ultralytics.data.dataset import YOLODataset

    utils.check_font = lambda *args, **kwargs: None  # a plotting font, fetched from the network
    request = json.loads(Path(request_path).read_text())
    datasets = {}
    for yaml_path in request.get("datasets", []):
        data = utils.check_det_dataset(yaml_path)
        dataset = YOLODataset(img_path=data["train"], data=data, task="segment", augment=False, imgsz=640)
        images = {}
        for label in dataset.labels:
            height, width = label["shape"]
            classes: dict[int, Any] = {}
            for cls, segment in zip(label["cls"][:, 0].astype(int), label["segments"]):
                drawn = utils.polygon2mask((height, width), [segment * [width, height]], 1, 1)
                classes[int(cls)] = classes.get(int(cls), np.zeros((height, width), np.uint8)) | drawn
            images[Path(label["im_file"]).name] = {
                "shape": [height, width],
                "classes": {
                    c: {**rle, "counts": rle["counts"].decode()}
                    for c, m in classes.items()
                    for rle in [mask_utils.encode(np.asfortranarray(m))]
                },
            }
        datasets[yaml_path] = {
            "train": data["train"],
            "val": data["val"],
            "names": list(data["names"].values()),
            "images": images,
        }
    merged = [np.concatenate(merge_multi_segment(rings)).tolist() for rings in request.get("merge", [])]
    Path(answer_path).write_text(json.dumps({"datasets": datasets, "merge": merged}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
