"""``maskloop replay --plot``: the loop's curve as a PNG (matplotlib's Agg renderer, no display).

Top: clicks per mask per round, each point labelled with the model version that round used, and
dashed, the base model's clicks per mask on the same objects (how hard the round's images are).
Bottom: mIoU after one click and the share of masks reaching the target IoU, per round.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from maskloop.errors import UserError


def write_plot(report: dict[str, Any], path: Path) -> None:
    """Write ``report`` (``maskloop replay --json``'s) as a PNG at ``path``; UserError when it cannot."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError("--plot needs matplotlib: pip install matplotlib") from None

    rounds = report["rounds"]
    xs = [r["round"] for r in rounds]
    settings = report["settings"]
    fig = Figure(figsize=(7.0, 5.6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)

    clicks = [r["clicks_per_mask"] for r in rounds]
    top.plot(xs, clicks, marker="o", color="tab:blue", label="with the version used")
    top.plot(
        xs,
        [r["base_clicks_per_mask"] for r in rounds],
        linestyle="--",
        marker=".",
        color="tab:gray",
        label="base model, same images",
    )
    top.legend(loc="lower left", fontsize=8)
    for x, y, r in zip(xs, clicks, rounds):
        top.annotate(r["active_version"], (x, y), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    top.set_ylim(0, settings["max_clicks"] + 0.8)
    top.set_ylabel("clicks per mask")
    top.grid(alpha=0.3)
    ratio, same = report["clicks_ratio_last_first"], report["clicks_ratio_last_base"]
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    top.set_title(
        f"{settings['per_round']} images per round, seed {settings['seed']}, {_length(settings)}\n"
        f"last / first round: {fmt(ratio)}; last round / base on its objects: {fmt(same)}",
        fontsize=9,
    )

    bottom.plot(xs, [r["miou@1"] for r in rounds], marker="o", color="tab:green", label="mIoU@1")
    bottom.plot(
        xs,
        [r["reached_target"] for r in rounds],
        marker="s",
        color="tab:orange",
        label=f"share reaching IoU {settings['target_iou']}",
    )
    bottom.set_ylim(0, 1.02)
    bottom.set_xlabel("round (labelled with the version named above its point)")
    bottom.set_xticks(xs)
    bottom.grid(alpha=0.3)
    bottom.legend(loc="lower right", fontsize=8)
    fig.suptitle("maskloop replay: the simulated annotator, round by round", fontsize=11)
    try:
        fig.savefig(path, dpi=120, format="png")
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def _length(settings: dict[str, Any]) -> str:
    if settings["minutes_per_round"] is not None:
        return f"{settings['minutes_per_round']:g} min training per round"
    if settings["steps_per_round"] is not None:
        return f"{settings['steps_per_round']} steps per round"
    return "train's default steps per round"
