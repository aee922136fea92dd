"""How far can decoder-only training take the replay's last round? Bounds from ground truth (issue 22).

The replay (``bench/bench_replay.py``) trains on the masks the simulated annotator accepted, through
the checkpoint picker and the gate, on about 60 % of the masks (the rest are the selection and the
gate's splits). This bench leaves all of that out, to
say how much of the gap to the issue's target (last round's clicks per mask <= 0.7x the first's)
the training recipe itself can close:

1. Writes the texture domain with ``--seed`` (the replay's images for the same seed and sizes) and
   cuts it into the replay's rounds (``engine.replay.round_order``, the same seed).
2. Fine-tunes the base model's mask decoder with ``engine.train.train_decoder`` and the default
   ``TrainSettings`` (SAM's 11-round simulation, lr 1e-4) on the exact ground-truth masks of
   ``--train-on earlier`` (every image of rounds 1..R-1: all the replay could ever have, no split
   held out, no gate), ``--train-on earlier-split`` (only the images of rounds 1..R-1 that the
   replay's last retrain trains on: ``engine.learn.split_images`` with the default ``LearnSettings``
   shares and the training seed leaves the selection and gate splits out, about 60 %) or
   ``--train-on last`` (round R's own images: an oracle, the decoder's capacity on those objects).
3. Every ``--every`` steps it runs the replay's simulated annotator (``engine.replay.annotate_object``:
   clicks on the largest error region until IoU >= 0.9 or 10 clicks) on round R's objects and
   prints clicks per mask and how many ended by hand; the base model's on round 1 and round R are
   printed first. ratio = round R's clicks per mask / round 1's with the base model (round 1 is
   always labelled by the base). ``--train-seed`` varies only the training run (prompt sampling),
   to see how far the ratio moves between two runs of the same recipe on the same masks.

Not a test, and not the loop a user gets: a diagnostic. Deterministic for a seed on one machine.
About 1.5 s a step on a 2-core CPU with 24 training images (5 rounds of 6), plus ~30 s per
evaluation.

Usage: .venv/bin/python bench/bench_replay_bound.py [--seed 41] [--rounds 5] [--per-round 6]
       [--train-seed S] [--train-on earlier|earlier-split|last] [--steps 900] [--every 150] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def run_record(started: datetime) -> dict[str, str]:
    """When (UTC), on what machine and with which command line (``bench/<script> args``) this bench ran, for its JSON."""
    return {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "command": " ".join([f"bench/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
    }


def replay_training_ids(image_ids: list[int], sha256: dict[int, str], seed: int) -> list[int]:
    """Of ``image_ids``, those a retrain with the default ``LearnSettings`` and ``seed`` trains on
    (``engine.learn.split_images``: the selection and the gate's splits are left out)."""
    from maskloop.engine.learn import AnnotatedImage, LearnSettings, split_images

    settings = LearnSettings()
    images = [AnnotatedImage(i, "", sha256[i], [], []) for i in image_ids]
    train, _, _ = split_images(images, settings.holdout, seed, settings.selection)
    return [im.image_id for im in train]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=41, help="texture domain and round order (default: %(default)s)")
    parser.add_argument("--train-seed", type=int, help="the training run's seed (default: --seed)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default: %(default)s)")
    parser.add_argument("--per-round", type=int, default=6, metavar="K", help="images a round (default: %(default)s)")
    parser.add_argument(
        "--train-on", choices=("earlier", "earlier-split", "last"), default="earlier",
        help="earlier: rounds 1..R-1's ground truth; earlier-split: the part of it the replay's retrain trains on; "
        "last: round R's own (an oracle) (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--steps", type=int, default=900, help="training steps (default: %(default)s)")
    parser.add_argument("--every", type=int, default=150, help="steps between evaluations (default: %(default)s)")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args()

    from maskloop.cli.context import StoreContext
    from maskloop.digest import sha256_file
    from maskloop.engine.dataset import annotated_image_ids, iter_ground_truth, load_coco
    from maskloop.engine.predictors import TorchDecoder
    from maskloop.engine.replay import annotate_object, round_numbers, round_order
    from maskloop.engine.texture_domain import write_texture_domain
    from maskloop.engine.train import TrainSettings, train_decoder
    from maskloop.engine.train_samples import prepare_sample
    from maskloop.engine.versions import with_mask_decoder
    from maskloop.server.store.images import list_images

    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="maskloop-bound-") as tmp:
        domain = Path(tmp) / "domain"
        coco = load_coco(write_texture_domain(domain, args.rounds * args.per_round, seed=args.seed))
        order = round_order(annotated_image_ids(coco), args.rounds, args.per_round, args.seed)
        ctx = StoreContext(argparse.Namespace(data=domain, workdir=None, db=None, device="cpu"))
        rows = {r["file_name"]: r for r in list_images(ctx.store.conn)}
        embeddings: dict[str, Any] = {}

        def ground_truth(image_ids: list[int]) -> list[tuple[str, list[Any], list[int]]]:
            out = []
            for g in iter_ground_truth(coco, domain, image_ids=image_ids):
                name = Path(g.path).name
                if name not in embeddings:
                    embeddings[name] = ctx.embedding_of(rows[name], domain / name)
                out.append((name, g.masks, g.annotation_ids))
            return out

        train_seed = args.seed if args.train_seed is None else args.train_seed
        first, last = ground_truth(order[0]), ground_truth(order[-1])
        earlier = [i for r in order[:-1] for i in r]
        if args.train_on == "earlier-split":
            digests = {i: sha256_file(domain / coco.imgs[i]["file_name"]) for i in earlier}
            earlier = replay_training_ids(earlier, digests, train_seed)
        trained_on = ground_truth(earlier) if args.train_on != "last" else last

        def clicks(decoder: TorchDecoder, objects: list[tuple[str, list[Any], list[int]]]) -> dict[str, Any]:
            """The replay's numbers for a round (``round_numbers``) labelled with ``decoder``."""
            return round_numbers(
                [annotate_object(decoder, embeddings[n], m, a) for n, ms, ids in objects for m, a in zip(ms, ids)]
            )

        base = ctx.model.decoder_model("base")
        base_decoder = TorchDecoder(base)
        base_first, base_last = clicks(base_decoder, first), clicks(base_decoder, last)
        print(f"base: round 1 {base_first}, round {args.rounds} {base_last}", flush=True)
        model = with_mask_decoder(base, {k: v.clone() for k, v in base.mask_decoder.state_dict().items()})
        samples = [prepare_sample(embeddings[n], ms, ids) for n, ms, ids in trained_on]
        curve: list[dict[str, Any]] = []
        t0 = time.perf_counter()

        def on_checkpoint(step: int) -> None:
            row = {"step": step, **clicks(TorchDecoder(model), last), "seconds": round(time.perf_counter() - t0)}
            row["ratio"] = round(row["clicks_per_mask"] / base_first["clicks_per_mask"], 4)
            curve.append(row)
            print(json.dumps(row), flush=True)

        settings = TrainSettings(steps=args.steps, seed=train_seed, checkpoint_every=args.every)
        train_decoder(model, samples, settings, on_checkpoint=on_checkpoint)

    report = {
        **run_record(started),
        "seed": args.seed,
        "train_seed": train_seed,
        "train_on": args.train_on,
        "training_images": sorted(n for n, _, _ in trained_on),
        "training_masks": sum(len(ms) for _, ms, _ in trained_on),
        "base_round_1": base_first,
        "base_last_round": base_last,
        "curve": curve,
    }
    print(f"\n| step | round {args.rounds} clicks/mask | by hand | / round 1 (base) |\n|---|---|---|---|")
    print(f"| base | {base_last['clicks_per_mask']} | {base_last['by_hand']} | "
          f"{base_last['clicks_per_mask'] / base_first['clicks_per_mask']:.4f} |")  # fmt: skip
    for row in curve:
        print(f"| {row['step']} | {row['clicks_per_mask']} | {row['by_hand']} | {row['ratio']} |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
