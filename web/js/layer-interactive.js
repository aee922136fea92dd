// The layer that changes on every prompt and pointer move: the current object's mask (or the
// re-opened mask until a prompt replaces it), its points and box, the rubber band of a drag, and
// the hover preview (faint) while no object is in progress.
import { LABEL, normalizeBox } from "./prompts.js";
import { canvases, clear, withImageTransform, withScreenTransform } from "./stage.js";
import { state } from "./store.js";

const PREVIEW_ALPHA = 0.45; // the hover preview is what a click would give, not a mask yet

export function drawObjectLayer() {
  const ctx = canvases.object.getContext("2d");
  clear(ctx);
  if (!state.image) return;
  const current = state.history.current;
  ctx.imageSmoothingEnabled = false;
  withImageTransform(ctx);
  if (state.mask?.region && current && state.mask.state === current) {
    const { x0, y0, x1, y1 } = state.mask.region;
    ctx.drawImage(state.mask.bitmap, x0, y0, x1 - x0, y1 - y0);
  } else if (state.editing && (!current || !current.resultId)) {
    const drawn = state.drawn.get(state.editing.annotation.id);
    if (drawn?.bitmap) ctx.drawImage(drawn.bitmap, ...drawn.box);
  } else if (state.preview?.region && state.preview.bitmap && !current && !state.press?.moved) {
    const { x0, y0, x1, y1 } = state.preview.region;
    ctx.globalAlpha = PREVIEW_ALPHA;
    ctx.drawImage(state.preview.bitmap, x0, y0, x1 - x0, y1 - y0);
    ctx.globalAlpha = 1;
  }
  withScreenTransform(ctx);
  const prompt = current?.prompt;
  if (prompt?.box) drawBox(ctx, prompt.box, false);
  if (state.press?.moved) {
    const [ax, ay] = state.view.screenToImage(state.press.sx, state.press.sy);
    const [bx, by] = state.view.screenToImage(state.press.lastX, state.press.lastY);
    drawBox(ctx, normalizeBox(ax, ay, bx, by), true);
  }
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
