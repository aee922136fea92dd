"""``maskloop edges``: zero-shot edge maps of a folder of images (``engine/edges.py``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from maskloop.cli.context import EngineContext, progress_bar
from maskloop.errors import UserError

#: Files taken as images.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from maskloop.cli.model import add_model_arguments

    ed = subparsers.add_parser(
        "edges", help="zero-shot edge maps (the SAM paper's recipe): one 8-bit PNG per image, the image's size"
    )
    ed.add_argument("--images", type=Path, required=True, help="folder of images (searched recursively)")
    ed.add_argument("--out", type=Path, required=True, help="folder for the PNGs (same relative names, .png)")
    ed.add_argument("--points-per-side", type=int, default=16, help="grid of point prompts (default: %(default)s)")
    ed.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    add_model_arguments(ed)
    ed.set_defaults(func=cmd_edges)


def cmd_edges(args: argparse.Namespace) -> int:
    from PIL import Image

    from maskloop.engine.edges import edge_map

    if args.points_per_side < 1:
        raise UserError("--points-per-side must be at least 1")
    if not args.images.is_dir():
        raise UserError(f"--images folder not found: {args.images}")
    files = sorted(p for p in args.images.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"no images under {args.images}")
    ctx = EngineContext(args)
    written = 0
    for path in progress_bar("edges")(files):
        try:
            embedding, hw = ctx.embed(path)
        except (UserError, OSError) as exc:
            print(f"skipped {path}: {exc}", file=sys.stderr)
            continue
        target = (args.out / path.relative_to(args.images)).with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(edge_map(ctx.model, embedding, hw, args.points_per_side)).save(target)
        written += 1
    print(f"wrote {written} edge maps to {args.out}")
    return 0
