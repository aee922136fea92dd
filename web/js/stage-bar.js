// The bar above the picture: undo / redo, zoom out / in / fit with the zoom level, previous /
// next image (each button's tooltip names its key), and the mask candidates' place, so that
// nothing covers the picture. DOM only: the buttons call the page's operations.
import { canRedoMask, canUndoMask } from "./mask-undo.js";
import { $ } from "./status.js";
import { state } from "./store.js";
import { MAX_SCALE } from "./view.js";

/**
 * @typedef {{undo: () => unknown, redo: () => unknown, zoomBy: (f: number) => void, fit: () => void,
 *   step: (n: number) => unknown}} BarOps
 */

/** Wire the bar's buttons to the page's operations. */
export function connectStageBar(/** @type {BarOps} */ ops) {
  $("undo-button").onclick = () => ops.undo();
  $("redo-button").onclick = () => ops.redo();
  $("zoom-out").onclick = () => ops.zoomBy(0.8);
  $("zoom-in").onclick = () => ops.zoomBy(1.25);
  $("zoom-fit").onclick = () => ops.fit();
  $("prev-image").onclick = () => ops.step(-1);
  $("next-image").onclick = () => ops.step(1);
}

/** The zoom level as a person reads it: 100% is one image pixel per screen pixel. */
export function zoomText(/** @type {number} */ scale, dpr = window.devicePixelRatio || 1) {
  const pct = scale * dpr * 100;
  return pct >= 10 ? `${Math.round(pct)}%` : `${pct.toFixed(1)}%`;
}

/** Enable what can be done now; show the zoom level. */
export function renderStageBar() {
  const history = state.history;
  $("undo-button").disabled = !history.canUndo && !canUndoMask();
  $("redo-button").disabled = !history.canRedo && !canRedoMask();
  $("zoom-level").textContent = state.image ? zoomText(state.view.scale) : "–";
  $("zoom-in").disabled = state.view.scale >= MAX_SCALE;
  $("prev-image").disabled = state.imageIndex <= 0;
  $("next-image").disabled = state.imageIndex >= state.images.length - 1;
}
