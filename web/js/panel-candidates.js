// The mask candidate buttons in the bar above the stage (after one click SAM gives three
// masks), so that they never cover the picture: DOM only.
import { isAmbiguous } from "./prompts.js";
import { $ } from "./status.js";
import { state } from "./store.js";

const on = { pick: (/** @type {number} */ index) => {} };

export function connectCandidatePanel(/** @type {Partial<typeof on>} */ handlers) {
  Object.assign(on, handlers);
}

/** Show the current prompt's candidates as "1 2 3" with their predicted quality, or hide them. */
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
    const pct = Math.round(iou[index] * 100);
    const key = document.createElement("b");
    key.textContent = String(k + 1);
    const quality = document.createElement("small");
    quality.textContent = `${pct}%`;
    b.append(key, " ", quality);
    b.className = index === current.candidate ? "current" : "";
    b.setAttribute("aria-pressed", String(index === current.candidate));
    b.title =
      `mask ${k + 1} of 3 (key ${k + 1}, Tab cycles): the model expects it to match the object ` +
      `by ${pct}% (its predicted IoU, ${iou[index].toFixed(3)}); one click is ambiguous, so ` +
      `SAM offers a part, the object and a larger whole`;
    b.onclick = () => on.pick(index);
    box.append(b);
  });
}

export function candidatesShown() {
  return !$("candidates").hidden;
}
