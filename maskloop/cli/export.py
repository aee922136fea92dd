"""The export commands: ``export --format coco|yolo-seg|voc`` and ``export-coco`` (its COCO spelling)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from maskloop.cli.options import add_folder_arguments
from maskloop.errors import UserError


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tolerance",
        type=float,
        default=0.0,
        help="polygon simplification in pixels, for COCO polygons and YOLO (default 0: exact outline)",
    )
    p.add_argument("--status", default="accepted", help="accepted (default), proposed, rejected, a comma list, or all")
    p.add_argument("--review", choices=["reviewed", "rejected", "unreviewed"], help="only masks with this review")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``export`` and ``export-coco`` to the ``maskloop`` parser."""
    p = subparsers.add_parser(
        "export",
        help="write the annotations as COCO JSON, a YOLO segmentation or a PASCAL VOC data set",
        description="Write the accepted annotations of a folder as COCO JSON (--out FILE) or as a YOLO "
        "segmentation or PASCAL VOC data set with copies of the images (--out DIR: new or empty). "
        "All or nothing.",
    )
    add_folder_arguments(p)
    # export_dataset.FORMATS, spelled out: the parser is built without importing the export code
    p.add_argument("--format", choices=["coco", "yolo-seg", "voc"], required=True, help="coco, yolo-seg or voc")
    p.add_argument(
        "--out", metavar="PATH", required=True, help="coco: a file ('-' for standard output); yolo-seg, voc: a folder"
    )
    p.add_argument(
        "--segmentation",
        choices=["rle", "polygon"],
        default="rle",
        help="coco: rle (exact, default) or polygon (masks with holes stay RLE)",
    )
    _add_filters(p)
    p.set_defaults(func=export_command)

    p = subparsers.add_parser(
        "export-coco",
        help="write the annotations as COCO JSON (export --format coco)",
        description="Write the accepted annotations of a folder as COCO JSON: maskloop export --format coco, "
        "with --format naming the segmentation.",
    )
    add_folder_arguments(p)
    p.add_argument("--out", metavar="FILE", required=True, help="output file ('-' for standard output)")
    p.add_argument(
        "--format",
        dest="segmentation",
        choices=["rle", "polygon"],
        default="rle",
        help="rle (exact, default) or polygon (masks with holes stay RLE)",
    )
    _add_filters(p)
    p.set_defaults(func=export_command, format="coco")


def export_command(args: argparse.Namespace) -> int:
    from maskloop.server.jobs.coco import STATUSES

    statuses = STATUSES if args.status == "all" else tuple(s.strip() for s in args.status.split(","))
    if args.format == "coco":
        return _export_coco(args, statuses)
    from maskloop.server.jobs.export_dataset import write_dataset
    from maskloop.server.jobs.export_sink import FolderSink, check_out_folder
    from maskloop.server.jobs.project import open_store

    out = Path(args.out)
    check_out_folder(out)  # before the scan, which can take a while
    store = open_store(args.data, args.workdir, db=args.db)
    try:
        report = write_dataset(
            store.conn,
            store.data_dir,
            args.format,
            FolderSink(out),
            root=str(out.absolute()),
            statuses=statuses,
            review=args.review,
            tolerance=args.tolerance,
            progress=True,
        )
    finally:
        store.close()
    print(
        f"maskloop: wrote {report.annotations} masks on {report.images} images to {out} ({args.format})",
        file=sys.stderr,
    )
    if report.left_out:
        print(
            f"maskloop: {report.left_out} masks too thin for a polygon of 3 points are not in the labels",
            file=sys.stderr,
        )
    return 0


def _export_coco(args: argparse.Namespace, statuses: tuple[str, ...]) -> int:
    from maskloop.server.jobs.coco import export_coco
    from maskloop.server.jobs.project import open_store

    out = Path(args.out)
    if args.out != "-" and out.is_dir():
        raise UserError(f"--out {out} is a folder: a COCO export is one JSON file, name it")
    conn = open_store(args.data, args.workdir, db=args.db).conn
    try:
        data = export_coco(
            conn,
            fmt=args.segmentation,
            tolerance=args.tolerance,
            statuses=statuses,
            progress=True,
            review=args.review,
            data_dir=Path(args.data) if args.data else None,
        )
    finally:
        conn.close()
    text = json.dumps(data, separators=(",", ":")) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
        return 0
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out)  # all or nothing: a reader never sees half a file
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(
        f"maskloop: wrote {len(data['annotations'])} annotations on {len(data['images'])} images to {out}",
        file=sys.stderr,
    )
    return 0
