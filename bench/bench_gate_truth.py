"""Does a replay's gate favour the version that drew its held-out masks? (issue 22, a diagnostic)

In ``maskloop replay`` (as in a person's hands) a mask that reached IoU 0.9 is accepted as the
model drew it, so the gate's held-out split of a later retrain holds masks that the active version
drew itself. Measured against them, the active version can be flattered on later clicks, where it
converges on its own drawing. This bench takes one version of a replay's project (``--workdir`` of
``maskloop replay``), rebuilds that version's gate split (its ``holdout.image_ids`` in
``version.json``) twice, with the accepted masks the gate saw and with the COCO ground truth of
the same images, and measures the base model, the version it was compared with and the version
itself with the gate's own protocol (``engine.checkpoints.click_protocol``, the version's
``eval_clicks``) and metrics (``engine.gate.metrics``). It prints which version labelled each
held-out image and how close its accepted masks are to the ground truth, then the two tables.

Not a test, and not the gate: a diagnostic. It reads the project and writes nothing there.
About 1 minute a version on a 2-core CPU for a 20-mask split.

Usage: .venv/bin/python bench/bench_gate_truth.py --project WORKDIR/images --coco GT.json --images DIR
       --version v0004 [--split holdout|selection] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

ROWS = [f"miou@{k}" for k in range(1, 11)] + ["noc85", "noc90", "box_miou"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True, help="the replay's project: WORKDIR/images")
    parser.add_argument("--coco", type=Path, required=True, help="the replay's --coco (the ground truth)")
    parser.add_argument("--images", type=Path, required=True, help="the replay's --images")
    parser.add_argument("--version", required=True, help="a trained version of the project, e.g. v0004")
    parser.add_argument(
        "--split", choices=("holdout", "selection"), default="holdout",
        help="the gate's split or the checkpoint picker's (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args()

    from maskloop.cli.context import StoreContext
    from maskloop.engine import gate
    from maskloop.engine.checkpoints import click_protocol
    from maskloop.engine.dataset import iter_ground_truth, load_coco
    from maskloop.engine.learn import TRAINABLE_STAGES, annotated_images
    from maskloop.engine.versions import BASE
    from maskloop.masks import mask_iou
    from maskloop.server.store import dataset
    from maskloop.server.store.images import list_images

    started = datetime.now(UTC)
    ctx = StoreContext(argparse.Namespace(data=args.project, workdir=None, db=None, device="cpu"))
    try:
        record = ctx.model.versions.info(args.version)
        compared = record["compared_with"]
        accepted = {
            im.image_id: im
            for im in annotated_images(dataset.trainable_mask_rows(ctx.store.conn, TRAINABLE_STAGES))  # type: ignore[arg-type]
        }
        rows = {r["id"]: r for r in list_images(ctx.store.conn)}
        drawn_by = dict(
            ctx.store.conn.execute(
                "SELECT image_id, group_concat(DISTINCT model_version) FROM annotation GROUP BY image_id"
            ).fetchall()
        )
        coco = load_coco(args.coco)
        coco_id = {Path(im["file_name"]).name: i for i, im in coco.imgs.items()}
        split_accepted, split_truth, images = [], [], []
        for image_id in record[args.split]["image_ids"]:
            im = accepted[image_id]
            embedding = ctx.embedding_of(rows[image_id], args.project / im.file_name)
            (truth,) = iter_ground_truth(coco, args.images, image_ids=[coco_id[Path(im.file_name).name]])
            if len(truth.masks) != len(im.masks):
                raise SystemExit(f"{im.file_name}: {len(im.masks)} accepted masks, {len(truth.masks)} in {args.coco}")
            split_accepted.append((embedding, im.masks))
            split_truth.append((embedding, truth.masks))
            ious = [mask_iou(a, t) for a, t in zip(im.masks, truth.masks)]
            images.append({"file_name": im.file_name, "drawn_by": drawn_by.get(image_id), "accepted_iou": ious})
            print(f"{im.file_name}: drawn by {drawn_by.get(image_id)}, accepted vs ground truth IoU "
                  f"{', '.join(f'{x:.3f}' for x in ious)}", flush=True)  # fmt: skip

        models = {BASE: ctx.model.decoder_model(BASE)}
        models[compared] = ctx.model.decoder_model(compared)
        models[args.version] = ctx.model.decoder_model(args.version)
        clicks = int(record["settings"]["eval_clicks"])
        tables: dict[str, dict[str, dict[str, float]]] = {}
        for name, split in (("accepted", split_accepted), ("ground_truth", split_truth)):
            tables[name] = {}
            for version, model in models.items():
                m = gate.metrics(click_protocol(model, split, clicks))
                tables[name][version] = {k: round(float(m[k]), 4) for k in ROWS}
            print(f"\n{args.split} split, {name.replace('_', ' ')} masks ({sum(len(ms) for _, ms in split)})")
            print(f"| row | {' | '.join(models)} | {args.version} − {compared} |\n|---|{'---|' * (len(models) + 1)}")
            for k in ROWS:
                values = [tables[name][v][k] for v in models]
                print(f"| {k} | {' | '.join(f'{x:.4f}' for x in values)} | {values[-1] - values[-2]:+.4f} |")
    finally:
        ctx.store.close()
    if args.json:
        from bench_replay_bound import run_record

        report = {
            **run_record(started),
            "version": args.version,
            "compared_with": compared,
            "split": args.split,
            "verdict": record.get("reason"),
            "images": images,
            "tables": tables,
        }
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
