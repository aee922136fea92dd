// Decodes started before the person has made the prompt, so that its mask is ready (or nearly)
// when they do. Speculative: at pointerdown the click's prompt is already known, and a press
// lasts ~100 ms. Hover preview (a toggle): when the pointer rests over the image and no object is
// in progress, decode the single click there and show its mask faintly (as SAM's demo does).
//
// A guess is used only for exactly the prompt and mask input it was made for, on the same opened
// image; any other is dropped, and cancelled in the worker if it has not run yet. There is one
// guess at a time, so at most one guessed decode is in flight, plus at most one resting point
// waiting for it (the latest: older ones are forgotten, never queued).
import { requestDecode } from "./decode-request.js";
import { newStep } from "./history.js";
import { decoder } from "./decoder.js";
import { LABEL, sameMaskFrom, samePrompt } from "./prompts.js";
import { invalidate, openedImage, state } from "./store.js";

// The pointer rests this long before a hover preview is decoded: a moving pointer reports every
// ~8-16 ms, so 50 ms still means it stopped, and a click after a short rest finds its preview
// done (a decode takes ~150-250 ms in WASM); resting points never queue (one in flight, latest waits).
const REST_MS = 50;
export const STORED_PREVIEW = "maskloop.hoverPreview"; // localStorage: the toggle

/** @typedef {import('./history.js').PromptStep} PromptStep */
/** @typedef {import('./worker-protocol.js').Prompt} Prompt */
/** @typedef {import('./worker-protocol.js').MaskInput} MaskInput */
/** @typedef {import('./worker-protocol.js').DecodeReply} DecodeReply */
/** @typedef {"press" | "hover"} GuessKind */
/**
 * A decode started for a prompt not made yet; `pending` resolves to the decoder's reply.
 * @typedef {{kind: GuessKind, entry: PromptStep, signal: AbortSignal, pending: Promise<DecodeReply>, settled: boolean, dropped: boolean, reply: DecodeReply | null}} Guess
 */
/** @type {Guess | null} */
let guess = null;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let restTimer;
/** @type {{prompt: Prompt, signal: AbortSignal} | null} the latest resting point, while a guess is in flight */
let waiting = null;

/**
 * @param {GuessKind} kind
 * @param {"started" | "used" | "dropped" | "skipped"} what
 */
function count(kind, what) {
  const counts = /** @type {Record<string, number>} */ (state.guesses[kind]);
  counts[what]++;
}

/**
 * @param {Guess} g
 * @param {Prompt} prompt
 * @param {MaskInput} maskFrom
 */
function fits(g, prompt, maskFrom) {
  return (
    !g.dropped &&
    g.signal === state.opened.signal &&
    !g.signal.aborted &&
    samePrompt(g.entry.prompt, prompt) &&
    sameMaskFrom(g.entry.maskFrom, maskFrom) &&
    g.entry.strokes === state.history.current?.strokes
  );
}

/** Whether a guessed decode (a press's or a hover preview's) is running (tile-prefetch.js waits). */
export function guessInFlight() {
  return !!guess && !guess.settled;
}

/** Close a guessed mask's bitmap unless the preview or the object layer shows it. */
function release(/** @type {DecodeReply | null | undefined} */ reply) {
  const bitmap = reply?.bitmap;
  if (bitmap && bitmap !== state.preview?.bitmap && bitmap !== state.mask?.bitmap) bitmap.close();
}

/**
 * Start decoding `prompt` (with mask input `maskFrom`, as session.maskFromNow gives it) for a
 * prompt the person may be about to make; `kind`: "press" or "hover". The guess in place is
 * kept if it is for the same prompt, else dropped.
 * @param {Prompt} prompt
 * @param {MaskInput} maskFrom
 * @param {GuessKind} kind
 * @returns {Guess}
 */
export function startGuess(prompt, maskFrom, kind) {
  if (guess && fits(guess, prompt, maskFrom)) return guess;
  dropGuess();
  const entry = newStep(prompt, maskFrom, state.history.current);
  /** @type {Guess} */
  const g = {
    kind,
    entry,
    signal: state.opened.signal,
    pending: requestDecode(entry),
    settled: false,
    dropped: false,
    reply: null,
  };
  g.pending.then(
    (reply) => {
      g.settled = true;
      g.reply = reply;
      if (g.dropped) release(reply);
    },
    () => {
      g.settled = true;
    },
  );
  guess = g;
  count(kind, "started");
  return g;
}

/** The guess for exactly this prompt, taken out of the slot (the caller shows its mask), or null. */
export function takeGuess(/** @type {Prompt} */ prompt, /** @type {MaskInput} */ maskFrom) {
  if (!guess) return null;
  const g = guess;
  if (!fits(g, prompt, maskFrom)) {
    dropGuess();
    return null;
  }
  guess = null;
  count(g.kind, "used");
  return g;
}

/** Forget the guess in place: cancel it if the worker has not run it, else free its mask. */
export function dropGuess() {
  const g = guess;
  if (!g) return;
  guess = null;
  g.dropped = true;
  count(g.kind, "dropped");
  if (g.settled) release(g.reply);
  else decoder.cancel([/** @type {number} */ (g.entry.resultId)]); // set when it was sent
}

// ----------------------------------------------------------------------------------- hover preview
function canPreview() {
  return (
    state.hoverPreview &&
    state.decoderReady &&
    !!state.image &&
    !!state.picture &&
    !state.press &&
    !state.pan &&
    !state.history.current &&
    !state.editing
  );
}

/** The pointer moved over the stage with no button down (`sx`, `sy`: stage CSS pixels). */
export function pointerMoved(/** @type {number} */ sx, /** @type {number} */ sy) {
  clearTimeout(restTimer);
  if (!state.hoverPreview) return;
  restTimer = setTimeout(() => pointerRested(sx, sy), REST_MS);
}

/** The pointer left the stage (or pressed): no preview is wanted any more. */
export function pointerGone() {
  clearTimeout(restTimer);
  if (waiting) count("hover", "skipped");
  waiting = null;
}

function pointerRested(/** @type {number} */ sx, /** @type {number} */ sy) {
  if (!canPreview()) return;
  const [x, y] = state.view.screenToImage(sx, sy);
  const image = openedImage();
  if (x < 0 || y < 0 || x >= image.width || y >= image.height) {
    clearPreview();
    return;
  }
  const prompt = { points: [{ x, y, label: LABEL.foreground }], box: null };
  if (guessInFlight()) {
    if (waiting) count("hover", "skipped"); // a later resting point replaces it
    waiting = { prompt, signal: state.opened.signal };
  } else preview(prompt);
}

function preview(/** @type {Prompt} */ prompt) {
  waiting = null;
  const [{ x, y }] = prompt.points;
  const g = startGuess(prompt, null, "hover"); // null: the mask input of an object's first click
  const next = () => {
    const w = waiting;
    if (!w || guessInFlight()) return;
    if (w.signal === state.opened.signal && canPreview()) preview(w.prompt);
    else pointerGone(); // the image or the object changed: that point is not wanted any more
  };
  g.pending.then(
    (reply) => {
      if (guess === g && canPreview()) showPreview(reply, [x, y]);
      next();
    },
    () => next(),
  );
}

function showPreview(/** @type {DecodeReply} */ reply, /** @type {number[]} */ point) {
  if (state.preview?.bitmap === reply.bitmap) return;
  clearPreview();
  state.preview = { bitmap: reply.bitmap, region: reply.region, point };
  invalidate("object");
}

/** Stop showing the preview (and free its bitmap unless it became the object's mask). */
export function clearPreview() {
  const shown = state.preview;
  if (!shown) return;
  state.preview = null;
  if (shown.bitmap !== state.mask?.bitmap) shown.bitmap?.close();
  invalidate("object");
}

/** Turn the hover preview on or off (remembered in this browser). */
export function setHoverPreview(/** @type {boolean} */ on) {
  state.hoverPreview = on;
  localStorage.setItem(STORED_PREVIEW, on ? "1" : "0");
  if (!on) {
    pointerGone();
    if (guess?.kind === "hover") dropGuess();
    clearPreview();
  }
}

/** The image is being closed: nothing guessed for it is wanted. */
export function forgetGuesses() {
  pointerGone();
  dropGuess();
  clearPreview();
}

/**
 * A press that, released where it is, adds `prompt`: start decoding it now (or keep the hover
 * guess for it). A preview of anything else stops showing.
 */
export function pressGuess(/** @type {Prompt} */ prompt, /** @type {MaskInput} */ maskFrom) {
  pointerGone();
  const g = startGuess(prompt, maskFrom, "press");
  if (state.preview && (!g.settled || g.reply?.bitmap !== state.preview.bitmap)) clearPreview();
}
