"""Evaluation sub-commands: ``evaluate`` (the click protocols, with the oracle) and ``evaluate-proposals``
(average recall of the automatic stage's masks)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maskloop.cli.context import DECODERS, EngineContext, progress_bar
from maskloop.errors import UserError

if TYPE_CHECKING:
    import numpy as np

    from maskloop.engine.dataset import GroundTruthImage
    from maskloop.engine.predictors import Decoder

#: ``--sampling`` values: one protocol, or both on one pass over the images.
SAMPLING_CHOICES = ("center", "random", "both")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from maskloop.cli.model import add_model_arguments
    from maskloop.engine.generator_settings import GeneratorSettings

    ev = subparsers.add_parser(
        "evaluate", help="simulated interactive segmentation on a COCO ground truth (mIoU@k, NoC@85/90, box mIoU)"
    )
    ev.add_argument("--coco", type=Path, required=True, help="COCO ground truth with polygons or RLE")
    ev.add_argument("--images", type=Path, required=True, help="folder the COCO file_names are relative to")
    ev.add_argument("--max-clicks", type=int, default=20, help="clicks per object (default: %(default)s)")
    ev.add_argument(
        "--sampling",
        choices=SAMPLING_CHOICES,
        default="center",
        help="where a click lands in its error region: center (farthest from its boundary), random (uniform), "
        "or both protocols (default: %(default)s)",
    )
    ev.add_argument("--seed", type=int, default=0, help="seed of --sampling random (default: %(default)s)")
    ev.add_argument(
        "--oracle",
        action="store_true",
        help="also the oracle's curve: the candidate closest to the truth taken at every click",
    )
    ev.add_argument(
        "--tiles",
        choices=("on", "off"),
        default="on",
        help="on: clicks on a large image are decoded on its tiles, as the server and the page do (maskloop/tiles.py);"
        " off: on the whole image's embedding (default: %(default)s)",
    )
    ev.add_argument(
        "--tile-threshold",
        type=int,
        default=None,
        metavar="PX",
        help="images whose long side is more than PX are tiled (default: 2x the model's input size)",
    )
    ev.add_argument("--plot", type=Path, default=None, metavar="FILE.png", help="write the curves as a PNG")
    ev.add_argument(
        "--decoder",
        choices=DECODERS,
        default="torch",
        help="torch: PyTorch decoder on fp32 embeddings; onnx / onnx-int8: the browser's exported decoder on fp16 embeddings",
    )
    ev.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    ev.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    ev.add_argument(
        "--data",
        type=Path,
        default=None,
        help="a maskloop project folder: evaluate one of its model versions (its model type and checkpoint)",
    )
    ev.add_argument(
        "--model-version",
        default=None,
        metavar="V",
        help="with --data: a version name (v0002), active, or base (default: active); several, comma-separated,"
        " or all: each version's curves (the table, the JSON's versions and --plot)",
    )
    add_model_arguments(ev)
    ev.set_defaults(func=cmd_evaluate)

    ep = subparsers.add_parser(
        "evaluate-proposals",
        help="average recall of the automatic stage's masks on a COCO ground truth (AR@10/100/1000)",
    )
    ep.add_argument("--coco", type=Path, required=True, help="COCO ground truth with polygons or RLE")
    ep.add_argument("--images", type=Path, required=True, help="folder the COCO file_names are relative to")
    ep.add_argument(
        "--points-per-side",
        type=int,
        default=GeneratorSettings().points_per_side,
        help="the generator's grid of point prompts per side (default: %(default)s)",
    )
    sam = GeneratorSettings()
    ep.add_argument(
        "--pred-iou-thresh",
        type=float,
        default=sam.pred_iou_thresh,
        help="keep masks with predicted IoU above (default: %(default)s, as auto)",
    )
    ep.add_argument(
        "--stability-thresh",
        type=float,
        default=sam.stability_score_thresh,
        help="keep masks with stability above (default: %(default)s, as auto)",
    )
    ep.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    ep.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    add_model_arguments(ep)
    ep.set_defaults(func=cmd_evaluate_proposals)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from maskloop.engine.dataset import iter_ground_truth, load_coco
    from maskloop.engine.evaluate import SAMPLINGS, evaluate_protocols

    if args.max_clicks < 1:
        raise UserError("--max-clicks must be at least 1")
    coco = load_coco(args.coco)
    if not args.images.is_dir():
        raise UserError(f"--images folder not found: {args.images}")
    samplings = SAMPLINGS if args.sampling == "both" else (args.sampling,)
    per_version: dict[str, dict[str, Any]] = {}
    for version in _versions(args):
        ctx = EngineContext(argparse.Namespace(**{**vars(args), "model_version": version}), args.decoder)
        decoder, samples = _samples(ctx, args, iter_ground_truth(coco, args.images))
        results = evaluate_protocols(
            samples,
            decoder,
            samplings,
            args.max_clicks,
            progress=progress_bar(f"evaluate {ctx.model_version}"),
            seed=args.seed,
            oracle=args.oracle,
        )
        per_version[ctx.model_version] = {name: result.summary() for name, result in results.items()}
    first = next(iter(per_version))
    protocols = per_version[first]
    summary: dict[str, Any] = dict(protocols[samplings[0]])
    summary["protocols"] = protocols
    summary["decoder"] = args.decoder
    summary["model_type"] = ctx.model_type
    summary["model_version"] = first
    if len(per_version) > 1:
        summary["versions"] = per_version
    if args.plot is not None:
        from maskloop.cli.evaluate_plot import write_curves

        write_curves(summary, args.plot)
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"objects: {summary['objects']}   decoder: {args.decoder}   model: {ctx.model_type} ({ctx.model_version})")
    for version, curves in per_version.items():
        if len(per_version) > 1:
            print(f"\nmodel version {version}:")
        print(format_curves(curves))
    if args.plot is not None:
        print(f"wrote {args.plot}")
    return 0


def _samples(
    ctx: EngineContext, args: argparse.Namespace, images: Iterable[GroundTruthImage]
) -> tuple[Decoder, Iterator[tuple[np.ndarray, list[np.ndarray]]]]:
    """The decoder and the (whole-image embedding, masks) per image that ``evaluate`` runs; with
    ``--tiles on`` a ``TiledDecoder`` that embeds the open image's tiles as its clicks need them."""
    if args.tiles == "off":
        return ctx.decoder, ((ctx.embed(gt.path)[0], gt.masks) for gt in images)
    from maskloop.engine.tiled import TiledDecoder
    from maskloop.exporter.regions import read_region
    from maskloop.tiles import Box, Tiling

    opened: list[Path] = []

    def embed_region(region: Box) -> np.ndarray:
        return ctx.embed_pixels(read_region(opened[-1], region))

    tiling = Tiling.for_model(int(ctx.model.image_encoder.img_size), args.tile_threshold)
    tiled = TiledDecoder(ctx.decoder, embed_region, tiling)

    def samples() -> Iterator[tuple[np.ndarray, list[np.ndarray]]]:
        for gt in images:  # lazily: the image is opened just before its objects are evaluated
            opened.append(gt.path)
            tiled.open_image()
            yield ctx.embed(gt.path)[0], gt.masks

    return tiled, samples()


def _versions(args: argparse.Namespace) -> list[str | None]:
    """The model versions ``--model-version`` names: one (None: the default), a comma list, or all."""
    wanted = args.model_version
    if wanted is None or "," not in wanted and wanted != "all":
        return [wanted]
    if args.data is None:
        raise UserError("--model-version needs --data (the project whose versions it names)")
    if wanted == "all":
        from maskloop.engine.versions import ModelVersions
        from maskloop.server.jobs.project import open_store

        store = open_store(args.data, None, scan=False, progress=False, db=getattr(args, "db", None))
        try:
            return ["base", *ModelVersions(store.config["MODELS_DIR"]).names()]
        finally:
            store.close()
    return [v.strip() for v in wanted.split(",") if v.strip()]


def format_curves(protocols: dict[str, dict[str, Any]]) -> str:
    """The table of ``evaluate``: mIoU after k clicks per protocol (model's choice, and oracle when measured)."""
    columns: list[tuple[str, dict[str, Any]]] = []
    for name, summary in protocols.items():
        label = name if summary.get("seed") is None else f"{name} (seed {summary['seed']})"
        columns.append((label, summary))
        if "oracle" in summary:
            columns.append((f"{label} oracle", summary["oracle"]))
    width = max(14, *(len(label) + 2 for label, _ in columns))
    lines = ["clicks    " + "".join(f"{label:>{width}}" for label, _ in columns)]
    n = len(columns[0][1]["miou_at_clicks"])
    for k in (1, 2, 3, 5, 10, 20):
        if k <= n:
            lines.append(f"mIoU@{k:<5d}" + "".join(f"{c['miou_at_clicks'][k - 1]:>{width}.4f}" for _, c in columns))
    for key in ("noc85", "noc90"):
        lines.append(f"{key.upper().replace('NOC', 'NoC@'):<10}" + "".join(f"{c[key]!s:>{width}}" for _, c in columns))
    first = next(iter(protocols.values()))
    lines.append(f"box mIoU: {first['box_miou']}")
    return "\n".join(lines)


def cmd_evaluate_proposals(args: argparse.Namespace) -> int:
    from maskloop.engine.dataset import load_coco
    from maskloop.engine.proposal_recall import proposal_recall

    if args.points_per_side < 1:
        raise UserError("--points-per-side must be at least 1")
    coco = load_coco(args.coco)
    if not args.images.is_dir():
        raise UserError(f"--images folder not found: {args.images}")
    from maskloop.engine.automatic import AutomaticMaskGenerator
    from maskloop.engine.generator_settings import GeneratorSettings

    ctx = EngineContext(args)
    settings = GeneratorSettings(
        points_per_side=args.points_per_side,
        pred_iou_thresh=args.pred_iou_thresh,
        stability_score_thresh=args.stability_thresh,
    )
    generator = AutomaticMaskGenerator(ctx.model, ctx.embedder, settings)
    report = proposal_recall(coco, args.images, generator, ctx.embedder, progress=progress_bar("evaluate-proposals"))
    report["points_per_side"] = args.points_per_side
    report["pred_iou_thresh"] = args.pred_iou_thresh
    report["stability_thresh"] = args.stability_thresh
    report["model_type"] = ctx.model_type
    if args.json:
        print(json.dumps(report))
        return 0
    print(
        f"objects: {report['objects']}   images: {report['images']}   proposals per image: "
        f"{report['proposals_per_image']:.1f}   grid: {args.points_per_side}x{args.points_per_side}   "
        f"filters: predicted IoU > {args.pred_iou_thresh}, stability > {args.stability_thresh}   model: {ctx.model_type}"
    )
    for k in report["limits"]:
        print(f"AR@{k:<5d} {report[f'ar@{k}']:.4f}   recall@0.5 {report[f'recall50@{k}']:.4f}")
    return 0
