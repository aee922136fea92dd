// Brush and eraser strokes on the current mask (issue 23). A stroke is the pointer's path in the
// image frame with a round pen of `radius` image pixels; it is kept with the prompt step it made
// (history.js) and applied on top of the decoder's mask wherever that mask is drawn or saved,
// so a later click, undo or a zoom never loses it. Rasterised by the browser's own canvas
// (round caps and joins: a fast drag leaves no gaps), on OffscreenCanvas, in the page and in
// the decoder worker alike; only the part of the output the stroke covers is read back.

/**
 * One brush ("brush": paint into the mask) or eraser ("erase": cut out of it) stroke.
 * `points`: x0, y0, x1, y1, … in image pixels (the upright image frame); `radius`: the pen's
 * radius in image pixels (the brush's screen size divided by the zoom when the stroke began).
 * @typedef {{mode: "brush" | "erase", radius: number, points: number[]}} Stroke
 */
/** @typedef {import('./worker-protocol.js').Region} Region */

/** Alpha at or above this (of 255) is inside the stroke: the pixel's centre is under the pen. */
const INSIDE_ALPHA = 128;

/**
 * Trace a stroke's path on `ctx` (whose transform maps image pixels to its pixels) and fill it
 * with the current fill and stroke styles: a round pen along the points.
 * @param {CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D} ctx
 * @param {Stroke} stroke
 */
export function traceStroke(ctx, stroke) {
  const p = stroke.points;
  if (p.length < 2) return;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.lineWidth = 2 * stroke.radius;
  ctx.beginPath();
  if (p.length === 2) {
    ctx.arc(p[0], p[1], stroke.radius, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.moveTo(p[0], p[1]);
  for (let i = 2; i < p.length; i += 2) ctx.lineTo(p[i], p[i + 1]);
  ctx.stroke();
}

/**
 * The box a stroke covers, in image pixels: [x0, y0, x1, y1].
 * @param {Stroke} stroke
 * @returns {[number, number, number, number]}
 */
export function strokeBounds(stroke) {
  let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
  const p = stroke.points;
  for (let i = 0; i < p.length; i += 2) {
    x0 = Math.min(x0, p[i]);
    x1 = Math.max(x1, p[i]);
    y0 = Math.min(y0, p[i + 1]);
    y1 = Math.max(y1, p[i + 1]);
  }
  const r = stroke.radius + 1;
  return [x0 - r, y0 - r, x1 + r, y1 + r];
}

/**
 * Apply strokes, in order, to a mask drawn over `region` (image pixels [x0, x1) x [y0, y1) as
 * outW x outH; the whole image at 1:1 for the saved mask). Changes `mask` in place and returns it.
 * @param {Uint8Array} mask outH x outW row-major, 1 inside
 * @param {Region} region
 * @param {Stroke[] | null | undefined} strokes
 * @returns {Uint8Array}
 */
export function applyStrokes(mask, region, strokes) {
  if (!strokes?.length) return mask;
  const { x0, y0, x1, y1, outW, outH } = region;
  const sx = outW / (x1 - x0);
  const sy = outH / (y1 - y0);
  for (const stroke of strokes) {
    const [bx0, by0, bx1, by1] = strokeBounds(stroke);
    const cx0 = Math.max(0, Math.floor((bx0 - x0) * sx));
    const cy0 = Math.max(0, Math.floor((by0 - y0) * sy));
    const cx1 = Math.min(outW, Math.ceil((bx1 - x0) * sx));
    const cy1 = Math.min(outH, Math.ceil((by1 - y0) * sy));
    if (cx1 <= cx0 || cy1 <= cy0) continue;
    const w = cx1 - cx0;
    const h = cy1 - cy0;
    const ctx = /** @type {OffscreenCanvasRenderingContext2D} */ (
      new OffscreenCanvas(w, h).getContext("2d", { willReadFrequently: true })
    );
    ctx.setTransform(sx, 0, 0, sy, -x0 * sx - cx0, -y0 * sy - cy0);
    ctx.fillStyle = ctx.strokeStyle = "#fff";
    traceStroke(ctx, stroke);
    const rgba = ctx.getImageData(0, 0, w, h).data;
    const value = stroke.mode === "brush" ? 1 : 0;
    for (let j = 0; j < h; j++) {
      const row = (cy0 + j) * outW + cx0;
      const src = j * w * 4 + 3;
      for (let i = 0; i < w; i++) if (rgba[src + 4 * i] >= INSIDE_ALPHA) mask[row + i] = value;
    }
  }
  return mask;
}

/**
 * A stroke as the store keeps it in an annotation's provenance: points to 0.1 px, a point kept
 * only once the path has moved a quarter of the pen's radius from the last one kept (and the
 * last point always), so a long stroke stays a few hundred bytes (the server keeps at most
 * 64 KiB of prompts a mask). The saved mask itself is rasterised from every point.
 * @param {Stroke} stroke
 */
export function strokeToJson(stroke) {
  const round = (/** @type {number} */ v) => Math.round(v * 10) / 10;
  const p = stroke.points;
  const step = stroke.radius / 4;
  const kept = [p[0], p[1]];
  for (let i = 2; i < p.length; i += 2) {
    const last = i === p.length - 2;
    const n = kept.length;
    if (last || Math.hypot(p[i] - kept[n - 2], p[i + 1] - kept[n - 1]) >= step)
      kept.push(p[i], p[i + 1]);
  }
  return { mode: stroke.mode, radius: round(stroke.radius), points: kept.map(round) };
}
