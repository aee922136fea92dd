// The page's scene store: one `state` object that the modules read and change, and the redraw
// schedule. A module that changes what a canvas layer or a side panel shows calls
// `invalidate(name)`; it is drawn once, at the end of the current task (before the browser paints
// the frame), however many changes asked for it. Modules change state and mark; only the
// painters (registered by app.js) touch the canvases and the panels' DOM.
import { PromptHistory } from "./history.js";
import { View } from "./view.js";

export const state = {
  manifest: null,
  decoderPrecision: null,
  decoderReady: false,
  decoderInfo: null,
  images: [],
  imageIndex: -1,
  image: null, // the current image's API record
  picture: null, // its ImageBitmap
  // Aborted when another image is opened: answers for an image that is no longer open are dropped.
  opened: new AbortController(),
  categories: [],
  categoryId: null,
  annotations: [],
  drawn: new Map(), // annotation id -> {bitmap, box}
  hidden: new Set(),
  highlightId: null,
  showAnnotations: true,
  showProposals: true,
  proposalCursor: null, // the proposal that A / X / R act on (J / K move it)
  proposing: null, // the image the server generates proposals for, while it does
  showUncovered: false,
  uncovered: null, // {bitmap}: the current image's area in no accepted mask
  uncoveredSeq: 0,
  view: new View(),
  viewFitted: false,
  history: new PromptHistory(),
  mask: null, // {bitmap, region, state}: what the object layer shows
  preview: null, // {bitmap, region, point}: the hover preview, drawn faintly while no object is in progress
  hoverPreview: false, // the hover preview toggle (guess.js)
  pressGuess: true, // decode at pointerdown (guess.js); ?guess=0 turns it off, to compare
  // Decodes started before the prompt was made (guess.js), per kind: started, used by the
  // prompt then made, dropped (another prompt came; cancelled in the worker if not yet run),
  // skipped (hover: a resting point replaced by a later one before its decode could start).
  guesses: {
    press: { started: 0, used: 0, dropped: 0 },
    hover: { started: 0, used: 0, dropped: 0, skipped: 0 },
  },
  drafts: new Map(), // imageId -> unaccepted object {history, clicks, since}
  clicks: 0,
  since: performance.now(), // when work on the current object started
  hiddenMs: 0, // time the tab was hidden since then (not counted as work)
  hiddenSince: null,
  editing: null, // {annotation, lowRes, proposal} while a stored mask is re-opened (refined)
  press: null, // pointer press in progress
  pan: null,
  spaceDown: false,
  busy: 0,
  saving: false,
  latencies: [], // {total, decode, render, frame} per prompt, ms: the last LATENCIES_KEPT
  latencyCount: 0, // prompts timed since the page opened
  versionSwitches: [], // {from, to, at}: model versions the page switched to without a reload
  firstMaskMs: null, // opening the current image -> its first mask drawn
  firstMaskAt: null,
  openedAt: null,
  // Accounts on (team.js): {name, role, held: the image this page holds a lease on (or null),
  // reviewing: it was taken for review, left: the server had no image left to hand out}.
  team: null,
  prepared: null, // {imageId, ms, warmMs, tierUpMs, aheadMs}: the decoder's per-image prefix (and warm-up / tier-up runs) done
  timeline: {}, // when each step of the page's start first happened: name -> ms since navigation
};

/** Note when a step of the page's start first happened (the cold page's breakdown). */
export function mark(name) {
  state.timeline[name] ??= performance.now();
}

// ------------------------------------------------------------------------------------- redraws
/** The canvas layers, bottom to top: "image" and "masks" change rarely, "object" on every prompt. */
export const LAYERS = ["image", "masks", "object"];
/**
 * The side panels, painted after the layers: the image list, the team bar and review list, the
 * categories (rebuilt, or only the current one marked: a rebuild would break a rename under way),
 * the masks and proposals lists (or only the proposal cursor moved), the candidate buttons.
 */
export const PANELS = [
  "images",
  "team",
  "categories",
  "currentCategory",
  "annotations",
  "proposalCursor",
  "candidates",
];
const ORDER = [...LAYERS, ...PANELS];
/** @type {Record<string, () => void>} */
const painters = {};
const dirty = new Set();
let scheduled = false;

/** Register the function that draws a layer or a panel from `state`. */
export function setPainter(layer, paint) {
  painters[layer] = paint;
}

/** Ask for layers or panels to be redrawn (all layers without arguments) once the current task ends. */
export function invalidate(...layers) {
  for (const layer of layers.length ? layers : LAYERS) dirty.add(layer);
  if (scheduled) return;
  scheduled = true;
  queueMicrotask(flush);
}

/** Draw what was asked for now (a prompt's latency is taken once its mask is drawn). */
export function flush() {
  scheduled = false;
  for (const layer of ORDER) {
    if (!dirty.delete(layer)) continue;
    painters[layer]?.();
  }
}

// ---------------------------------------------------------------------------------- busy / idle
let idleWaiters = [];

/** Count `promise` as work in progress until it settles (the test hook's `idle` waits for none). */
export async function tracked(promise) {
  state.busy++;
  try {
    return await promise;
  } finally {
    state.busy--;
    if (!state.busy) {
      idleWaiters.forEach((resolve) => resolve());
      idleWaiters = [];
    }
  }
}

/** Resolves when no tracked work is in progress. */
export function idle() {
  return state.busy === 0 ? Promise.resolve() : new Promise((resolve) => idleWaiters.push(resolve));
}

/** The signal of the image open now: aborted as soon as another one is opened. */
export function openedSignal() {
  return state.opened.signal;
}
