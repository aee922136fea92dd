"""``maskloop edges``: zero-shot edge maps of a folder of images (the SAM paper's recipe,
``engine/edges.py``), one 8-bit PNG per image, the image's size."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from maskloop.errors import UserError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from maskloop.cli.model import add_model_arguments

    p = subparsers.add_parser(
        "edges",
        help="zero-shot edge maps: one 8-bit PNG per image (SAM's grid prompts, Sobel, edge NMS)",
        description="Prompt a grid of foreground points, keep the masks box NMS leaves, Sobel-filter their "
        "probability maps, combine, thin with edge non-maximum suppression and scale to 0..255. "
        "OUT/<path of the image inside DIR, .png>.",
    )
    p.add_argument("--images", type=Path, required=True, metavar="DIR", help="folder of images (sub-folders too)")
    p.add_argument("--out", type=Path, required=True, metavar="OUT", help="folder for the PNG edge maps")
    p.add_argument("--points-per-side", type=int, default=16, help="grid of N x N prompts (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    add_model_arguments(p)
    p.set_defaults(func=cmd_edges)


def cmd_edges(args: argparse.Namespace) -> int:
    import cv2

    from maskloop.cli.context import EngineContext, progress_bar
    from maskloop.engine.automatic import grid_decoder_for
    from maskloop.engine.edges import EdgeSettings, edge_map
    from maskloop.server.jobs.catalog import walk_images

    if not args.images.is_dir():
        raise UserError(f"--images folder not found: {args.images}")
    if not 1 <= args.points_per_side <= 128:
        raise UserError(f"--points-per-side must be 1..128, got {args.points_per_side}")
    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"--out {args.out} is a file: name a folder")
    names, _skipped = walk_images(args.images, exclude=args.out.resolve())
    if not names:
        raise UserError(f"no images in {args.images}")
    ctx = EngineContext(args)
    decoder = grid_decoder_for(ctx.model)
    settings = EdgeSettings(points_per_side=args.points_per_side)
    written = 0
    for name in progress_bar("edges")(names):
        try:
            embedding, hw = ctx.embed(args.images / name)
        except UserError as exc:
            print(f"maskloop: skipped {name}: {exc}", file=sys.stderr)
            continue
        edges = edge_map(ctx.model, decoder, embedding, hw, settings)
        target = (args.out / name).with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.partial.png")
        if not cv2.imwrite(str(tmp), edges):
            raise UserError(f"cannot write {target}")
        tmp.replace(target)
        written += 1
    print(f"maskloop: wrote {written} edge maps to {args.out}")
    return 0
