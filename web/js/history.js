// Undo/redo of the prompts of the object being annotated. A state is one prompt step,
// {prompt: {points, box}, maskFrom, resultId, candidate, iou, done} in app.js. Its prompt never
// changes; the page writes the decoder's answer (resultId, iou, done) into the state object
// when it arrives, and candidate when the person picks another mask, so undo/redo return to
// a step as it was last shown. This class only keeps the list and the position in it.

/**
 * One prompt step. `maskFrom`: the mask fed back with the prompt (worker-protocol.js's MaskInput);
 * `seed`: a proposal's stored grid point run again when it is refined (no person's prompt).
 * @typedef {object} PromptStep
 * @property {import('./worker-protocol.js').Prompt} prompt
 * @property {import('./worker-protocol.js').MaskInput} maskFrom
 * @property {number | null} resultId
 * @property {number | null} candidate
 * @property {number[] | null} iou
 * @property {boolean} done
 * @property {number} [autoCandidate] the candidate the decoder picked
 * @property {boolean} [seed]
 * @property {number} [seedCandidate]
 * @property {import('./strokes.js').Stroke[]} [strokes] brush / eraser strokes on top of the
 *   decoder's mask, in order (a stroke step copies its predecessor and adds one; a prompt step
 *   carries them over, so a click never drops a painted fix)
 * @property {Edit[]} [edits] every hand edit of the object so far, in order: its strokes and
 *   clean-ups (a clean-up bakes the strokes before it into a kept mask); saved as provenance
 */
/** @typedef {import('./strokes.js').Stroke | {mode: import('./components.js').CleanupOp, min_px: number}} Edit */

/**
 * A prompt step not decoded yet, after step `before`: it carries `before`'s strokes and edits, so
 * a click never drops a painted fix.
 * @param {import('./worker-protocol.js').Prompt} prompt
 * @param {import('./worker-protocol.js').MaskInput} maskFrom
 * @param {PromptStep | null} before
 * @returns {PromptStep}
 */
export function newStep(prompt, maskFrom, before) {
  return {
    prompt,
    maskFrom,
    resultId: null,
    candidate: null,
    iou: null,
    done: false,
    strokes: before?.strokes,
    edits: before?.edits,
  };
}

export class PromptHistory {
  constructor() {
    /** @type {PromptStep[]} */
    this.states = [];
    this.index = -1;
  }

  clear() {
    this.states = [];
    this.index = -1;
  }

  get current() {
    return this.index >= 0 ? this.states[this.index] : null;
  }

  /** Add a state after the current one; redo states beyond it are dropped. */
  push(/** @type {PromptStep} */ state) {
    this.states = this.states.slice(0, this.index + 1);
    this.states.push(state);
    this.index = this.states.length - 1;
    return state;
  }

  /** Put another state object in the current state's place (push when there is none). */
  replace(/** @type {PromptStep} */ state) {
    if (this.index < 0) return this.push(state);
    this.states[this.index] = state;
    return state;
  }

  get canUndo() {
    return this.index >= 0;
  }

  get canRedo() {
    return this.index < this.states.length - 1;
  }

  /** Step back; returns the new current state (null: the empty object). */
  undo() {
    if (this.canUndo) this.index--;
    return this.current;
  }

  redo() {
    if (this.canRedo) this.index++;
    return this.current;
  }
}
