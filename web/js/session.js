// The object being annotated: prompt -> decode -> mask candidates. Each prompt step is a
// history entry {prompt, maskFrom, resultId, candidate, iou, done}; the worker keeps the decoder's
// results by resultId, so undo/redo, a candidate switch or a zoom only render again.
import { requestDecode } from "./decode-request.js";
import { decoder } from "./decoder.js";
import { takeGuess } from "./guess.js";
import { newStep } from "./history.js";
import { isAmbiguous } from "./prompts.js";
import { categoryColor } from "./selectors.js";
import { currentRegion } from "./stage.js";
import { errorText, setStatus, showError, stageMessage } from "./status.js";
import { reportMask } from "./status-line.js";
import { flush, invalidate, mark, state, tracked } from "./store.js";

/** @typedef {import('./history.js').PromptStep} PromptStep */
/** @typedef {import('./worker-protocol.js').MaskInput} MaskInput */
/** @typedef {import('./worker-protocol.js').Region} Region */
/** @typedef {import('./worker-protocol.js').DecodeReply} DecodeReply */

const LATENCIES_KEPT = 1000; // prompt -> mask timings kept for the status line's readers (tests, bench)

/** Work on a new object starts now (its seconds are saved with it). */
export function startObjectClock() {
  state.since = performance.now();
  state.hiddenMs = 0;
}

/**
 * What a prompt step added now feeds back to the decoder (`refine`): the current step's mask, or
 * the re-opened mask's logits; candidate null means the one the worker picked for that step.
 * @param {boolean} refine
 * @returns {MaskInput}
 */
export function maskFromNow(refine) {
  const prev = state.history.current;
  if (refine && prev?.resultId) {
    const picked = prev.candidate === prev.autoCandidate ? null : prev.candidate;
    return { resultId: prev.resultId, candidate: picked };
  }
  if (refine && state.editing)
    return { lowRes: /** @type {Float32Array} */ (state.editing.lowRes) };
  return null;
}

/**
 * Add a prompt step and decode it, or take the decode already started for it (a press or the
 * pointer resting there: guess.js). `refine`: feed the previous step's mask (or the re-opened
 * mask's logits) back to the decoder. `t0`: when the person acted (for the latency).
 * @param {import('./worker-protocol.js').Prompt} prompt
 * @param {{refine: boolean}} options
 * @param {number} t0
 */
export function addPrompt(prompt, { refine }, t0) {
  const maskFrom = maskFromNow(refine);
  const guessed = takeGuess(prompt, maskFrom);
  const entry = guessed?.entry ?? newStep(prompt, maskFrom, state.history.current);
  if (state.history.states.length === 0 && !state.editing && state.clicks === 0) startObjectClock();
  mark("first click");
  state.history.push(entry);
  state.clicks++;
  // A press's decode is running on every core: drawing the new point now would take CPU from it
  // (a frame of the page), so the point is drawn with its mask, a few tens of ms later.
  if (!guessed || guessed.settled) invalidate("object");
  const pending = guessed?.pending ?? requestDecode(entry);
  return tracked(showDecoded(entry, pending, t0, guessed?.kind ?? null));
}

/**
 * A brush or eraser stroke on the current mask: a new step with the same decoder result and the
 * stroke added on top (undo takes it off again; the worker draws it at the view's resolution).
 * On a re-opened mask not yet refined, the stored mask itself becomes the result painted on.
 * @param {import('./strokes.js').Stroke} stroke image frame
 */
export async function addStroke(stroke) {
  let current = state.history.current;
  if ((!current?.done || current.resultId == null) && state.editing) current = await adoptEdited();
  if (!current?.done || current.resultId == null) return;
  state.history.push({
    ...current,
    strokes: [...(current.strokes ?? []), stroke],
    edits: [...(current.edits ?? []), stroke],
  });
  invalidate("object");
  await tracked(showState(state.history.current));
}

/**
 * The re-opened (edited) mask as it is stored, kept by the worker as a decoder result: the step
 * a first stroke on it paints over (its prompts start empty; a click refines the painted mask).
 * @returns {Promise<PromptStep | null>}
 */
export async function adoptEdited() {
  const editing = /** @type {NonNullable<typeof state.editing>} */ (state.editing);
  const image = state.image;
  const resultId = decoder.reserveId();
  try {
    await decoder.request("adoptMask", {
      resultId,
      imageId: /** @type {number} */ (image?.id),
      rle: editing.annotation.segmentation,
    });
  } catch (err) {
    showError(`cannot paint on mask #${editing.annotation.id}: ${errorText(err)}`);
    return null;
  }
  if (state.image !== image || state.editing !== editing) return null;
  /** @type {PromptStep} */
  const step = {
    prompt: { points: [], box: null },
    maskFrom: null,
    resultId,
    candidate: 0,
    autoCandidate: 0,
    iou: [1],
    done: true,
  };
  return state.history.push(step);
}

/**
 * Run the decoder for a history entry and show its mask. `matchRle`: see requestDecode.
 * Resolves to the worker's reply (null when the decoder failed).
 * @param {PromptStep} entry
 * @param {number} t0
 * @param {import('./worker-protocol.js').Rle | null} [matchRle]
 */
export function decodeEntry(entry, t0, matchRle = null) {
  return showDecoded(entry, requestDecode(entry, matchRle), t0, null);
}

/**
 * Show the mask of a decode sent for `entry` once it comes (if the entry is still current).
 * `guess`: "press" or "hover" when the decode was started before the prompt was made.
 * @param {PromptStep} entry
 * @param {Promise<DecodeReply & {server?: boolean}>} pending
 * @param {number} t0
 * @param {string | null} guess
 * @returns {Promise<DecodeReply | null>}
 */
async function showDecoded(entry, pending, t0, guess) {
  const signal = state.opened.signal;
  let reply;
  try {
    reply = await pending;
  } catch (err) {
    entry.resultId = null;
    if (!signal.aborted) showError(`the decoder failed: ${errorText(err)}`);
    invalidate("object"); // the point, not drawn while its decode ran
    return null;
  }
  entry.iou = reply.iou;
  entry.autoCandidate = reply.candidate;
  entry.candidate ??= reply.candidate;
  entry.done = true;
  if (signal.aborted || state.history.current !== entry) {
    if (reply.bitmap !== state.preview?.bitmap) reply.bitmap?.close();
    return reply;
  }
  if (reply.bitmap === state.preview?.bitmap) state.preview = null; // the preview becomes the mask
  setMask(reply.bitmap, reply.region, entry);
  invalidate("object");
  flush(); // the latency counts until the mask is drawn
  if (reply.server && entry.strokes?.length) refreshMask(); // the server drew it without the strokes
  if (!entry.seed) recordLatency(t0, reply, guess); // a seed is no person's prompt
  invalidate("candidates");
  if (!sameRegion(reply.region, currentRegion())) refreshMask(); // the view changed meanwhile
  return reply;
}

/** @param {Region | null} a @param {Region | null} b */
function sameRegion(a, b) {
  return /** @type {(keyof Region)[]} */ (["x0", "y0", "x1", "y1", "outW", "outH"]).every(
    (k) => a?.[k] === b?.[k],
  );
}

/**
 * The mask the object layer shows (a bitmap of `region`, for history entry `entry`), or none.
 * @param {ImageBitmap | null} bitmap
 * @param {Region | null} [region]
 * @param {PromptStep} [entry]
 */
export function setMask(bitmap, region, entry) {
  state.mask?.bitmap?.close();
  state.mask = bitmap
    ? { bitmap, region: region ?? null, state: /** @type {PromptStep} */ (entry) }
    : null;
}

/**
 * @param {number} t0
 * @param {{decodeMs: number, renderMs: number, server?: boolean}} reply
 * @param {string | null} guess
 */
function recordLatency(t0, { decodeMs, renderMs, server = false }, guess) {
  const total = performance.now() - t0;
  /** @type {(typeof state.latencies)[number]} */
  const entry = { total, decode: decodeMs, render: renderMs, frame: null, guess, server };
  state.latencies.push(entry);
  if (state.latencies.length > LATENCIES_KEPT)
    state.latencies.splice(0, state.latencies.length - LATENCIES_KEPT);
  state.latencyCount++;
  requestAnimationFrame(() => {
    entry.frame = performance.now() - t0; // the frame that shows the mask is being produced
  });
  if (state.firstMaskMs == null && state.openedAt != null)
    state.firstMaskMs = performance.now() - state.openedAt;
  state.firstMaskAt ??= performance.now(); // since the page's navigation started
  mark("first mask");
  setStatus(
    "st-latency",
    `prompt → mask ${Math.round(total)} ms (decoder ${Math.round(decodeMs)})`,
    total <= 50 ? "ok" : total <= 150 ? "warn" : "bad",
  );
  reportMask(total);
}

/**
 * Draw a history entry's mask (after undo/redo, a candidate switch, a zoom).
 * @param {PromptStep | null} entry
 */
export async function showState(entry) {
  if (!entry?.resultId || !entry.done) {
    setMask(null);
    invalidate("object");
    invalidate("candidates");
    return;
  }
  const region = currentRegion();
  const signal = state.opened.signal;
  try {
    const reply = await decoder.request("render", {
      resultId: entry.resultId,
      candidate: /** @type {number} */ (entry.candidate), // set once it is done
      region,
      color: categoryColor(),
      strokes: entry.strokes,
    });
    if (signal.aborted || state.history.current !== entry) {
      reply.bitmap.close();
      return;
    }
    setMask(reply.bitmap, reply.region, entry);
  } catch {
    // The worker no longer keeps that result: run the decoder again for these prompts.
    entry.done = false;
    entry.maskFrom = null;
    await decodeEntry(entry, performance.now());
    return;
  }
  invalidate("object");
  invalidate("candidates");
}

/** Draw the current mask again (at the view's new resolution, in the category's new colour). */
export function refreshMask() {
  const current = state.history.current;
  if (current?.resultId && current.done) tracked(showState(current));
}

export function undo() {
  if (!state.history.canUndo) return;
  tracked(showState(state.history.undo()));
  invalidate("object");
}

export function redo() {
  if (!state.history.canRedo) return;
  tracked(showState(state.history.redo()));
  invalidate("object");
}

/** Drop the current object's prompts (and leave a re-opened mask as it was). */
export function clearObject() {
  stageMessage("");
  state.history.clear();
  setMask(null);
  state.clicks = 0;
  if (state.editing) {
    state.editing = null;
    invalidate("annotations");
    invalidate("masks");
  }
  invalidate("candidates");
  invalidate("object");
}

export function pickCandidate(/** @type {number} */ index) {
  const current = state.history.current;
  if (!current?.done || !isAmbiguous(current.prompt) || current.candidate === index) return;
  current.candidate = index;
  invalidate("candidates");
  tracked(showState(current));
}

/** Pick the candidate `n` places on (Tab: 1, Shift+Tab: -1), round the three. */
export function cycleCandidate(/** @type {number} */ n) {
  const current = state.history.current;
  if (!current?.done || !isAmbiguous(current.prompt)) return;
  const order = state.manifest.mask_candidates.multimask_indices;
  const k = order.indexOf(/** @type {number} */ (current.candidate));
  pickCandidate(order[(k + n + order.length) % order.length]);
}

/** Pick the candidate of key `n` (1..3). */
export function pickCandidateKey(/** @type {number} */ n) {
  pickCandidate(state.manifest.mask_candidates.multimask_indices[n - 1]);
}
