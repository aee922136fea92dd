"""``maskloop replay``: the data engine's loop run by a simulated annotator, round by round.

A fresh project folder receives the chosen images of a labelled set (linked, or copied where
a link cannot be made). Each round the annotator (``engine.replay``) labels its images with the
model version active at that moment and accepts the masks into the folder's store (stage
``manual``, through the same store functions the server's annotation route uses); then
``maskloop train``'s run (``cli.learn.learn_in_store``, with ``train``'s own defaults) trains a
new version, and its gate decides which version the next round uses.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maskloop.errors import UserError

if TYPE_CHECKING:
    from maskloop.cli.context import StoreContext
    from maskloop.engine.dataset import GroundTruthImage
    from maskloop.engine.learn import LearnSettings
    from maskloop.engine.replay import SimulatedMask

#: Bound of ``--steps-per-round`` (``--minutes-per-round`` has ``maskloop train --minutes``'s).
MAX_STEPS_PER_ROUND = 1_000_000


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rp = subparsers.add_parser(
        "replay",
        help="measure the loop: a simulated annotator labels a COCO set round by round, retraining after each",
        description=(
            "A simulated annotator runs the data engine on a labelled set. Each round labels K new images "
            "(a seeded order) with the click protocol (clicks on the largest error region until IoU >= 0.9 "
            "or 10 clicks, then the mask is fixed by hand) using the model version active then, accepts "
            "the masks into a fresh project, and trains a new version as `maskloop train` would; its gate "
            "decides which version the next round uses. Reported per round: clicks per mask, mIoU after "
            "one click, the share reaching IoU 0.9, the version used, the version trained and the gate's "
            "verdict. With --steps-per-round a replay is deterministic for its --seed on one machine "
            "(another CPU's floating-point kernels train slightly different versions); with "
            "--minutes-per-round the step counts (so the numbers) depend on the machine and its load."
        ),
    )
    rp.add_argument("--coco", type=Path, required=True, help="the ground truth: a COCO JSON file with masks")
    rp.add_argument("--images", type=Path, required=True, help="folder holding the COCO file's images")
    rp.add_argument("--rounds", type=int, required=True, help="rounds of labelling and training (1 to 50)")
    rp.add_argument("--per-round", type=int, required=True, metavar="K", help="images labelled per round (K >= 2)")
    length = rp.add_mutually_exclusive_group()
    length.add_argument(
        "--steps-per-round", type=int, default=None, metavar="N", help="training steps per round (default: train's)"
    )
    length.add_argument(
        "--minutes-per-round",
        type=float,
        default=None,
        metavar="M",
        help="train about M minutes per round (as `train --minutes`: the result depends on the machine)",
    )
    rp.add_argument(
        "--seed", type=int, default=0, help="orders the images and seeds each training run (default: %(default)s)"
    )
    rp.add_argument(
        "--eval-clicks",
        type=int,
        default=None,
        metavar="K",
        help="clicks of each training run's held-out protocol (default: train's, 20)",
    )
    rp.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="make the project here and keep it (a new or empty folder; default: a temporary folder, removed)",
    )
    rp.add_argument("--device", default=None, help="auto, cpu or cuda (default: auto)")
    rp.add_argument("--json", action="store_true", help="print the report as JSON")
    rp.add_argument("--plot", type=Path, default=None, metavar="PNG", help="write the per-round curve as a PNG")
    rp.set_defaults(func=cmd_replay)


def check_arguments(args: argparse.Namespace) -> LearnSettings:
    """Every check that needs no model, before anything is written; raises UserError. Returns the
    settings of each round's training run."""
    from maskloop.engine.replay import check_sizes

    check_sizes(args.rounds, args.per_round)
    if args.steps_per_round is not None and not 1 <= args.steps_per_round <= MAX_STEPS_PER_ROUND:
        raise UserError(f"--steps-per-round must be from 1 to {MAX_STEPS_PER_ROUND}, got {args.steps_per_round}")
    if args.minutes_per_round is not None and not 0 < args.minutes_per_round <= 24 * 60:
        raise UserError(f"--minutes-per-round must be above 0 and at most 1440, got {args.minutes_per_round}")
    if not args.images.is_dir():
        raise UserError(f"images folder not found: {args.images}")
    if args.plot is not None:
        if args.plot.suffix.lower() != ".png":
            raise UserError(f"--plot writes a PNG: give a file name ending in .png, got {args.plot}")
        if not args.plot.parent.is_dir():
            raise UserError(f"--plot: folder not found: {args.plot.parent}")
    if args.workdir is not None and args.workdir.exists():
        if not args.workdir.is_dir() or any(args.workdir.iterdir()):
            raise UserError(
                f"--workdir must be a new or empty folder (the replay makes a fresh project): {args.workdir}"
            )
    return learn_settings(args)


def learn_settings(args: argparse.Namespace) -> LearnSettings:
    """The settings ``maskloop train --seed S [--steps N | --minutes M] [--eval-clicks K]`` would run with
    (train's own defaults otherwise)."""
    from maskloop.cli import build_parser
    from maskloop.cli.learn import train_settings

    argv = ["train", "--seed", str(args.seed)]
    if args.steps_per_round is not None:
        argv += ["--steps", str(args.steps_per_round)]
    if args.minutes_per_round is not None:
        argv += ["--minutes", str(args.minutes_per_round)]
    if args.eval_clicks is not None:
        argv += ["--eval-clicks", str(args.eval_clicks)]
    return train_settings(build_parser().parse_args(argv))


def place_images(chosen: list[GroundTruthImage], images_dir: Path, data: Path) -> dict[int, str]:
    """Link (or copy) the chosen images into the fresh folder ``data`` at their path under ``images_dir``
    (their base name when outside it); returns COCO image id -> file name in the folder."""
    names: dict[int, str] = {}
    for gt in chosen:
        rel = os.path.relpath(gt.path, images_dir)
        name = Path(gt.path.name if rel.startswith("..") else rel).as_posix()
        target = data / name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(gt.path, target)
            except OSError:  # another file system, or links not allowed: a copy is the same image
                shutil.copyfile(gt.path, target)
        names[gt.image_id] = name
    return names


def category_names(coco: Any) -> dict[int, str]:
    """COCO annotation id -> its category's name (``object`` when the file names none)."""
    cats = {c["id"]: str(c.get("name") or "object").strip() or "object" for c in coco.dataset.get("categories", [])}
    return {int(a["id"]): cats.get(a.get("category_id"), "object") for a in coco.dataset["annotations"]}


def accept(
    ctx: StoreContext, image_id: int, masks: list[SimulatedMask], categories: dict[int, str], version: str
) -> None:
    """Store an image's simulated masks as accepted ``manual`` annotations, in one transaction."""
    from maskloop.masks import encode
    from maskloop.server.store.annotations import insert_annotation
    from maskloop.server.store.categories import ensure_category
    from maskloop.server.store.db import transaction

    conn = ctx.store.conn
    with transaction(conn):
        for m in masks:
            insert_annotation(
                conn,
                image_id,
                ensure_category(conn, categories[m.annotation_id]),
                encode(m.mask),
                stage="manual",
                status="accepted",
                clicks=m.clicks,
                model=ctx.model.model_id,
                model_version=version,
            )


def run_rounds(args: argparse.Namespace, data: Path, settings: LearnSettings) -> list[dict[str, Any]]:
    """Lay out the project in ``data``, then label and train round by round; the per-round report."""
    from maskloop.cli.context import StoreContext
    from maskloop.cli.learn import ConsoleProgress, learn_in_store
    from maskloop.engine.dataset import annotated_image_ids, iter_ground_truth, load_coco
    from maskloop.engine.predictors import TorchDecoder
    from maskloop.engine.replay import annotate_object, round_order
    from maskloop.engine.versions import BASE
    from maskloop.server.store.images import list_images

    coco = load_coco(args.coco)
    order = round_order(annotated_image_ids(coco), args.rounds, args.per_round, args.seed)
    ids = [i for ids in order for i in ids]
    for i in ids:
        if not all(isinstance(coco.imgs[i].get(k), int) for k in ("height", "width")):
            raise UserError(f"{args.coco}: image {coco.imgs[i].get('file_name')!r} needs an integer height and width")
    chosen = list(iter_ground_truth(coco, args.images, image_ids=ids))
    data.mkdir(parents=True, exist_ok=True)
    names = place_images(chosen, args.images, data)
    categories = category_names(coco)
    ctx = StoreContext(argparse.Namespace(data=data, workdir=None, db=None, device=args.device))
    try:
        rows = {r["file_name"]: r for r in list_images(ctx.store.conn)}
        by_id = {gt.image_id: gt for gt in chosen}
        for gt in chosen:
            row = rows.get(names[gt.image_id])
            if row is None or row["error"]:
                why = row["error"] if row is not None else "not found by the folder scan"
                raise UserError(f"image {gt.path} cannot be used: {why}")
            if any(m.shape != (row["height"], row["width"]) for m in gt.masks):
                raise UserError(
                    f"image {gt.path} is {row['width']}x{row['height']} as shown (w x h), but its COCO masks are "
                    f"{gt.masks[0].shape[1]}x{gt.masks[0].shape[0]}"
                )
        report = []
        for number, ids in enumerate(order, start=1):
            version = ctx.model.active_version()
            print(f"round {number}/{len(order)}: labelling {len(ids)} images with {version}", file=sys.stderr)
            decoder = TorchDecoder(ctx.model.decoder_model(version))
            base = decoder if version == BASE else TorchDecoder(ctx.model.decoder_model(BASE))
            t0 = time.perf_counter()
            labelled: list[SimulatedMask] = []
            with_base: list[SimulatedMask] = []  # the same objects clicked with the base model: the control
            for image_id in ids:
                gt, row = by_id[image_id], rows[names[image_id]]
                embedding = ctx.embedding_of(row, data / names[image_id])
                masks = [annotate_object(decoder, embedding, m, a) for m, a in zip(gt.masks, gt.annotation_ids)]
                accept(ctx, int(row["id"]), masks, categories, version)
                labelled += masks
                with_base += (
                    masks
                    if base is decoder
                    else [annotate_object(base, embedding, m, a) for m, a in zip(gt.masks, gt.annotation_ids)]
                )
            label_s = time.perf_counter() - t0
            learned = learn_in_store(ctx, settings, ConsoleProgress())
            report.append(round_entry(number, ids, labelled, with_base, version, learned, label_s))
            print(f"round {number}: {learned['reason']}", file=sys.stderr)
        return report
    finally:
        ctx.store.close()


def round_entry(
    number: int,
    ids: list[int],
    labelled: list[SimulatedMask],
    with_base: list[SimulatedMask],
    version: str,
    learned: dict[str, Any],
    label_s: float,
) -> dict[str, Any]:
    """One round of the report (see docs/models-and-training.md, ``maskloop replay``): the labelling
    numbers with the version used, the base model's on the same objects, then the training run's."""
    from maskloop.engine.replay import round_numbers

    gate = learned.get("gate") or {}
    base = round_numbers(with_base)
    return {
        "round": number,
        "image_ids": ids,
        "images": len(ids),
        **round_numbers(labelled),
        "base_clicks_per_mask": base["clicks_per_mask"],
        "base_miou@1": base["miou@1"],
        "active_version": version,
        "trained_version": learned["version"],
        "activated": bool(learned["activated"]),
        "verdict": gate.get("verdict"),
        "decided_by": gate.get("decided_by"),
        "reason": learned["reason"],
        "chosen_step": learned["selection"].get("chosen_step"),
        "blend": learned["selection"].get("blend"),  # a blend toward the run's start when no checkpoint passed
        "train_steps": learned["train"]["steps"],
        "train_seconds": learned["train"]["seconds"],
        "learn_seconds": learned["seconds"],
        "label_seconds": round(label_s, 1),
    }


def cmd_replay(args: argparse.Namespace) -> int:
    from maskloop.engine.replay import MAX_CLICKS, TARGET_IOU, clicks_ratio, clicks_ratio_same_objects

    settings = check_arguments(args)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="maskloop-replay-"))
    try:
        rounds = run_rounds(args, root / "images", settings)
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    report = {
        "coco": str(args.coco),
        "images": str(args.images),
        "settings": {
            "rounds": args.rounds,
            "per_round": args.per_round,
            "steps_per_round": args.steps_per_round,
            "minutes_per_round": args.minutes_per_round,
            "seed": args.seed,
            "eval_clicks": settings.eval_clicks,
            "target_iou": TARGET_IOU,
            "max_clicks": MAX_CLICKS,
        },
        "project": str(root / "images") if args.workdir is not None else None,
        "rounds": rounds,
        "clicks_ratio_last_first": clicks_ratio(rounds),
        "clicks_ratio_last_base": clicks_ratio_same_objects(rounds),
    }
    if args.plot is not None:
        from maskloop.cli.replay_plot import write_plot

        write_plot(report, args.plot)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_rounds(report))
    return 0


def format_rounds(report: dict[str, Any]) -> str:
    """The per-round report as a fixed-width table, then the ratio and each gate's reason."""
    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    head = (
        f"{'round':>5} {'images':>6} {'masks':>5} {'clicks/mask':>11} {'(base)':>6} {'mIoU@1':>7} {'IoU>=0.9':>8} "
        f"{'by hand':>7}  {'used':8} {'trained':8} {'gate':10} {'train s':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in report["rounds"]:
        gate = r["verdict"] or ("activated" if r["activated"] else "refused")
        lines.append(
            f"{r['round']:>5} {r['images']:>6} {r['masks']:>5} {fmt(r['clicks_per_mask'], '.2f'):>11} "
            f"{fmt(r['base_clicks_per_mask'], '.2f'):>6} "
            f"{fmt(r['miou@1'], '.3f'):>7} {fmt(r['reached_target'], '.2f'):>8} {r['by_hand']:>7}  "
            f"{r['active_version']:8} {r['trained_version']:8} {gate:10} {r['train_seconds']:>8}"
        )
    ratio = report["clicks_ratio_last_first"]
    lines.append(f"clicks per mask, last round / first: {fmt(ratio, '.3f')} ((base): the base model on the same masks)")
    same = report["clicks_ratio_last_base"]
    lines.append(f"clicks per mask, last round / the base model on its objects: {fmt(same, '.3f')}")
    lines += [f"round {r['round']} gate: {r['reason']}" for r in report["rounds"]]
    if report["project"]:
        lines.append(f"project kept in {report['project']} (maskloop models --data {report['project']})")
    return "\n".join(lines)
