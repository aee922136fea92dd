"""The gate: whether a newly trained model version replaces the active one, and the table that says why.

Numbers (``metrics``), all from the click protocol of ``maskloop evaluate`` on masks no training
step saw: mIoU after 1..10 clicks, NoC@85 and NoC@90 (clicks to reach that IoU, 20 if never),
box-prompt mIoU, and mIoU@1 / @5 on the generic photo check set that ships with maskloop
(``engine.checkset``), which no project trains on.

The rule (``RULE``), every row must hold:

- **mIoU@1 up by more than the noise**: new − compared > max(0.01, the standard error of the
  per-object differences at one click);
- **no mIoU@k down**, k = 1..10: new ≥ compared − 0.005;
- **NoC@85 and NoC@90 not up**: new ≤ compared;
- **box mIoU not down by more than the noise**: new ≥ compared − max(0.005, the standard error of
  the per-object box differences). One box per object is one decode, the noisiest row: on 20
  masks its mean moves by about 0.01 between two equally good models, and a fixed 0.005 made the
  verdict chance (a version better on every row of 45 unseen objects was refused on the boxes of
  21 held-out ones);
- **generic photos kept**: mIoU@1 and @5 on the check set ≥ base − 0.02.

"compared" is the version that was active when the run started (the base model on a project's
first run); the generic rows always compare with the base model, so forgetting cannot creep in
version by version. The row that decided is the first failing row, or mIoU@1 when all hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from maskloop.engine.evaluate import EvaluationResult

#: mIoU is reported after these click counts.
CLICKS = tuple(range(1, 11))
#: The smallest mIoU@1 gain that counts, whatever the noise.
MIN_GAIN = 0.01
#: How far any mIoU@k or the box mIoU may fall.
CURVE_SLACK = 0.005
#: How far the generic check set's mIoU may fall below the base model's.
GENERIC_SLACK = 0.02

RULE = (
    f"activate only if: held-out mIoU@1 rises by more than the noise (max({MIN_GAIN}, the standard error "
    f"of the per-object differences)); no mIoU@k (k=1..10) falls by more than {CURVE_SLACK}; NoC@85 and NoC@90 "
    f"do not rise; box mIoU does not fall by more than the noise (max({CURVE_SLACK}, the standard error of "
    f"the per-object box differences)); on the generic photo check set mIoU@1 and "
    f"@5 stay within {GENERIC_SLACK} of the base model"
)


def metrics(result: EvaluationResult, generic: EvaluationResult | None = None) -> dict[str, Any]:
    """The gate's numbers of one model: ``miou@1..10``, ``noc85``, ``noc90``, ``box_miou``, ``objects``,
    ``ious@1`` and ``box_ious`` (per object, for the noise estimates) and, with ``generic``,
    ``generic_miou@1/@5``."""
    s = result.summary()
    curve = s["miou_at_clicks"]
    out: dict[str, Any] = {f"miou@{k}": curve[k - 1] for k in CLICKS if k <= len(curve)}
    out.update({"noc85": s["noc85"], "noc90": s["noc90"], "box_miou": s["box_miou"], "objects": s["objects"]})
    out["ious@1"] = [round(o.ious[0], 4) for o in result.objects]
    out["box_ious"] = [round(o.box_iou, 4) for o in result.objects]
    if generic is not None:
        g = generic.summary()["miou_at_clicks"]
        out.update({"generic_miou@1": g[0], "generic_miou@5": g[4], "generic_objects": len(generic.objects)})
    return out


def score(m: dict[str, Any]) -> float:
    """One number to rank checkpoints by: mean mIoU over 1..10 clicks."""
    return float(np.mean([m[f"miou@{k}"] for k in CLICKS if f"miou@{k}" in m]))


def noise(compared: dict[str, Any], new: dict[str, Any], key: str = "ious@1", floor: float = MIN_GAIN) -> float:
    """max(``floor``, the standard error of the per-object differences in ``key``: ``ious@1`` or
    ``box_ious``); ``floor`` when they are missing (records of older versions) or fewer than 2."""
    a, b = np.asarray(compared.get(key, [])), np.asarray(new.get(key, []))
    if len(a) < 2 or len(a) != len(b):
        return floor
    return max(floor, float(np.std(b - a, ddof=1) / np.sqrt(len(a))))


@dataclass
class Row:
    metric: str
    label: str
    base: float | None
    compared: float | None
    new: float
    limit: str
    ok: bool

    def as_dict(self) -> dict[str, Any]:
        change = None if self.compared is None else round(self.new - self.compared, 4)
        return {**self.__dict__, "change": change}


def rows(base: dict[str, Any], compared: dict[str, Any], new: dict[str, Any]) -> list[Row]:
    """The gate's table (see the module doc). ``base``/``compared``/``new``: ``metrics`` dicts."""
    out: list[Row] = []
    gain = noise(compared, new)
    out.append(
        Row(
            "miou@1",
            "mIoU@1",
            base.get("miou@1"),
            compared["miou@1"],
            new["miou@1"],
            f"> +{gain:.3f}",
            new["miou@1"] - compared["miou@1"] > gain,
        )
    )
    for k in CLICKS[1:]:
        key = f"miou@{k}"
        if key in new and key in compared:
            out.append(
                Row(
                    key,
                    f"mIoU@{k}",
                    base.get(key),
                    compared[key],
                    new[key],
                    f">= -{CURVE_SLACK}",
                    new[key] >= compared[key] - CURVE_SLACK,
                )
            )
    for key, label in (("noc85", "NoC@85"), ("noc90", "NoC@90")):
        out.append(Row(key, label, base.get(key), compared[key], new[key], "not up", new[key] <= compared[key]))
    box_slack = noise(compared, new, "box_ious", CURVE_SLACK)
    out.append(
        Row(
            "box_miou",
            "box mIoU",
            base.get("box_miou"),
            compared["box_miou"],
            new["box_miou"],
            f">= -{box_slack:.3f}",
            new["box_miou"] >= compared["box_miou"] - box_slack,
        )
    )
    for key, label in (("generic_miou@1", "generic photos mIoU@1"), ("generic_miou@5", "generic photos mIoU@5")):
        if key in new and key in base:
            out.append(
                Row(
                    key,
                    label,
                    base[key],
                    base[key],
                    new[key],
                    f">= base -{GENERIC_SLACK}",
                    new[key] >= base[key] - GENERIC_SLACK,
                )
            )
    return out


def with_base_generic(reference: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """``reference`` with the base model's generic rows, which every comparison uses."""
    return {**reference, **{k: v for k, v in base.items() if k.startswith("generic_")}}


def passes(compared: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether ``new`` passes every row against ``compared`` (the checkpoint choice uses this)."""
    return all(r.ok for r in rows(compared, compared, new))


def decide(
    base: dict[str, Any], compared: dict[str, Any], new: dict[str, Any], compared_with: str, force: bool
) -> tuple[bool, dict[str, Any], str]:
    """(activate, the ``gate`` record for ``version.json``, the one-line reason)."""
    table = rows(base, compared, new)
    failing = [r for r in table if not r.ok]
    decided_by = failing[0] if failing else table[0]
    what = (
        f"{decided_by.label} {decided_by.compared} -> {decided_by.new} (limit {decided_by.limit}"
        f"{' vs ' + compared_with if decided_by.metric.startswith('generic') is False else ' vs base'})"
    )
    if not failing:
        verdict, reason = "activated", f"activated: every row of the gate holds; {what}"
    elif force:
        verdict, reason = "forced", f"activated because it was forced, although refused: {what}"
    else:
        verdict, reason = "refused", f"refused: {what}"
    record = {
        "rule": RULE,
        "compared_with": compared_with,
        "rows": [r.as_dict() for r in table],
        "decided_by": decided_by.metric,
        "verdict": verdict,
    }
    return verdict != "refused", record, reason
