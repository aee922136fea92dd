// Polygon editing of an accepted mask (issue 23): the mask's outlines — outer rings and holes,
// vertices on pixel corners, simplified at the fineness the slider sets — come from the server
// (OpenCV: GET /api/annotations/<id>/polygons); a vertex is dragged, a double-click on an edge
// inserts one, a right-click on a vertex deletes it; Enter sends the rings back (PUT), which
// become the stored mask (holes stay holes), Esc leaves the mask as it was.
import { api, routes } from "./api.js";
import { updateUncovered } from "./annotations.js";
import { drawAnnotations } from "./mask-bitmaps.js";
import { clearObject } from "./session.js";
import { stage, stagePoint } from "./stage.js";
import { $, errorText, showError, stageMessage } from "./status.js";
import { invalidate, state, tracked } from "./store.js";

/** @typedef {{points: number[], hole: boolean}} Ring image frame, vertices x0, y0, x1, y1, … */
/** @typedef {{annotation: import('./store.js').AnnotationRecord, rings: Ring[], tolerance: number, drag: {ring: number, k: number} | null, changed: boolean}} PolygonEdit */

const HIT_PX = 7; // a press this close to a vertex (screen px) takes it
const EDGE_PX = 6; // a double-click this close to an edge inserts a vertex there

/**
 * The polygon bar (Save: `save`, the page's Enter; Cancel; the fineness slider) and the stage's
 * double-click (inserts a vertex while polygons are open).
 * @param {() => unknown} save
 */
export function connectPolygonBar(save) {
  $("polygon-save").onclick = () => save();
  $("polygon-cancel").onclick = () => closePolygon();
  $("polygon-tolerance").onchange = () => tracked(changeTolerance());
  stage.addEventListener("dblclick", (/** @type {MouseEvent} */ e) => {
    const [sx, sy] = stagePoint(e);
    if (state.polygon) polygonDoubleClick(sx, sy);
  });
}

/** Open an accepted mask's polygons (the slider's fineness). */
export async function openPolygon(/** @type {import('./store.js').AnnotationRecord} */ annotation) {
  clearObject();
  closePolygon();
  const tolerance = Number(/** @type {HTMLInputElement} */ ($("polygon-tolerance")).value);
  let got;
  try {
    got = await api(`${routes.polygons(annotation.id)}?tolerance=${tolerance}`);
  } catch (err) {
    showError(`cannot show mask #${annotation.id} as polygons: ${errorText(err)}`);
    return;
  }
  state.polygon = { annotation, rings: got.rings, tolerance, drag: null, changed: false };
  $("polygon-bar").hidden = false;
  showCount();
  stageMessage(
    `polygons of mask #${annotation.id}: drag a vertex, double-click an edge to add one, right-click a vertex to delete it; Enter saves, Esc leaves it`,
  );
  invalidate("masks", "object");
}

/** The slider moved: the outlines again at the new fineness (vertex edits not saved are dropped). */
export async function changeTolerance() {
  const edit = state.polygon;
  if (edit) await openPolygon(edit.annotation);
}

/** Esc: leave the polygons unsaved (true), or nothing was open (false). */
export function closePolygon() {
  if (!state.polygon) return false;
  state.polygon = null;
  $("polygon-bar").hidden = true;
  stageMessage("");
  invalidate("masks", "object");
  return true;
}

/** Enter: the rings become the stored mask. */
export async function savePolygon() {
  const edit = state.polygon;
  if (!edit) return;
  let saved;
  try {
    saved = await api(routes.polygons(edit.annotation.id), {
      method: "PUT",
      body: { rings: edit.rings },
    });
  } catch (err) {
    showError(`the polygons were not saved (they are still here): ${errorText(err)}`);
    return;
  }
  Object.assign(edit.annotation, saved);
  closePolygon();
  await drawAnnotations([edit.annotation]);
  invalidate("annotations");
  stageMessage(`mask #${saved.id} saved from its polygons: ${saved.area} px`);
  await updateUncovered();
}

function showCount() {
  const rings = state.polygon?.rings ?? [];
  const vertices = rings.reduce((n, r) => n + r.points.length / 2, 0);
  const holes = rings.filter((r) => r.hole).length;
  $("polygon-count").textContent =
    `${vertices} vertices · ${rings.length - holes} part(s) · ${holes} hole(s)`;
}

/**
 * The vertex nearest to stage point (sx, sy) within HIT_PX, or null.
 * @param {number} sx
 * @param {number} sy
 */
function vertexAt(sx, sy) {
  let best = null;
  let bestD = HIT_PX;
  state.polygon?.rings.forEach((ring, r) => {
    for (let k = 0; k < ring.points.length / 2; k++) {
      const [vx, vy] = state.view.imageToScreen(ring.points[2 * k], ring.points[2 * k + 1]);
      const d = Math.hypot(vx - sx, vy - sy);
      if (d <= bestD) [best, bestD] = [{ ring: r, k }, d];
    }
  });
  return /** @type {{ring: number, k: number} | null} */ (best);
}

/**
 * A press while polygons are open: left on a vertex starts a drag, right on a vertex deletes it
 * (a ring keeps at least 3; a ring of 3 goes, unless it is the last outer ring).
 * @param {number} button
 * @param {number} sx
 * @param {number} sy
 * @returns {boolean} the press was taken
 */
export function polygonPress(button, sx, sy) {
  const edit = /** @type {PolygonEdit} */ (state.polygon);
  const hit = vertexAt(sx, sy);
  if (!hit) return false;
  if (button === 0) {
    edit.drag = hit;
    return true;
  }
  if (button !== 2) return false;
  const ring = edit.rings[hit.ring];
  if (ring.points.length > 6) ring.points.splice(2 * hit.k, 2);
  else if (ring.hole || edit.rings.filter((r) => !r.hole).length > 1)
    edit.rings.splice(hit.ring, 1);
  else showError("the last part keeps at least 3 vertices (Esc leaves the mask as it was)");
  edit.changed = true;
  showCount();
  invalidate("object");
  return true;
}

/** The pointer moved to (sx, sy): a dragged vertex follows (cut to the image). */
export function polygonMove(/** @type {number} */ sx, /** @type {number} */ sy) {
  const edit = state.polygon;
  if (!edit?.drag || !state.image) return false;
  const [x, y] = state.view.screenToImage(sx, sy);
  const points = edit.rings[edit.drag.ring].points;
  points[2 * edit.drag.k] = Math.min(state.image.width, Math.max(0, Math.round(x * 2) / 2));
  points[2 * edit.drag.k + 1] = Math.min(state.image.height, Math.max(0, Math.round(y * 2) / 2));
  edit.changed = true;
  invalidate("object");
  return true;
}

export function polygonRelease() {
  if (!state.polygon?.drag) return false;
  state.polygon.drag = null;
  return true;
}

/** A double-click near an edge inserts a vertex there (image frame, to half pixels). */
export function polygonDoubleClick(/** @type {number} */ sx, /** @type {number} */ sy) {
  const edit = state.polygon;
  if (!edit) return;
  let best = null;
  let bestD = EDGE_PX;
  edit.rings.forEach((ring, r) => {
    const n = ring.points.length / 2;
    for (let k = 0; k < n; k++) {
      const [ax, ay] = state.view.imageToScreen(ring.points[2 * k], ring.points[2 * k + 1]);
      const j = (k + 1) % n;
      const [bx, by] = state.view.imageToScreen(ring.points[2 * j], ring.points[2 * j + 1]);
      const len2 = (bx - ax) ** 2 + (by - ay) ** 2 || 1;
      const t = Math.max(0, Math.min(1, ((sx - ax) * (bx - ax) + (sy - ay) * (by - ay)) / len2));
      const d = Math.hypot(ax + t * (bx - ax) - sx, ay + t * (by - ay) - sy);
      if (d <= bestD) [best, bestD] = [{ ring: r, k: k + 1 }, d];
    }
  });
  if (!best) return;
  const { ring, k } = /** @type {{ring: number, k: number}} */ (best);
  const [x, y] = state.view.screenToImage(sx, sy);
  edit.rings[ring].points.splice(2 * k, 0, Math.round(x * 2) / 2, Math.round(y * 2) / 2);
  edit.changed = true;
  showCount();
  invalidate("object");
}

/**
 * Draw the open polygons over the picture (image frame): the parts filled (holes cut, even-odd),
 * outlines white on black, vertices as small squares (screen size; a hole's are yellow).
 * @param {CanvasRenderingContext2D} ctx with the image transform set
 * @param {string} color the category's "#rrggbb"
 */
export function drawPolygons(ctx, color) {
  const edit = state.polygon;
  if (!edit) return;
  const path = new Path2D();
  for (const ring of edit.rings) {
    path.moveTo(ring.points[0], ring.points[1]);
    for (let k = 2; k < ring.points.length; k += 2) path.lineTo(ring.points[k], ring.points[k + 1]);
    path.closePath();
  }
  ctx.fillStyle = color;
  ctx.globalAlpha = 0.35;
  ctx.fill(path, "evenodd");
  ctx.globalAlpha = 1;
  const px = 1 / state.view.scale; // one screen pixel in image pixels
  ctx.lineWidth = 3 * px;
  ctx.strokeStyle = "#000";
  ctx.stroke(path);
  ctx.lineWidth = 1.5 * px;
  ctx.strokeStyle = "#fff";
  ctx.stroke(path);
  for (const ring of edit.rings) {
    ctx.fillStyle = ring.hole ? "#ffd54a" : "#fff";
    for (let k = 0; k < ring.points.length; k += 2)
      ctx.fillRect(ring.points[k] - 3 * px, ring.points[k + 1] - 3 * px, 6 * px, 6 * px);
  }
}
