"""The gate: whether a newly trained model version replaces the active one, and the table that says why.

Numbers (``metrics``), all from the click protocol of ``maskloop evaluate`` on masks no training
step saw: mIoU after 1..10 clicks, NoC@85 and NoC@90 (clicks to reach that IoU, 20 if never),
box-prompt mIoU, and mIoU@1 / @5 on the generic photo check set that ships with maskloop
(``engine.checkset``), which no project trains on.

The rule (``RULE``), every row must hold. A held-out split of a young project has a handful of
masks, so every row compares per object and allows for the noise of those per-object
differences: their standard error (SE) is how far the mean moves between two equally good
models. A gain must exceed it; a loss must stay within it (and within a small fixed slack when
the noise is smaller). With a fixed slack alone the verdict was chance on 20 masks (a version
better on every row of 45 unseen objects was refused on the boxes of 21 held-out ones), and a
young project's loop never started.

- **mIoU@1 up by more than the noise**: new − compared > max(0.01, SE of the per-object
  differences at one click). A successor trained on more accepted masks than the active version
  (``more_data``) that learnt from them (its mIoU@1 above the base model's by more than
  max(0.01, SE), ``tie_allowed``) needs only to hold it: new − compared ≥ −max(0.01, SE). The data
  engine retrains as masks accumulate; a tie within the noise of a few held-out masks then goes
  to the version that has seen more of the project, rather than keeping an older one for good;
- **no mIoU@k down**, k = 2..10: new ≥ compared − max(0.005, SE at k clicks);
- **NoC@85 and NoC@90 not up**: new ≤ compared + SE of the per-object click counts;
- **box mIoU not down**: new ≥ compared − max(0.005, SE of the per-object box IoU differences);
- **generic photos kept**: mIoU@1 and @5 on the check set ≥ base − 0.02.

"compared" is the version that was active when the run started (the base model on a project's
first run); the generic rows always compare with the base model, so forgetting cannot creep in
version by version. The row that decided is the first failing row, or mIoU@1 when all hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from maskloop.engine.evaluate import EvaluationResult, noc

#: mIoU is reported after these click counts.
CLICKS = tuple(range(1, 11))
#: The smallest mIoU@1 gain that counts, whatever the noise.
MIN_GAIN = 0.01
#: How far any mIoU@k or the box mIoU may fall.
CURVE_SLACK = 0.005
#: How far the generic check set's mIoU may fall below the base model's.
GENERIC_SLACK = 0.02
#: The smallest rise of the mean mIoU@1..10 for which a later checkpoint replaces an earlier one.
MIN_STEP_GAIN = 0.002

RULE = (
    f"activate only if, with SE the standard error of the per-object differences on the held-out masks: "
    f"mIoU@1 rises by more than max({MIN_GAIN}, SE) (a version trained on more accepted masks than the "
    f"active one, whose mIoU@1 beats the base model's by more than max({MIN_GAIN}, SE), need only not fall "
    f"by more than that); no mIoU@k (k=2..10) and not the box mIoU falls by more than max({CURVE_SLACK}, SE); "
    f"NoC@85 and NoC@90 rise by no more than SE; on the generic photo check set mIoU@1 and @5 stay within "
    f"{GENERIC_SLACK} of the base model"
)


def metrics(result: EvaluationResult, generic: EvaluationResult | None = None) -> dict[str, Any]:
    """The gate's numbers of one model: ``miou@1..10``, ``noc85``, ``noc90``, ``box_miou``, ``objects``,
    ``per_object`` (the same metrics per held-out object, in the split's order, for the noise
    estimates; not kept in ``version.json``) and, with ``generic``, ``generic_miou@1/@5``."""
    s = result.summary()
    curve = s["miou_at_clicks"]
    out: dict[str, Any] = {f"miou@{k}": curve[k - 1] for k in CLICKS if k <= len(curve)}
    out.update({"noc85": s["noc85"], "noc90": s["noc90"], "box_miou": s["box_miou"], "objects": s["objects"]})
    objects, limit = result.objects, result.max_clicks
    per: dict[str, list[float]] = {f"miou@{k}": [o.ious[k - 1] for o in objects] for k in CLICKS if k <= len(curve)}
    per["noc85"] = [float(noc(o.ious, 0.85, limit)) for o in objects]
    per["noc90"] = [float(noc(o.ious, 0.90, limit)) for o in objects]
    per["box_miou"] = [o.box_iou for o in objects]
    out["per_object"] = per
    if generic is not None:
        g = generic.summary()["miou_at_clicks"]
        out.update({"generic_miou@1": g[0], "generic_miou@5": g[4], "generic_objects": len(generic.objects)})
    return out


def score(m: dict[str, Any]) -> float:
    """One number to rank checkpoints by: mean mIoU over 1..10 clicks."""
    return float(np.mean([m[f"miou@{k}"] for k in CLICKS if f"miou@{k}" in m]))


def standard_error(compared: Any, new: Any, floor: float) -> float:
    """max(``floor``, the standard error of the per-object differences ``new - compared`` (two
    equal-length sequences of per-object values)); ``floor`` when they differ in length or hold
    fewer than 2 objects."""
    a, b = np.asarray(compared, np.float64), np.asarray(new, np.float64)
    if a.size < 2 or a.shape != b.shape:
        return floor
    return max(floor, float(np.std(b - a, ddof=1) / np.sqrt(a.size)))


def noise(compared: dict[str, Any], new: dict[str, Any], key: str, floor: float) -> float:
    """``standard_error`` of metric ``key``'s ``per_object`` lists, at least ``floor``."""
    return standard_error(compared.get("per_object", {}).get(key, []), new.get("per_object", {}).get(key, []), floor)


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


def tie_allowed(base: dict[str, Any], new: dict[str, Any], more_data: bool) -> bool:
    """Whether ``new``'s mIoU@1 need only hold against the active version: it was trained on more
    accepted masks (``more_data``) and learnt from them, its mIoU@1 above the base model's by more
    than max(``MIN_GAIN``, SE), the bar the first version of a project clears. A run that barely
    moved from the base (a step or two) gets no tie, however many masks it saw."""
    if not more_data or "miou@1" not in base:
        return False
    return bool(new["miou@1"] - base["miou@1"] > noise(base, new, "miou@1", MIN_GAIN))


def rows(base: dict[str, Any], compared: dict[str, Any], new: dict[str, Any], tie: bool = False) -> list[Row]:
    """The gate's table (see the module doc). ``base``/``compared``/``new``: ``metrics`` dicts;
    ``tie``: ``new``'s mIoU@1 need only hold against ``compared`` (``tie_allowed``)."""

    def row(key: str, label: str, limit: str, ok: bool) -> Row:
        return Row(key, label, base.get(key), compared[key], new[key], limit, ok)

    gain = noise(compared, new, "miou@1", MIN_GAIN)
    change = new["miou@1"] - compared["miou@1"]
    if tie:
        out = [row("miou@1", "mIoU@1", f">= -{gain:.3f} (more masks)", change >= -gain)]
    else:
        out = [row("miou@1", "mIoU@1", f"> +{gain:.3f}", change > gain)]

    def not_down(key: str, label: str) -> None:
        if key in new and key in compared:
            slack = noise(compared, new, key, CURVE_SLACK)
            out.append(row(key, label, f">= -{slack:.3f}", new[key] >= compared[key] - slack))

    for k in CLICKS[1:]:
        not_down(f"miou@{k}", f"mIoU@{k}")
    for key, label in (("noc85", "NoC@85"), ("noc90", "NoC@90")):
        rise = noise(compared, new, key, 0.0)
        limit = "not up" if rise == 0 else f"<= +{rise:.3f}"
        out.append(row(key, label, limit, new[key] <= compared[key] + rise))
    not_down("box_miou", "box mIoU")
    for key, label in (("generic_miou@1", "generic photos mIoU@1"), ("generic_miou@5", "generic photos mIoU@5")):
        if key in new and key in base:
            limit, ok = f">= base -{GENERIC_SLACK}", new[key] >= base[key] - GENERIC_SLACK
            out.append(Row(key, label, base[key], base[key], new[key], limit, ok))
    return out


def improves(kept: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether a later checkpoint ``new`` replaces the ``kept`` one (both ``metrics`` dicts on the
    selection split, both passing the gate against the version they would replace): the mean
    mIoU@1..10 (``score``) must rise by more than the standard error of its per-object
    differences (and by at least ``MIN_STEP_GAIN``). A run keeps its earlier checkpoint unless a
    later one is better beyond the noise: a longer run, whose first steps are a shorter run's (the
    learning rate is constant after warm-up), then ends on the shorter run's choice instead of one
    that scored a hair higher on a few selection masks and lost the boxes elsewhere."""
    ks = [f"miou@{k}" for k in CLICKS if f"miou@{k}" in new and f"miou@{k}" in kept]
    per_kept, per_new = kept.get("per_object", {}), new.get("per_object", {})
    curve_noise = MIN_STEP_GAIN
    if ks and all(k in per_kept and k in per_new for k in ks):
        kept_scores, new_scores = (np.mean([per[k] for k in ks], axis=0) for per in (per_kept, per_new))
        curve_noise = standard_error(kept_scores, new_scores, MIN_STEP_GAIN)
    return score(new) - score(kept) > curve_noise


def with_base_generic(reference: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """``reference`` with the base model's generic rows, which every comparison uses."""
    return {**reference, **{k: v for k, v in base.items() if k.startswith("generic_")}}


def passes(compared: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether ``new`` passes every row against ``compared`` (the checkpoint choice uses this)."""
    return all(r.ok for r in rows(compared, compared, new))


def decide(
    base: dict[str, Any],
    compared: dict[str, Any],
    new: dict[str, Any],
    compared_with: str,
    force: bool,
    more_data: bool = False,
) -> tuple[bool, dict[str, Any], str]:
    """(activate, the ``gate`` record for ``version.json``, the one-line reason); ``more_data``: ``new``
    was trained on more accepted masks than ``compared`` (see ``tie_allowed``)."""
    tie = tie_allowed(base, new, more_data)
    table = rows(base, compared, new, tie)
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
        "more_data": more_data,
        "tie_allowed": tie,
        "verdict": verdict,
    }
    return verdict != "refused", record, reason
