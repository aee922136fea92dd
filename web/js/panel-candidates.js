// The mask candidate buttons on the stage (after one click SAM gives three masks): DOM only.
import { isAmbiguous } from "./prompts.js";
import { $ } from "./status.js";
import { state } from "./store.js";

const on = { pick: (/** @type {number} */ index) => {} };

export function connectCandidatePanel(/** @type {Partial<typeof on>} */ handlers) {
  Object.assign(on, handlers);
}

/** Show the current prompt's candidates (with their predicted IoU), or hide the box. */
export function renderCandidates() {
  const box = $("candidates");
  const current = state.history.current;
  const iou = current?.done && isAmbiguous(current.prompt) ? current.iou : null;
  box.hidden = !iou;
  box.querySelectorAll("button").forEach((/** @type {HTMLButtonElement} */ b) => b.remove());
  if (!current || !iou) return;
  state.manifest.mask_candidates.multimask_indices.forEach((index, k) => {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.candidate = String(index);
    b.textContent = `${k + 1} · IoU ${iou[index].toFixed(2)}`;
    b.className = index === current.candidate ? "current" : "";
    b.title = `mask candidate ${k + 1} (key ${k + 1}); predicted IoU ${iou[index].toFixed(3)}`;
    b.onclick = () => on.pick(index);
    box.append(b);
  });
}

export function candidatesShown() {
  return !$("candidates").hidden;
}
