"""Config layering (defaults -> MASKLOOP_* -> explicit) and the store helpers other commands use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.data import make_data_dir, square_mask

from maskloop import masks
from maskloop.errors import UserError
from maskloop.server.http.app import create_app
from maskloop.server.jobs.project import open_store
from maskloop.server.store.annotations import insert_annotation
from maskloop.server.store.categories import ensure_category
from maskloop.server.store.db import transaction


def test_layering(tmp_path, monkeypatch, onnx_dir):
    data = make_data_dir(tmp_path / "data", bad=False)
    monkeypatch.setenv("MASKLOOP_SCAN_INTERVAL", "7.5")
    monkeypatch.setenv("MASKLOOP_PRECOMPUTE", "false")
    monkeypatch.setenv("MASKLOOP_DATA_DIR", str(data))
    monkeypatch.setenv("MASKLOOP_ONNX_DIR", str(onnx_dir))
    app = create_app({"TESTING": True, "SCAN_INTERVAL": 1.0})
    assert app.config["PRECOMPUTE"] is False and app.config["SCAN_INTERVAL"] == 1.0  # explicit beats environment
    assert app.config["DATA_DIR"] == str(data.resolve())
    assert Path(app.config["DATABASE"]) == data.resolve() / ".maskloop" / "maskloop.db"  # default work folder
    assert Path(app.config["ONNX_DIR"]) == onnx_dir.resolve()
    monkeypatch.delenv("MASKLOOP_SCAN_INTERVAL")
    assert create_app({"TESTING": True}).config["SCAN_INTERVAL"] == 2.0


def test_missing_data_folder(tmp_path):
    with pytest.raises(UserError, match="data folder not found"):
        create_app({"TESTING": True, "DATA_DIR": str(tmp_path / "absent"), "PRECOMPUTE": False})


def test_open_store_and_insert(tmp_path):
    data = make_data_dir(tmp_path / "data", bad=False)
    store = open_store(data, tmp_path / "work", progress=False)
    conn = store.conn
    image_id = conn.execute("SELECT id FROM image WHERE file_name='a.jpg'").fetchone()[0]
    mask = square_mask(48, 64, 1, 2, 5, 9)
    with transaction(conn):
        cid = ensure_category(conn, "object")
        assert ensure_category(conn, "object") == cid
        aid = insert_annotation(
            conn,
            image_id,
            cid,
            masks.encode(mask),
            stage="auto",
            status="proposed",
            predicted_iou=0.9,
            stability_score=0.95,
            prompts={"point": [3, 5]},
        )
    row = conn.execute("SELECT * FROM annotation WHERE id=?", (aid,)).fetchone()
    assert aid == 1 and row["area"] == 28 and row["stage"] == "auto" and row["prompts"] == '{"point":[3,5]}'
    assert np.array_equal(masks.decode({"size": [48, 64], "counts": row["rle_counts"]}), mask)
    with pytest.raises(TypeError):
        insert_annotation(conn, image_id, cid, masks.encode(mask), colour="red")
    store.close()


def test_the_cli_has_the_server_commands_and_does_not_hide_a_broken_import(monkeypatch):
    import sys

    from maskloop.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    assert {"serve", "export-coco", "import-coco"} <= set(commands)
    monkeypatch.delattr("maskloop.cli.serve", raising=False)
    monkeypatch.setitem(sys.modules, "maskloop.cli.serve", None)  # importing it raises ImportError
    with pytest.raises(ImportError):
        build_parser()
