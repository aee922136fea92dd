"""Data-engine sub-commands: ``boxes-to-masks`` (and, with the server's store, ``propose``/``auto``/``stats``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from maskloop.cli.context import EngineContext, StoreContext, progress_bar
from maskloop.cli.options import add_db_argument
from maskloop.errors import UserError
from maskloop.server.jobs.auto_run import AutoDone, other_version_masks, restart_auto


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from maskloop.cli.model import add_model_arguments

    bx = subparsers.add_parser(
        "boxes-to-masks", help="turn every box of a COCO detection file into a mask (box prompt)"
    )
    bx.add_argument("--coco", type=Path, required=True, help="COCO file whose annotations have bbox")
    bx.add_argument("--data", type=Path, required=True, help="folder the COCO file_names are relative to")
    bx.add_argument("--out", type=Path, required=True, help="COCO file to write, with RLE masks")
    bx.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    add_model_arguments(bx)
    bx.set_defaults(func=cmd_boxes_to_masks)

    register_store_commands(subparsers)


def cmd_boxes_to_masks(args: argparse.Namespace) -> int:
    from maskloop.engine.boxes import boxes_to_masks
    from maskloop.engine.dataset import load_coco

    coco = load_coco(args.coco)
    for i, ann in enumerate(coco.dataset["annotations"]):
        box = ann.get("bbox")
        if not (isinstance(box, list) and len(box) == 4 and box[2] > 0 and box[3] > 0):
            raise UserError(f"annotation {i} (id {ann.get('id')}) has no usable bbox [x, y, w, h]: {box!r}")
    ctx = EngineContext(args)
    out = boxes_to_masks(coco.dataset, args.data, ctx.decoder, ctx.embed, progress=progress_bar("boxes-to-masks"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out))
    print(f"wrote {len(out['annotations'])} masks to {args.out}")
    return 0


def register_store_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``propose``, ``auto`` and ``stats``: the data engine on a folder's annotation store."""

    def folder_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", type=Path, default=None, help="folder of images (default: maskloop's sample_images/)")
        p.add_argument(
            "--workdir", type=Path, default=None, help="database/embeddings folder (default: DATA/.maskloop)"
        )
        add_db_argument(p)

    def ray_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--ray",
            nargs="?",
            const="local",
            default=None,
            metavar="ADDRESS",
            help="run as a Ray Data pipeline on the cluster at ADDRESS (host:port of `ray start --head`), "
            "or on a local Ray started for the run when ADDRESS is left out",
        )

    def generator_args(p: argparse.ArgumentParser) -> None:
        from maskloop.engine.generator_settings import GeneratorSettings

        sam = GeneratorSettings()  # the defaults are the generator's own (SAM's)
        p.add_argument(
            "--points-per-side",
            type=int,
            default=sam.points_per_side,
            help="grid of point prompts per side (default: %(default)s)",
        )
        p.add_argument(
            "--crop-layers", type=int, default=sam.crop_n_layers, help="zoomed-in crop layers (default: %(default)s)"
        )
        p.add_argument(
            "--pred-iou-thresh",
            type=float,
            default=sam.pred_iou_thresh,
            help="keep masks with predicted IoU above (default: %(default)s)",
        )
        p.add_argument(
            "--stability-thresh",
            type=float,
            default=sam.stability_score_thresh,
            help="keep masks with stability above (default: %(default)s)",
        )
        p.add_argument(
            "--min-region-area",
            type=int,
            default=sam.min_mask_region_area,
            help="remove holes/islands smaller than this, px (default: %(default)s)",
        )
        p.add_argument("--category", default="object", help="category of the stored masks (default: %(default)s)")
        p.add_argument("--device", default=None, help="auto, cpu or cuda (default: the folder's configuration, auto)")

    pr = subparsers.add_parser(
        "propose", help="semi-automatic stage: store confident automatic masks as proposals to review"
    )
    folder_args(pr)
    generator_args(pr)
    pr.add_argument(
        "--image",
        action="append",
        default=None,
        metavar="ID_OR_FILE",
        help="only this image (id or file name); repeatable (default: every image)",
    )
    pr.set_defaults(func=cmd_propose)

    au = subparsers.add_parser(
        "auto", help="fully automatic stage: annotate every image, write COCO with scores (resumable)"
    )
    folder_args(au)
    generator_args(au)
    au.add_argument(
        "--out", type=Path, required=True, help="COCO file to write (predicted_iou, stability_score per mask)"
    )
    ray_arg(au)
    au.add_argument(
        "--restart",
        action="store_true",
        help="delete the automatic masks of earlier runs and annotate every image anew with the active model "
        "version (needed after another version was activated)",
    )
    au.set_defaults(func=cmd_auto)

    em = subparsers.add_parser("embed", help="compute every image's embedding into the server's cache (resumable)")
    folder_args(em)
    em.add_argument("--device", default=None, help="auto, cpu or cuda (default: the folder's configuration, auto)")
    ray_arg(em)
    em.set_defaults(func=cmd_embed)

    st = subparsers.add_parser(
        "stats", help="per-stage statistics: masks per image, seconds and clicks per mask, acceptance, 1..10 ratings"
    )
    folder_args(st)
    st.add_argument("--json", action="store_true", help="print JSON instead of a table")
    st.set_defaults(func=cmd_stats)


def cmd_propose(args: argparse.Namespace) -> int:
    from maskloop.server.jobs.proposals import run_stage

    ctx = StoreContext(args)
    images = ctx.usable_images(args.image)
    stage = ctx.stage(ctx.settings(args), "semi", "proposed")
    runs = run_stage(
        stage,
        ctx.store.conn,
        images,
        ctx.store.data_dir,
        ctx.embedding_of,
        ctx.category(args.category),
        progress=progress_bar("propose"),
        region_embedding_of=ctx.region_embedding_of,
    )
    print(
        f"stored {sum(len(r.stored) for r in runs)} proposals on {len(runs)} images "
        f"({sum(r.generated for r in runs)} masks generated, duplicates of existing masks dropped)"
    )
    return 0


def cmd_auto(args: argparse.Namespace) -> int:
    """Annotate every image not yet done by this stage (state in WORKDIR/auto-done.json), then write COCO.

    A run resumes only what the active model version annotated; when the store already holds
    automatic masks of another version it stops (the COCO file would mix two models' masks
    silently) until ``--restart`` deletes them or that version is activated again.
    """
    from maskloop.server.jobs.coco import export_coco
    from maskloop.server.jobs.proposals import run_stage, store_generated

    ctx = StoreContext(args, load_model=False)
    done = AutoDone(Path(ctx.store.config["WORKDIR"]) / "auto-done.json")
    ctx.load_model(args)
    model_id, version = ctx.model.model_id, ctx.model.active_version()
    if args.restart:
        print(
            f"--restart: deleted {restart_auto(ctx.store.conn, done)} automatic masks of earlier runs", file=sys.stderr
        )
    others = other_version_masks(ctx.store.conn, model_id, version)
    if others:
        made_by = ", ".join(f"{n} by {name}" for name, n in others.items())
        raise UserError(
            f"the store holds automatic masks of another model version ({made_by}; active: {model_id}@{version}): "
            f"activate that version to resume its run, or pass --restart to delete them and annotate anew"
        )
    done.add_stored(ctx.store.conn, model_id, version)
    todo = [r for r in ctx.usable_images() if AutoDone.key(model_id, version, r["sha256"]) not in done.keys]
    settings = ctx.settings(args)
    category = ctx.category(args.category)
    ctx.report_unusable()
    print(f"{len(todo)} images to annotate ({len(done.keys)} done before)", file=sys.stderr)
    if args.ray and todo:
        for result in progress_bar("auto")(ctx.on_ray(todo, args.ray, settings), total=len(todo)):
            if result.error:
                print(f"skipped {result.file_name}: {result.error}", file=sys.stderr)
                continue
            assert result.masks is not None  # a run with settings brings back masks or an error
            store_generated(
                ctx.store.conn, result.image_id, result.masks, category, "auto", "accepted", model_id, version
            )
            done.add(AutoDone.key(model_id, version, result.sha256))
    else:
        stage = ctx.stage(settings, "auto", "accepted", version)
        for row in progress_bar("auto")(todo):
            run_stage(
                stage,
                ctx.store.conn,
                [row],
                ctx.store.data_dir,
                ctx.embedding_of,
                category,
                region_embedding_of=ctx.region_embedding_of,
            )
            done.add(AutoDone.key(model_id, version, row["sha256"]))
    coco = export_coco(ctx.store.conn, statuses=("accepted",), stages=("auto",))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(coco))
    print(
        f"wrote {len(coco['annotations'])} automatic masks on {len({a['image_id'] for a in coco['annotations']})} images to {args.out}"
    )
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    """Fill the server's embedding cache for every usable image (those cached already are skipped)."""
    ctx = StoreContext(args, load_model=False)
    ctx.load_model(args)
    cache = ctx.embeddings.cache
    todo = [r for r in ctx.usable_images() if not cache.has(r["sha256"])]
    ctx.report_unusable()
    print(f"{len(todo)} images to embed", file=sys.stderr)
    failed = 0
    if args.ray and todo:
        for result in progress_bar("embed")(ctx.on_ray(todo, args.ray, None), total=len(todo)):
            if result.error:
                failed += 1
                print(f"skipped {result.file_name}: {result.error}", file=sys.stderr)
                continue
            from maskloop.server.jobs.proposals import embedding_from_npy

            assert result.embedding_npy is not None  # a run without settings brings back an embedding or an error
            cache.write(result.sha256, embedding_from_npy(result.embedding_npy))
    else:
        for row in progress_bar("embed")(todo):
            try:
                ctx.embedding_of(row, ctx.store.data_dir / row["file_name"])
            except UserError as exc:
                failed += 1
                print(f"skipped {row['file_name']}: {exc}", file=sys.stderr)
    print(f"embedded {len(todo) - failed} images into {cache.dir}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from maskloop.cli.learn import format_versions
    from maskloop.engine.stats import format_ratings, format_table
    from maskloop.server.jobs.statistics import rating_statistics, stage_statistics, version_statistics

    ctx = StoreContext(args, load_model=False)
    stats = stage_statistics(ctx.store.conn)
    versions = version_statistics(ctx.store.conn, ctx.versions)
    ratings = rating_statistics(ctx.store.conn)
    if args.json:
        print(json.dumps({**stats, "versions": versions, "ratings": ratings}, indent=2))
    else:
        print(format_table(stats))
        print("\nmodel versions (held-out metrics of their training run; masks made with each):")
        print(format_versions(versions))
        print("\nmask ratings, 1 (nonsense) .. 10 (pixel-perfect), of accepted masks:")
        print(format_ratings(ratings))
    return 0
