// Prompts -> decoder inputs, and which candidate mask to show (cf. SAM demo's onnxModelAPI).
import { xyImageToModel } from "./frames.js";

export const LABEL = {
  background: 0,
  foreground: 1,
  boxTopLeft: 2,
  boxBottomRight: 3,
  padding: -1,
};

/** @typedef {import('./worker-protocol.js').Prompt} Prompt */
/** @typedef {import('./worker-protocol.js').Box} Box */
/** @typedef {import('./worker-protocol.js').MaskCandidates} MaskCandidates */

/**
 * A box with x0<=x1, y0<=y1 from two drag corners (image frame).
 * @param {number} ax
 * @param {number} ay
 * @param {number} bx
 * @param {number} by
 * @returns {Box}
 */
export function normalizeBox(ax, ay, bx, by) {
  return { x0: Math.min(ax, bx), y0: Math.min(ay, by), x1: Math.max(ax, bx), y1: Math.max(ay, by) };
}

/**
 * Decoder point inputs for the prompts of one object.
 * @param {Prompt} prompt image frame
 * @param {[number, number]} imageHW (H, W) of the upright image
 * @param {number} inputSize the manifest's input_size
 * @returns {{coords: Float32Array, labels: Float32Array, count: number}} coords [count,2] in the model frame
 */
export function pointInputs(prompt, imageHW, inputSize) {
  const [h, w] = imageHW;
  /** @type {[number, number][]} */
  const xy = [];
  /** @type {number[]} */
  const labels = [];
  for (const p of prompt.points) {
    xy.push(xyImageToModel(p.x, p.y, h, w, inputSize));
    labels.push(p.label);
  }
  if (prompt.box) {
    xy.push(xyImageToModel(prompt.box.x0, prompt.box.y0, h, w, inputSize));
    xy.push(xyImageToModel(prompt.box.x1, prompt.box.y1, h, w, inputSize));
    labels.push(LABEL.boxTopLeft, LABEL.boxBottomRight);
  } else {
    // SAM's decoder was trained with a padding point (0,0), label -1, whenever there is no box.
    xy.push([0, 0]);
    labels.push(LABEL.padding);
  }
  return {
    coords: Float32Array.from(xy.flat()),
    labels: Float32Array.from(labels),
    count: labels.length,
  };
}

/** Whether the prompt is one click alone: the decoder's three ambiguity candidates apply. */
export function isAmbiguous(/** @type {Prompt} */ prompt) {
  return prompt.points.length === 1 && !prompt.box;
}

/**
 * The candidate to show: the highest predicted IoU among the multimask outputs for one click,
 * else the single-mask output. `candidates` is the manifest's mask_candidates.
 * @param {ArrayLike<number>} iou
 * @param {Prompt} prompt
 * @param {MaskCandidates} candidates
 * @returns {number}
 */
export function bestCandidate(iou, prompt, candidates) {
  if (!isAmbiguous(prompt)) return candidates.single_mask_index;
  let best = candidates.multimask_indices[0];
  for (const i of candidates.multimask_indices) if (iou[i] > iou[best]) best = i;
  return best;
}

/** The prompt as stored with an annotation (JSON; image frame). */
export function promptToJson(/** @type {Prompt} */ prompt) {
  return {
    points: prompt.points.map((p) => [p.x, p.y, p.label]),
    box: prompt.box ? [prompt.box.x0, prompt.box.y0, prompt.box.x1, prompt.box.y1] : null,
  };
}

/**
 * Inverse of promptToJson; tolerant of missing parts.
 * @param {{points?: number[][], box?: number[] | null} | null | undefined} json
 * @returns {Prompt}
 */
export function promptFromJson(json) {
  const points = (json?.points ?? []).map(([x, y, label]) => ({ x, y, label }));
  const b = json?.box;
  return {
    points,
    box: Array.isArray(b) && b.length === 4 ? { x0: b[0], y0: b[1], x1: b[2], y1: b[3] } : null,
  };
}

/** Whether two prompts are the same points (in order, same labels) and box. */
export function samePrompt(/** @type {Prompt} */ a, /** @type {Prompt} */ b) {
  return JSON.stringify(promptToJson(a)) === JSON.stringify(promptToJson(b));
}

/**
 * Whether two `maskFrom`s feed the decoder the same mask: none, the same re-opened mask's logits,
 * or the same candidate of the same earlier result (candidate null: the one the worker picked).
 * @param {any} a a MaskInput
 * @param {any} b
 */
export function sameMaskFrom(a, b) {
  if (!a || !b) return !a && !b;
  if (a.lowRes || b.lowRes) return a.lowRes === b.lowRes;
  return a.resultId === b.resultId && (a.candidate ?? null) === (b.candidate ?? null);
}
