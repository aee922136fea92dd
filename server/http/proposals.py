"""The data engine over HTTP: proposals for one image (stage 2), stage statistics, ``/stats``."""

from __future__ import annotations

import html

import numpy as np
import numpy.typing as npt
from flask import Blueprint, Response, jsonify

from maskloop import validate
from maskloop.server.http.context import services, tiling
from maskloop.server.http.db import get_db
from maskloop.server.http.images import image_path, usable_image_or_fail
from maskloop.server.http.json_api import fail, json_body
from maskloop.server.jobs.embeddings import EmbeddingError
from maskloop.tiles import Box

bp = Blueprint("engine", __name__)

#: Grid of point prompts for the page's "propose" button: SAM's 32x32 on a GPU; 16x16 on a
#: CPU, where 32x32 takes minutes per image with the default model.
DEFAULT_POINTS = {"cuda": 32, "cpu": 16}


@bp.post("/api/images/<int:image_id>/propose")
def propose(image_id: int) -> tuple[Response, int]:
    """Store confident automatic masks of the image as proposals (stage ``semi``).

    Body (optional): ``{"points_per_side": N, "category": "object"}``. Answers 201
    ``{"created": n, "ids": [...], "generated": m}``; masks duplicating an accepted or
    proposed mask of the image (IoU ≥ 0.5) are not stored again.
    """
    from maskloop.engine.automatic import GeneratorSettings
    from maskloop.exporter.image_file import load_image_rgb
    from maskloop.server.jobs.proposals import DEFAULT_CATEGORY, MaskStage, embedding_from_npy
    from maskloop.server.store.categories import ensure_category
    from maskloop.server.store.db import transaction

    body = json_body() if _has_body() else {}
    row = usable_image_or_fail(image_id)
    svc = services()
    points = body.get("points_per_side", DEFAULT_POINTS.get(svc.model.device, 16))
    if not isinstance(points, int) or isinstance(points, bool) or not 1 <= points <= 64:
        fail(400, f"points_per_side must be an integer from 1 to 64, got {validate.brief(points)}")
    category = validate.text(body.get("category", DEFAULT_CATEGORY), "category", strip_check=True)
    path = image_path(row)
    conn = get_db()
    version = svc.model.active_version()
    generator = svc.model.generator(GeneratorSettings(points_per_side=points), version)
    stage = MaskStage(generator, svc.model.model_id, "semi", "proposed", model_version=version, tiling=tiling())
    if stage.is_tiled(row):  # a large image: tile by tile, on the tiles' cached embeddings
        hw = (int(row["height"]), int(row["width"]))

        def region_embedding(region: Box) -> npt.NDArray[np.float32]:
            return embedding_from_npy(svc.embeddings.get_region(row["sha256"], path, image_id, region))

        with transaction(conn):
            category_id = ensure_category(conn, category.strip())
        try:
            run = stage.run_tiled(conn, image_id, path, hw, region_embedding, category_id, guard=svc.model.lock)
        except EmbeddingError as exc:
            fail(422, str(exc))
        return jsonify({"created": len(run.stored), "ids": run.stored, "generated": run.generated}), 201
    try:
        embedding = embedding_from_npy(svc.embeddings.get(row["sha256"], path, image_id))
    except EmbeddingError as exc:
        fail(422, str(exc))
    with transaction(conn):
        category_id = ensure_category(conn, category.strip())
    with svc.model.lock:
        run = stage.run_image(conn, image_id, load_image_rgb(path), embedding, category_id)
    return jsonify({"created": len(run.stored), "ids": run.stored, "generated": run.generated}), 201


def _has_body() -> bool:
    from flask import request

    return bool(request.get_data(cache=True))


@bp.get("/api/stats")
def stats() -> Response:
    """Stage statistics, plus ``versions``: per model version, held-out metrics and usage;
    ``annotators``/``reviewers``: per account (empty in single-user mode); and ``ratings``: the
    1..10 mask ratings' mean, median and histogram, overall, per stage and per model version."""
    from maskloop.server.jobs.statistics import (
        people_statistics,
        rating_statistics,
        stage_statistics,
        version_statistics,
    )

    return jsonify(
        {
            **stage_statistics(get_db()),
            "versions": version_statistics(get_db(), services().model.versions),
            **people_statistics(get_db()),
            "ratings": rating_statistics(get_db()),
        }
    )


@bp.get("/stats")
def stats_page() -> Response:
    """The stage statistics as a page, beside the SAM paper's figures."""
    from maskloop.server.jobs.statistics import people_statistics, stage_statistics, version_statistics

    data = stage_statistics(get_db())
    versions = version_statistics(get_db(), services().model.versions)
    people = people_statistics(get_db())
    fmt = lambda v: "–" if v is None else html.escape(str(v))  # noqa: E731
    held = lambda v, k: fmt((v["heldout"] or {}).get(k))  # noqa: E731
    version_rows = "".join(
        f"<tr><th>{html.escape(v['version'])}{' (active)' if v['active'] else ''}</th><td>{fmt(v['created'])}</td>"
        f"<td>{fmt(v['trained_masks'])}</td><td>{held(v, 'miou@1')}</td><td>{held(v, 'miou@3')}</td>"
        f"<td>{held(v, 'miou@5')}</td><td>{held(v, 'noc85')}</td><td>{held(v, 'noc90')}</td>"
        f"<td>{v['usage']['masks']}</td><td>{fmt(v['usage']['median_seconds_per_mask'])}</td>"
        f"<td>{fmt(v['usage']['median_clicks_per_mask'])}</td><td>{fmt(v['note'])}</td></tr>"
        for v in versions
    )
    rows = "".join(
        f"<tr><th>{stage}</th><td>{s['images']}</td><td>{s['masks']}</td><td>{fmt(s['masks_per_image'])}</td>"
        f"<td>{fmt(s['median_seconds_per_mask'])}</td><td>{fmt(s['median_clicks_per_mask'])}</td>"
        f"<td>{fmt(s['proposal_acceptance_rate'])}</td><td>{s['proposals_pending']}</td>"
        f"<td>{fmt('; '.join(f'{k}: {v}' for k, v in s['paper'].items()) or None)}</td></tr>"
        for stage, s in data["stages"].items()
    )
    annotator_rows = "".join(
        f"<tr><th>{fmt(p['name'])}</th><td>{p['masks']}</td><td>{p['images_finished']}</td>"
        f"<td>{fmt(p['median_seconds_per_mask'])}</td><td>{fmt(p['median_clicks_per_mask'])}</td>"
        f"<td>{p['reviews']}</td><td>{fmt(p['rejection_rate'])}</td></tr>"
        for p in people["annotators"]
    )
    reviewer_rows = "".join(
        f"<tr><th>{fmt(p['name'])}</th><td>{p['images_reviewed']}</td><td>{p['images_rejected']}</td>"
        f"<td>{p['masks_reviewed']}</td><td>{fmt(p['rejection_rate'])}</td></tr>"
        for p in people["reviewers"]
    )
    people_html = (
        f"""<h2>Annotators</h2><table><thead><tr><th>name</th><th>masks</th><th>images finished</th>
<th>median s / mask</th><th>median clicks / mask</th><th>reviews</th><th>rejection rate</th></tr></thead>
<tbody>{annotator_rows}</tbody></table><h2>Reviewers</h2><table><thead><tr><th>name</th><th>accepted</th>
<th>rejected</th><th>masks reviewed</th><th>rejection rate</th></tr></thead><tbody>{reviewer_rows}</tbody></table>"""
        if people["annotators"] or people["reviewers"]
        else ""
    )
    t = data["total"]
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>maskloop — stage statistics</title>
<link rel="stylesheet" href="/web/css/stats.css"></head>
<body><h1>Data engine: stage statistics</h1><p><a href="/">back to annotating</a></p>
<table><thead><tr><th>stage</th><th>images</th><th>masks</th><th>masks / image</th><th>median s / mask</th>
<th>median clicks / mask</th><th>proposal acceptance</th><th>proposals pending</th><th>SAM paper</th></tr></thead>
<tbody>{rows}<tr><th>total</th><td>{t["images"]}</td><td>{t["masks"]}</td><td>{fmt(t["masks_per_image"])}</td>
<td colspan="5"></td></tr></tbody></table>
<p>Accepted masks only; a stage's images are those with an accepted mask of that stage.</p>
<h2>Model versions: the loop</h2>
<p>Each training run (<code>maskloop train</code>) fine-tunes the mask decoder on the accepted masks; SAM's
assisted-manual stage went from 34 to 14 s per mask over six retrainings. Held-out: the run's held-out masks,
simulated clicks. Usage: masks people accepted with that version's decoder (stages manual and semi).</p>
<table><thead><tr><th>version</th><th>created</th><th>trained on (masks)</th><th>held-out mIoU@1</th><th>@3</th>
<th>@5</th><th>NoC@85</th><th>NoC@90</th><th>masks made with it</th><th>median s / mask</th><th>median clicks / mask</th>
<th>note</th></tr></thead><tbody>{version_rows}</tbody></table>{people_html}</body></html>"""
    return Response(page, mimetype="text/html")
