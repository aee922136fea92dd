"""Stage statistics of the data engine, from the annotation store.

Per stage (``manual``, ``semi``, ``auto``, ``import``): images with an accepted mask of that
stage, accepted masks, masks per such image, median seconds and clicks per mask (where the
page recorded them), and for proposals the acceptance rate: accepted / (accepted + rejected),
pending proposals left out. SAM's paper, for comparison: assisted-manual 34 -> 14 s per
mask and 20 -> 44 masks per image; semi-automatic 44 -> 72 masks per image.
"""

from __future__ import annotations

import sqlite3
import statistics

STAGES = ("manual", "semi", "auto", "import")
PAPER = {
    "manual": {"seconds_per_mask": "34 -> 14", "masks_per_image": "20 -> 44"},
    "semi": {"masks_per_image": "44 -> 72"},
    "auto": {"masks_per_image": "~100 (SA-1B)"},
}


def _median(values: list[float]) -> float | None:
    return round(float(statistics.median(values)), 2) if values else None


def stage_statistics(conn: sqlite3.Connection) -> dict:
    """``{"stages": {stage: {...}}, "total": {...}}`` over the whole store."""
    rows = conn.execute("SELECT image_id, stage, status, clicks, seconds FROM annotation").fetchall()
    stages: dict[str, dict] = {}
    for stage in STAGES:
        mine = [r for r in rows if r[1] == stage]
        accepted = [r for r in mine if r[2] == "accepted"]
        rejected = [r for r in mine if r[2] == "rejected"]
        proposed = [r for r in mine if r[2] == "proposed"]
        images = {r[0] for r in accepted}
        decided = len(accepted) + len(rejected)
        stages[stage] = {
            "images": len(images),
            "masks": len(accepted),
            "masks_per_image": round(len(accepted) / len(images), 2) if images else None,
            "median_seconds_per_mask": _median([r[4] for r in accepted if r[4] is not None]),
            "median_clicks_per_mask": _median([r[3] for r in accepted if r[3] is not None]),
            "proposals_pending": len(proposed),
            "proposal_acceptance_rate": (round(len(accepted) / decided, 3)
                                         if stage == "semi" and decided else None),
            "paper": PAPER.get(stage, {}),
        }
    accepted_all = [r for r in rows if r[2] == "accepted"]
    images_all = {r[0] for r in accepted_all}
    total = {"images": len(images_all), "masks": len(accepted_all),
             "masks_per_image": round(len(accepted_all) / len(images_all), 2) if images_all else None}
    return {"stages": stages, "total": total}


def format_table(stats: dict) -> str:
    """The statistics as a fixed-width table for the terminal."""
    head = f"{'stage':8} {'images':>6} {'masks':>6} {'masks/img':>9} {'s/mask':>7} {'clicks/mask':>11} {'accept':>7} {'pending':>7}"
    lines = [head, "-" * len(head)]
    fmt = lambda v: "-" if v is None else str(v)  # noqa: E731
    for stage, s in stats["stages"].items():
        lines.append(f"{stage:8} {s['images']:>6} {s['masks']:>6} {fmt(s['masks_per_image']):>9} "
                     f"{fmt(s['median_seconds_per_mask']):>7} {fmt(s['median_clicks_per_mask']):>11} "
                     f"{fmt(s['proposal_acceptance_rate']):>7} {s['proposals_pending']:>7}")
    t = stats["total"]
    lines.append(f"{'total':8} {t['images']:>6} {t['masks']:>6} {fmt(t['masks_per_image']):>9}")
    return "\n".join(lines)
