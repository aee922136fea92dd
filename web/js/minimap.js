// The minimap of a large image: the overview in a corner of the stage with the part on screen
// outlined; a click or drag there moves the view to centre that point. Also the view's key
// operations (fit, zoom steps, 1:1, minimap on/off) as the action table's ops take them.
import { fitAndRedraw, setView, stage, stageSize, zoomBy, zoomToActual } from "./stage.js";
import { state } from "./store.js";
import { View } from "./view.js";

/** The minimap's long side, in CSS pixels. */
const SIDE = 180;

/** @type {HTMLCanvasElement | null} */
let canvas = null;
let hidden = false;

/** The minimap canvas (made on first use, in the stage); pointer events stop there. */
function minimapCanvas() {
  if (canvas) return canvas;
  const c = document.createElement("canvas");
  c.id = "minimap";
  c.title = "minimap: click or drag to move the view (M hides it)";
  const stop = (/** @type {Event} */ e) => e.stopPropagation();
  for (const type of [
    "pointerup",
    "pointermove",
    "mousedown",
    "contextmenu",
    "wheel",
    "dblclick",
  ]) {
    c.addEventListener(type, stop);
  }
  c.addEventListener("pointerdown", (/** @type {PointerEvent} */ e) => {
    e.stopPropagation();
    e.preventDefault();
    c.setPointerCapture(e.pointerId);
    centreAt(e);
  });
  c.addEventListener("pointermove", (/** @type {PointerEvent} */ e) => {
    if (c.hasPointerCapture(e.pointerId)) centreAt(e);
  });
  stage.appendChild(c);
  canvas = c;
  return c;
}

/** Move the view (same zoom) so that the image point under the pointer is at the stage's centre. */
function centreAt(/** @type {PointerEvent} */ e) {
  const image = state.image;
  if (!image || !canvas) return;
  const rect = canvas.getBoundingClientRect();
  const k = image.width / rect.width; // image px per minimap CSS px
  const x = (e.clientX - rect.left) * k;
  const y = (e.clientY - rect.top) * k;
  const { width, height } = stageSize();
  const { scale } = state.view;
  setView(new View(scale, width / 2 - x * scale, height / 2 - y * scale));
}

/** Draw the minimap (shown only for a pyramid image): the overview and the view's outline. */
export function drawMinimap() {
  const image = state.image;
  const overview = state.pyramid ? state.picture : null;
  if (!overview || !image || hidden) {
    if (canvas) canvas.hidden = true;
    return;
  }
  const c = minimapCanvas();
  c.hidden = false;
  const { width, height, dpr } = stageSize();
  const k = SIDE / Math.max(image.width, image.height); // minimap CSS px per image px
  const w = Math.max(1, Math.round(image.width * k));
  const h = Math.max(1, Math.round(image.height * k));
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
    c.style.width = `${w}px`;
    c.style.height = `${h}px`;
  }
  const ctx = /** @type {CanvasRenderingContext2D} */ (c.getContext("2d"));
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.drawImage(overview, 0, 0, w, h);
  const [ax, ay] = state.view.screenToImage(0, 0);
  const [bx, by] = state.view.screenToImage(width, height);
  ctx.lineWidth = 1.5;
  ctx.strokeStyle = "#ffd400";
  ctx.strokeRect(ax * k, ay * k, (bx - ax) * k, (by - ay) * k);
}

/** Show or hide the minimap. */
export function toggleMinimap() {
  hidden = !hidden;
  drawMinimap();
}

/** The view's commands for the action table (app.js spreads them into its ops). */
export const viewOps = { fit: fitAndRedraw, zoomBy, actualSize: zoomToActual, toggleMinimap };
