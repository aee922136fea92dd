"""``maskloop train`` and ``maskloop models``: the loop that makes the data engine learn."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maskloop.cli.options import add_db_argument
from maskloop.errors import UserError

if TYPE_CHECKING:
    from tqdm import tqdm

    from maskloop.cli.context import StoreContext
    from maskloop.engine.learn import LearnSettings


def add_folder_arguments(p: argparse.ArgumentParser, default: object = None) -> None:
    p.add_argument("--data", type=Path, default=default, help="folder of images (default: maskloop's sample_images/)")
    p.add_argument("--workdir", type=Path, default=default, help="database/embeddings folder (default: DATA/.maskloop)")
    add_db_argument(p, default)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tr = subparsers.add_parser(
        "train",
        help="fine-tune the mask decoder on the accepted masks: a new model version, "
        "activated if better on held-out images",
    )
    add_folder_arguments(tr)
    length = tr.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=None, help="training steps (default: 200)")
    length.add_argument("--minutes", type=float, default=None, help="train for about this long instead of --steps")
    tr.add_argument("--device", default=None, help="auto, cpu or cuda (default: the folder's configuration, auto)")
    tr.add_argument(
        "--holdout", type=float, default=0.2, help="share of annotated images held out (default: %(default)s)"
    )
    tr.add_argument(
        "--seed", type=int, default=0, help="random seed; a run is deterministic for it (default: %(default)s)"
    )
    tr.add_argument("--lr", type=float, default=None, help="learning rate after warm-up (default: 1e-4)")
    tr.add_argument(
        "--replay-weight",
        type=float,
        default=None,
        help="weight of the distillation on sample photos against forgetting (default: 0, off)",
    )
    tr.add_argument(
        "--selection",
        type=float,
        default=0.15,
        help="share of annotated images that pick the best checkpoint, apart from the gate's (default: %(default)s)",
    )
    tr.add_argument(
        "--eval-clicks", type=int, default=20, help="clicks of the held-out protocol (default: %(default)s)"
    )
    tr.add_argument(
        "--patience",
        type=int,
        default=4,
        help="stop after this many checkpoints (50 steps apart) in a row without a better one; 0 never stops early "
        "(default: %(default)s)",
    )
    tr.add_argument("--force", action="store_true", help="activate the new version even if it is not better")
    tr.add_argument(
        "--continue",
        dest="continue_active",
        action="store_true",
        help="fine-tune the active version's decoder (default: the base model's, on every accepted mask)",
    )
    tr.add_argument("--json", action="store_true", help="print the run's report as JSON")
    tr.set_defaults(func=cmd_train)

    mo = subparsers.add_parser("models", help="list the project's model versions; `models use VERSION|base` switches")
    add_folder_arguments(mo)
    mo.add_argument("--json", action="store_true", help="print JSON instead of a table")
    mo.set_defaults(func=cmd_models)
    mo_sub = mo.add_subparsers(dest="models_command", metavar="ACTION")
    use = mo_sub.add_parser("use", help="make VERSION (or base) the active model version (rollback included)")
    use.add_argument("version", help="a version name such as v0002, or base")
    add_folder_arguments(use, default=argparse.SUPPRESS)
    use.set_defaults(func=cmd_models_use)


def train_settings(args: argparse.Namespace) -> LearnSettings:
    """``LearnSettings`` from the command's flags, checked."""
    from dataclasses import replace

    from maskloop.engine.learn import LearnSettings
    from maskloop.engine.train import TrainSettings

    if args.steps is not None and args.steps < 1:
        raise UserError("--steps must be at least 1")
    if args.minutes is not None and not 0 < args.minutes <= 24 * 60:
        raise UserError("--minutes must be between 0 and 1440")
    if not 0 <= args.holdout < 1:
        raise UserError("--holdout must be at least 0 and below 1")
    if args.eval_clicks < 5:
        raise UserError("--eval-clicks must be at least 5 (mIoU@5 is reported)")
    train = TrainSettings(seed=args.seed)
    if args.steps is not None:
        train = replace(train, steps=args.steps)
    if args.lr is not None:
        if not 0 < args.lr < 1:
            raise UserError("--lr must be between 0 and 1")
        train = replace(train, lr=args.lr)
    if args.replay_weight is not None:
        if not 0 <= args.replay_weight <= 100:
            raise UserError("--replay-weight must be from 0 to 100")
        train = replace(train, replay_weight=args.replay_weight)
    if args.patience < 0:
        raise UserError("--patience must be 0 (never stop early) or more")
    if not 0 <= args.selection < 1 or args.holdout + args.selection >= 1:
        raise UserError("--selection must be at least 0, and --holdout plus --selection below 1")
    return LearnSettings(
        train=train,
        holdout=args.holdout,
        selection=args.selection,
        eval_clicks=args.eval_clicks,
        minutes=args.minutes,
        patience=args.patience,
        force=args.force,
        continue_active=args.continue_active,
    )


class ConsoleProgress:
    """Phase lines on stderr and a tqdm bar with loss and time left while training."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def __call__(self, event: dict[str, Any]) -> None:
        from tqdm import tqdm

        if event["phase"] == "training":
            if self.bar is None:
                print(f"training: {event['steps']} steps", file=sys.stderr, flush=True)
                self.bar = tqdm(total=event["steps"], desc="training", unit="step", file=sys.stderr, disable=None)
            self.bar.total = event["steps"]  # a --minutes run re-estimates its step count as it goes
            self.bar.update(event["step"] - self.bar.n)
            best = event.get("best")
            self.bar.set_postfix(
                loss=f"{event['loss']:.4f}", best="-" if not best else f"{best['score']:.3f}@{best['step']}"
            )
            return
        self.close()
        print(f"{event['phase']}: {event.get('message', '')}", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def format_metrics(m: Mapping[str, Any] | None) -> str:
    if not m:
        return "-"
    return (
        f"mIoU@1 {m['miou@1']:.4f}  @3 {m['miou@3']:.4f}  @5 {m['miou@5']:.4f}  "
        f"NoC@85 {m['noc85']}  NoC@90 {m['noc90']}  box {m['box_miou']:.4f}  ({m['objects']} masks)"
    )


def learn_in_store(ctx: StoreContext, settings: LearnSettings, progress: ConsoleProgress) -> dict[str, Any]:
    """One ``engine.learn.learn`` run on the folder's accepted masks, as ``maskloop train`` (and
    ``maskloop replay``, after each round) runs it; returns the run's report (``version.json``)."""
    from maskloop.engine.learn import learn
    from maskloop.server.jobs.training import photo_sets, training_images

    try:
        return learn(
            lambda: training_images(ctx.store.conn),
            ctx.model.embedder().model,
            model_type=ctx.model.model_type,
            base_sha256=ctx.model.checkpoint_sha256,
            versions=ctx.model.versions,
            embedding_of=ctx.annotated_embedding,
            settings=settings,
            progress=progress,
            **photo_sets(ctx.model),
        )
    finally:
        progress.close()


def cmd_train(args: argparse.Namespace) -> int:
    from maskloop.cli.context import StoreContext

    settings = train_settings(args)
    report = learn_in_store(StoreContext(args), settings, ConsoleProgress())
    if args.json:
        print(json.dumps(report))
        return 0
    for line in report["skipped_images"]:
        print(f"skipped (no embedding): {line}", file=sys.stderr)
    t = report["train"]
    print(
        f"{report['version']}: trained on {t['masks']} masks of {t['images']} images, {t['steps']} steps in {t['seconds']} s "
        f"(loss {t['loss_first_10']} -> {t['loss_last_10']})"
    )
    sel = report["selection"]
    if sel.get("chosen_step") is not None:
        print(
            f"best checkpoint: step {sel['chosen_step']} of {t['steps']}, chosen on the {sel['split']} split "
            f"({sel['masks']} masks of {sel['images']} images)"
            + ("; stopped early: no better checkpoint since" if sel.get("stopped_early") else "")
        )
    if sel.get("blend") is not None:
        print(f"no checkpoint passed there: the version is its {sel['blend']} blend with the base weights")
    print(f"held-out ({report['holdout']['masks']} masks of {report['holdout']['images']} images):")
    if report.get("gate"):
        print(format_gate(report["gate"], report["compared_with"], report["version"]))
    else:
        print(f"  before ({report['compared_with']}): {format_metrics(report['before'])}")
        print(f"  after  ({report['version']}): {format_metrics(report['after'])}")
    print(report["reason"])
    return 0


def format_gate(record: Mapping[str, Any], compared_with: str, version: str) -> str:
    """The gate's table (``engine.gate``) as fixed-width text, the deciding row marked with ``>``."""
    head = f"  {'':2}{'metric':22} {'base':>7} {compared_with:>7} {version:>7} {'change':>8}  {'limit':14} ok"
    lines = [head]
    fmt = lambda v: "-" if v is None else f"{v:.4g}"  # noqa: E731
    for r in record["rows"]:
        mark = ">" if r["metric"] == record["decided_by"] else " "
        change = "-" if r["change"] is None else f"{r['change']:+.4f}"
        lines.append(
            f"  {mark:2}{r['label']:22} {fmt(r['base']):>7} {fmt(r['compared']):>7} {fmt(r['new']):>7} "
            f"{change:>8}  {r['limit']:14} {'yes' if r['ok'] else 'NO'}"
        )
    return "\n".join(lines)


def format_versions(rows: list[dict[str, Any]]) -> str:
    """``engine.stats.version_statistics`` as a fixed-width table (``*`` marks the active version)."""
    head = (
        f"{'':2}{'version':8} {'created':20} {'masks':>5} {'mIoU@1':>7} {'mIoU@5':>7} {'NoC@85':>6} "
        f"{'used':>5} {'s/mask':>7} {'clicks':>6}  note"
    )
    lines = [head, "-" * len(head)]
    fmt = lambda v: "-" if v is None else str(v)  # noqa: E731
    for r in rows:
        held = r.get("heldout") or {}
        usage = r["usage"]
        lines.append(
            f"{'*' if r['active'] else ' ':2}{r['version']:8} {fmt(r.get('created')):20} "
            f"{fmt(r.get('trained_masks')):>5} {fmt(held.get('miou@1')):>7} {fmt(held.get('miou@5')):>7} "
            f"{fmt(held.get('noc85')):>6} {usage['masks']:>5} {fmt(usage['median_seconds_per_mask']):>7} "
            f"{fmt(usage['median_clicks_per_mask']):>6}  {r.get('note', '')}"
        )
    return "\n".join(lines)


def cmd_models(args: argparse.Namespace) -> int:
    from maskloop.cli.context import StoreContext
    from maskloop.server.jobs.statistics import version_statistics

    ctx = StoreContext(args, load_model=False)
    rows = version_statistics(ctx.store.conn, ctx.versions)
    if args.json:
        print(json.dumps(rows))
        return 0
    print(format_versions(rows))
    return 0


def cmd_models_use(args: argparse.Namespace) -> int:
    from maskloop.cli.context import StoreContext

    ctx = StoreContext(args, load_model=False)
    from maskloop.exporter.registry import checkpoint_sha256

    cfg = ctx.store.config
    ctx.versions.activate(args.version, checkpoint_sha256(cfg["MODEL_TYPE"], cfg["CHECKPOINT"]))
    print(f"active model version: {args.version}")
    return 0
