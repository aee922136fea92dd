"""Stage statistics of the data engine, from the annotation store.

Per stage (``manual``, ``semi``, ``auto``, ``import``): images with an accepted mask of that
stage, accepted masks, masks per such image, median seconds and clicks per mask (where the
page recorded them), and for proposals the acceptance rate: accepted / (accepted + rejected),
pending proposals left out. SAM's paper, for comparison: assisted-manual 34 -> 14 s per
mask and 20 -> 44 masks per image; semi-automatic 44 -> 72 masks per image.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from maskloop.engine.versions import ModelVersions

#: The data engine's stages, as an annotation's ``stage`` column names them (schema.sql checks the same list).
STAGES = ("manual", "semi", "auto", "import")
PAPER = {
    "manual": {"seconds_per_mask": "34 -> 14", "masks_per_image": "20 -> 44"},
    "semi": {"masks_per_image": "44 -> 72"},
    "auto": {"masks_per_image": "~100 (SA-1B)"},
}


def _median(values: list[float]) -> float | None:
    return round(float(statistics.median(values)), 2) if values else None


def stage_statistics(rows: Sequence[Sequence[Any]]) -> dict:
    """``{"stages": {stage: {...}}, "total": {...}}`` over the whole store, from every annotation's
    ``(image_id, stage, status, clicks, seconds)``."""
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
            "proposal_acceptance_rate": (round(len(accepted) / decided, 3) if stage == "semi" and decided else None),
            "paper": PAPER.get(stage, {}),
        }
    accepted_all = [r for r in rows if r[2] == "accepted"]
    images_all = {r[0] for r in accepted_all}
    total = {
        "images": len(images_all),
        "masks": len(accepted_all),
        "masks_per_image": round(len(accepted_all) / len(images_all), 2) if images_all else None,
    }
    return {"stages": stages, "total": total}


def format_table(stats: dict) -> str:
    """The statistics as a fixed-width table for the terminal."""
    head = f"{'stage':8} {'images':>6} {'masks':>6} {'masks/img':>9} {'s/mask':>7} {'clicks/mask':>11} {'accept':>7} {'pending':>7}"
    lines = [head, "-" * len(head)]
    fmt = lambda v: "-" if v is None else str(v)  # noqa: E731
    for stage, s in stats["stages"].items():
        lines.append(
            f"{stage:8} {s['images']:>6} {s['masks']:>6} {fmt(s['masks_per_image']):>9} "
            f"{fmt(s['median_seconds_per_mask']):>7} {fmt(s['median_clicks_per_mask']):>11} "
            f"{fmt(s['proposal_acceptance_rate']):>7} {s['proposals_pending']:>7}"
        )
    t = stats["total"]
    lines.append(f"{'total':8} {t['images']:>6} {t['masks']:>6} {fmt(t['masks_per_image']):>9}")
    return "\n".join(lines)


def version_statistics(rows: Sequence[Sequence[Any]], versions: ModelVersions) -> list[dict]:
    """Per model version (``base`` first): its held-out metrics and how people fared with it.

    ``usage``: accepted masks a person made with the version's decoder (stages manual and semi),
    with median seconds and clicks per mask — the paper's 34 -> 14 s curve, for this project —
    and how many of them were fixed by hand (brush or eraser strokes on the model's mask).
    ``heldout``: the version's metrics on its training run's held-out masks (for ``base``: the
    first run's "before" figures); ``gate``: its run's gate record (``engine.gate.decide``; None
    for ``base`` and runs without a held-out check); ``active_since``: when the active one became
    so (None for the others, or when unknown); ``versions`` is an ``engine.versions.ModelVersions``; ``rows`` are
    the accepted manual and semi-automatic masks' ``(model_version, clicks, seconds[, hand_edited])``.
    """
    from maskloop.engine.versions import BASE

    active, since = versions.active(), versions.active_since()
    infos = {name: versions.info(name) for name in versions.names()}
    first_vs_base = next((i for i in infos.values() if i.get("compared_with") == BASE and i.get("before")), None)
    out = []
    for name in [BASE, *infos, *sorted({r[0] for r in rows if r[0] and r[0] != BASE and r[0] not in infos})]:
        mine = [r for r in rows if (r[0] or BASE) == name]
        info = infos.get(name, {})
        out.append(
            {
                "version": name,
                "active": name == active,
                "active_since": since if name == active else None,
                "created": info.get("created"),
                "trained_masks": info.get("train", {}).get("masks"),
                "heldout": info.get("after") if name != BASE else (first_vs_base or {}).get("before"),
                "heldout_before": info.get("before"),
                "compared_with": info.get("compared_with"),
                "activated": info.get("activated"),
                "gate": info.get("gate"),
                "note": info.get("reason", "the checkpoint itself" if name == BASE else "not on disk"),
                "usage": {
                    "masks": len(mine),
                    "median_seconds_per_mask": _median([r[2] for r in mine if r[2] is not None]),
                    "median_clicks_per_mask": _median([r[1] for r in mine if r[1] is not None]),
                    "hand_edited": sum(1 for r in mine if len(r) > 3 and r[3]),
                },
            }
        )
    return out


def people_statistics(
    names: Mapping[int, str],
    masks: Sequence[Sequence[Any]],
    finished: Mapping[int, int],
    log: Sequence[Sequence[Any]],
) -> dict:
    """``{"annotators": [...], "reviewers": [...]}``: per account (teams, see server/auth.py).

    Annotators: accepted masks they made, median seconds and clicks per mask, images they finished,
    and the rejection rate of their reviewed images (rejections / review decisions on images they
    had finished). Reviewers: decisions, images rejected, their rejection rate, masks reviewed.

    Arguments:
      names: account id -> name.
      masks: accepted masks with an author: ``(author_id, clicks, seconds)``.
      finished: account id -> images it finished.
      log: the review log: ``(reviewer_id, annotator_id, decision, masks)``.
    """

    def rate(decisions: list) -> float | None:
        return round(sum(d[2] == "rejected" for d in decisions) / len(decisions), 3) if decisions else None

    annotators = []
    for account_id in sorted({r[0] for r in masks} | set(finished) | {r[1] for r in log if r[1] is not None}):
        mine = [r for r in masks if r[0] == account_id]
        reviewed = [r for r in log if r[1] == account_id]
        annotators.append(
            {
                "name": names.get(account_id, f"#{account_id}"),
                "masks": len(mine),
                "images_finished": int(finished.get(account_id, 0)),
                "median_seconds_per_mask": _median([r[2] for r in mine if r[2] is not None]),
                "median_clicks_per_mask": _median([r[1] for r in mine if r[1] is not None]),
                "reviews": len(reviewed),
                "rejection_rate": rate(reviewed),
            }
        )
    reviewers = []
    for account_id in sorted({r[0] for r in log if r[0] is not None}):
        mine = [r for r in log if r[0] == account_id]
        reviewers.append(
            {
                "name": names.get(account_id, f"#{account_id}"),
                "images_reviewed": sum(r[2] == "reviewed" for r in mine),
                "images_rejected": sum(r[2] == "rejected" for r in mine),
                "masks_reviewed": sum(r[3] for r in mine),
                "rejection_rate": rate(mine),
            }
        )
    return {"annotators": annotators, "reviewers": reviewers}


def _rating_summary(values: list[int]) -> dict[str, Any]:
    """Count, mean, median and histogram (``histogram[i]``: ratings equal to i + 1, 1..10) of ratings."""
    return {
        "count": len(values),
        "mean": round(statistics.fmean(values), 2) if values else None,
        "median": _median([float(v) for v in values]),
        "histogram": [sum(1 for v in values if v == score) for score in range(1, 11)],
    }


def rating_statistics(rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """Mask ratings (1 nonsense .. 10 pixel-perfect, the SAM paper's human study) of accepted masks:
    ``{"all": {...}, "stages": {stage: {...}}, "versions": {version: {...}}}``, each with ``count``,
    ``mean``, ``median`` and ``histogram`` (10 counts, for ratings 1..10). Every stage is listed; a
    version only when one of its masks is rated (masks with no version recorded count as ``base``).

    Arguments:
      rows: every rating of an accepted mask as ``(stage, model_version, rating)``.
    """
    from maskloop.engine.versions import BASE

    versions: dict[str, list[int]] = {}
    for r in rows:
        versions.setdefault(r[1] or BASE, []).append(int(r[2]))
    return {
        "all": _rating_summary([int(r[2]) for r in rows]),
        "stages": {stage: _rating_summary([int(r[2]) for r in rows if r[0] == stage]) for stage in STAGES},
        "versions": {name: _rating_summary(versions[name]) for name in sorted(versions)},
    }


def format_ratings(ratings: dict[str, Any]) -> str:
    """``rating_statistics`` as a fixed-width table: one row per stage and per model version."""
    head = f"{'ratings':14} {'count':>5} {'mean':>5} {'median':>6}  histogram 1..10"
    lines = [head, "-" * len(head)]
    fmt = lambda v: "-" if v is None else str(v)  # noqa: E731
    named = [("all", ratings["all"])]
    named += [(f"stage {k}", v) for k, v in ratings["stages"].items()]
    named += [(f"version {k}", v) for k, v in ratings["versions"].items()]
    for name, s in named:
        lines.append(
            f"{name:14} {s['count']:>5} {fmt(s['mean']):>5} {fmt(s['median']):>6}  {' '.join(map(str, s['histogram']))}"
        )
    return "\n".join(lines)
