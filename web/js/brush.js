// The brush and the eraser (B / E, [ / ] resize, Esc back to prompting): a left drag paints into
// or cuts out of the current mask along the pointer's path. The stroke is drawn on the object
// layer as it goes (layer-interactive.js: only a path on a canvas per frame, whatever the
// image's size); when the button is released it becomes one prompt step (session.addStroke),
// applied at full resolution by the worker wherever the mask is drawn or saved (strokes.js).
import { addStroke } from "./session.js";
import { stage } from "./stage.js";
import { showError } from "./status.js";
import { invalidate, state } from "./store.js";

const MIN_PX = 1;
const MAX_PX = 200;
const STEP_PX = 0.5; // a pointer move shorter than this (screen px) adds no point

/** Switch what a left press does: "prompt", "brush" or "erase" (the brush's tool again: prompt). */
export function setTool(/** @type {"prompt" | "brush" | "erase"} */ tool) {
  state.tool = state.tool === tool ? "prompt" : tool;
  stage.classList.toggle("brushing", state.tool !== "prompt");
  stage.dataset.tool = state.tool;
  for (const name of ["brush", "erase"])
    document
      .getElementById(`tool-${name}`)
      ?.setAttribute("aria-pressed", String(state.tool === name));
  invalidate("object");
}

/** The top bar's Brush and Eraser buttons. */
export function connectBrushButtons() {
  const brush = document.getElementById("tool-brush");
  const eraser = document.getElementById("tool-erase");
  if (brush) brush.onclick = () => setTool("brush");
  if (eraser) eraser.onclick = () => setTool("erase");
}

/** [ / ]: the brush's size (screen pixels, the same at any zoom). */
export function resizeBrush(/** @type {number} */ factor) {
  state.brushPx = Math.min(MAX_PX, Math.max(MIN_PX, Math.round(state.brushPx * factor)));
  const size = document.getElementById("brush-size");
  if (size) size.textContent = `${state.brushPx * 2} px`;
  invalidate("object");
}

/** Esc while painting: back to prompting (true), else nothing to do here (false). */
export function leaveBrush() {
  if (state.tool === "prompt") return false;
  state.stroke = null;
  setTool("prompt");
  return true;
}

/**
 * A left press with the brush or eraser at stage point (sx, sy), CSS pixels: a stroke begins
 * (false: there is no mask to edit yet, and the person is told so).
 * @param {number} sx
 * @param {number} sy
 */
export function startStroke(sx, sy) {
  const current = state.history.current;
  if ((!current?.done || current.resultId == null) && !state.editing) {
    showError(
      `the ${state.tool === "brush" ? "brush" : "eraser"} edits the current mask: click on an object first`,
    );
    return false;
  }
  const [x, y] = state.view.screenToImage(sx, sy);
  state.stroke = {
    mode: state.tool === "erase" ? "erase" : "brush",
    radius: state.brushPx / state.view.scale,
    points: [x, y],
  };
  invalidate("object");
  return true;
}

/** The pointer moved to (sx, sy) while a stroke is drawn. */
export function extendStroke(/** @type {number} */ sx, /** @type {number} */ sy) {
  const stroke = state.stroke;
  if (!stroke) return;
  const [x, y] = state.view.screenToImage(sx, sy);
  const n = stroke.points.length;
  const moved = Math.hypot(x - stroke.points[n - 2], y - stroke.points[n - 1]) * state.view.scale;
  if (moved < STEP_PX) return;
  stroke.points.push(x, y);
  invalidate("object");
}

/** The button was released: the stroke is one undo step of the current object. */
export function endStroke() {
  const stroke = state.stroke;
  state.stroke = null;
  if (stroke) addStroke(stroke);
}
