// The layer that changes on every prompt and pointer move: the current object's mask (or the
// re-opened mask until a prompt replaces it), its points and box, the rubber band of a drag, and
// the hover preview (faint) while no object is in progress.
import { LABEL, normalizeBox } from "./prompts.js";
import { canvases, clear, withImageTransform, withScreenTransform } from "./stage.js";
import { categoryColor } from "./selectors.js";
import { traceStroke } from "./strokes.js";
import { drawPolygons } from "./polygon-edit.js";
import { state } from "./store.js";

const PREVIEW_ALPHA = 0.45; // the hover preview is what a click would give, not a mask yet

export function drawObjectLayer() {
  const ctx = canvases.object.getContext("2d");
  clear(ctx);
  if (!state.image) return;
  const current = state.history.current;
  ctx.imageSmoothingEnabled = false;
  withImageTransform(ctx);
  const shown = state.mask;
  if (shown?.region && current && sameResult(shown.state, current)) {
    const { x0, y0, x1, y1 } = shown.region;
    ctx.drawImage(shown.bitmap, x0, y0, x1 - x0, y1 - y0);
    // Strokes not yet in the drawn mask (the worker is drawing them).
    const drawnStrokes = shown.state.strokes?.length ?? 0;
    for (const stroke of current.strokes?.slice(drawnStrokes) ?? []) paintStroke(ctx, stroke);
  } else if (state.editing && (!current || !current.resultId)) {
    const drawn = state.drawn.get(state.editing.annotation.id);
    if (drawn?.bitmap) ctx.drawImage(drawn.bitmap, ...drawn.box);
  } else if (state.preview?.region && state.preview.bitmap && !current && !state.press?.moved) {
    const { x0, y0, x1, y1 } = state.preview.region;
    ctx.globalAlpha = PREVIEW_ALPHA;
    ctx.drawImage(state.preview.bitmap, x0, y0, x1 - x0, y1 - y0);
    ctx.globalAlpha = 1;
  }
  if (state.stroke) paintStroke(ctx, state.stroke); // the stroke being drawn
  if (state.polygon) {
    const id = state.polygon.annotation.category_id;
    drawPolygons(ctx, state.categories.find((c) => c.id === id)?.color ?? "#888888");
  }
  withScreenTransform(ctx);
  const prompt = current?.prompt;
  if (prompt?.box) drawBox(ctx, prompt.box, false);
  if (state.press?.moved) {
    const [ax, ay] = state.view.screenToImage(state.press.sx, state.press.sy);
    const [bx, by] = state.view.screenToImage(state.press.lastX, state.press.lastY);
    drawBox(ctx, normalizeBox(ax, ay, bx, by), true);
  }
  if (state.tool !== "prompt" && state.pointer) drawBrushRing(ctx, state.pointer);
  for (const p of prompt?.points ?? []) {
    const [sx, sy] = state.view.imageToScreen(p.x, p.y);
    ctx.beginPath();
    ctx.arc(sx, sy, 5, 0, 2 * Math.PI);
    ctx.fillStyle = p.label === LABEL.foreground ? "#2ecc71" : "#ff4d4d";
    ctx.fill();
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = "#fff";
    ctx.stroke();
  }
}

/** A box in image pixels, drawn in screen pixels (dashed while it is being dragged). */
function drawBox(
  /** @type {CanvasRenderingContext2D} */ ctx,
  /** @type {import('./worker-protocol.js').Box} */ box,
  /** @type {boolean} */ rubber,
) {
  const [ax, ay] = state.view.imageToScreen(box.x0, box.y0);
  const [bx, by] = state.view.imageToScreen(box.x1, box.y1);
  ctx.lineWidth = 1.5;
  ctx.setLineDash(rubber ? [5, 4] : []);
  ctx.strokeStyle = "#ffd54a";
  ctx.strokeRect(ax, ay, bx - ax, by - ay);
  ctx.setLineDash([]);
}

/**
 * The mask drawn for `shown` serves step `current`: the same step, or a brush / eraser step on
 * the same decoder result (only its strokes differ; they are painted over it meanwhile).
 * @param {import('./history.js').PromptStep} shown
 * @param {import('./history.js').PromptStep} current
 */
function sameResult(shown, current) {
  return shown === current || (current.resultId != null && shown.resultId === current.resultId);
}

/**
 * A stroke over the drawn mask, image frame: the brush in the category's colour, the eraser
 * cutting the mask's pixels away (destination-out).
 * @param {CanvasRenderingContext2D} ctx
 * @param {import('./strokes.js').Stroke} stroke
 */
function paintStroke(ctx, stroke) {
  ctx.save();
  if (stroke.mode === "erase") ctx.globalCompositeOperation = "destination-out";
  else ctx.globalAlpha = 0.5;
  ctx.fillStyle = ctx.strokeStyle = categoryColor();
  traceStroke(ctx, stroke);
  ctx.restore();
}

/** The brush's ring at the pointer (screen frame): its size on screen, whatever the zoom. */
function drawBrushRing(
  /** @type {CanvasRenderingContext2D} */ ctx,
  /** @type {number[]} */ [sx, sy],
) {
  ctx.beginPath();
  ctx.arc(sx, sy, state.brushPx, 0, 2 * Math.PI);
  ctx.lineWidth = 2.5;
  ctx.strokeStyle = "rgba(0, 0, 0, 0.7)";
  ctx.stroke();
  ctx.lineWidth = 1.2;
  ctx.setLineDash(state.tool === "erase" ? [4, 3] : []);
  ctx.strokeStyle = "#fff";
  ctx.stroke();
  ctx.setLineDash([]);
}
