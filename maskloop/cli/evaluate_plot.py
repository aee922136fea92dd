"""``maskloop evaluate --plot``: the click protocols' curves as a PNG (matplotlib's Agg renderer, no display).

One line per protocol (centre, random), solid for the model's own choice and dashed for the
oracle's (the candidate closest to the truth), mIoU against the number of clicks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from maskloop.errors import UserError

_COLOURS = {"center": "tab:blue", "random": "tab:orange"}


def write_curves(summary: dict[str, Any], path: Path) -> None:
    """Write ``summary`` (``maskloop evaluate --json``'s, with ``protocols``) as a PNG at ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError("--plot needs matplotlib: pip install matplotlib") from None
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    # several model versions: a colour per version, a line style per protocol
    versions = summary.get("versions") or {summary["model_version"]: summary["protocols"]}
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink"]
    for k, (version, protocols) in enumerate(versions.items()):
        for p, (name, curve) in enumerate(protocols.items()):
            several = len(versions) > 1
            colour = palette[k % len(palette)] if several else _COLOURS.get(name, "tab:gray")
            label = name if curve.get("seed") is None else f"{name} (seed {curve['seed']})"
            label = f"{version}, {label}" if several else label
            ys = curve["miou_at_clicks"]
            xs = list(range(1, len(ys) + 1))
            style = ("-", ":")[p % 2] if several else "-"
            ax.plot(xs, ys, marker="o", markersize=3, color=colour, linestyle=style, label=f"{label}: model's choice")
            if "oracle" in curve:
                ax.plot(xs, curve["oracle"]["miou_at_clicks"], linestyle="--", color=colour, label=f"{label}: oracle")
    n = max((len(c["miou_at_clicks"]) for c in summary["protocols"].values()), default=1)
    ax.set_xticks(range(1, n + 1, max(1, n // 10)))
    ax.set_xlabel("clicks")
    ax.set_ylabel("mIoU")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(
        f"{summary['objects']} objects, {summary['model_type']} ({', '.join(versions)}), {summary['decoder']}",
        fontsize=9,
    )
    try:
        fig.savefig(path, dpi=120, format="png")
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
