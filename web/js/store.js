// The page's scene store: one `state` object that the modules read and change, and the redraw
// schedule. A module that changes what a canvas layer or a side panel shows calls
// `invalidate(name)`; it is drawn once, at the end of the current task (before the browser paints
// the frame), however many changes asked for it. Modules change state and mark; only the
// painters (registered by app.js) touch the canvases and the panels' DOM.
import { PromptHistory } from "./history.js";
import { View } from "./view.js";

/** @typedef {import('./worker-protocol.js').Manifest} Manifest */
/** @typedef {import('./worker-protocol.js').Region} Region */
/** @typedef {import('./worker-protocol.js').InitReply} InitReply */
/**
 * GET /api/model: the decoder manifest and where to fetch things (server/static.py).
 * @typedef {Manifest & {model_version: string, decoders: Record<string, {url: string}>, decoder_url?: string | null, ort_url?: string, category_palette: string[], prefix?: {prefix: {url: string}, prompt: {url: string, inputs: string[], optimized?: boolean}}} & Record<string, any>} PageManifest
 */
/**
 * An image as GET /api/images lists it (the fields the page reads; the server sends more).
 * @typedef {{id: number, file_name: string, width: number, height: number, status: string, error?: string | null, num_annotations: number, embedding_ready?: boolean, review?: string | null} & Record<string, any>} ImageRecord
 */
/**
 * An annotation (or proposal) as the API sends it.
 * @typedef {{id: number, category_id: number | null, segmentation: import('./worker-protocol.js').Rle, status: string, area: number, predicted_iou?: number | null} & Record<string, any>} AnnotationRecord
 */
/** @typedef {{id: number, name: string, color: string, num_annotations?: number}} CategoryRecord */
/** @typedef {{name: string, role: string, held: number | null, reviewing: boolean, left: boolean}} Team */
/** @typedef {{bitmap: ImageBitmap | null, box: number[]}} Drawn */

export const state = {
  /** @type {PageManifest} loaded before anything else runs (app.js: start) */
  manifest: /** @type {any} */ (null),
  /** @type {string | null} */
  decoderPrecision: null,
  decoderReady: false,
  /** @type {InitReply | null} */
  decoderInfo: null,
  /** @type {ImageRecord[]} */
  images: [],
  imageIndex: -1,
  /** @type {ImageRecord | null} the current image's API record */
  image: null,
  /** @type {ImageBitmap | null} its picture (a large image's: the pyramid's overview) */
  picture: null,
  /** @type {import('./pyramid.js').TilePyramid | null} a large image's tiles (pyramid.js) */
  pyramid: null,
  // Aborted when another image is opened: answers for an image that is no longer open are dropped.
  opened: new AbortController(),
  /** @type {CategoryRecord[]} */
  categories: [],
  /** @type {number | null} */
  categoryId: null,
  /** @type {AnnotationRecord[]} */
  annotations: [],
  /** @type {Map<number, Drawn>} annotation id -> its bitmap */
  drawn: new Map(),
  /** @type {Set<number>} */
  hidden: new Set(),
  /** @type {number | null} */
  highlightId: null,
  showAnnotations: true,
  showProposals: true,
  /** @type {number | null} the proposal that A / X / R act on (J / K move it) */
  proposalCursor: null,
  /** @type {ImageRecord | null} the image the server generates proposals for, while it does */
  proposing: null,
  showUncovered: false,
  /** @type {{bitmap: ImageBitmap} | null} the current image's area in no accepted mask */
  uncovered: null,
  uncoveredSeq: 0,
  view: new View(),
  viewFitted: false,
  history: new PromptHistory(),
  /** @type {{bitmap: ImageBitmap, region: Region | null, state: import('./history.js').PromptStep} | null} what the object layer shows */
  mask: null,
  /** @type {{bitmap: ImageBitmap | null, region: Region | null, point: number[]} | null} the hover preview, drawn faintly while no object is in progress */
  preview: null,
  hoverPreview: false, // the hover preview toggle (guess.js)
  pressGuess: true, // decode at pointerdown (guess.js); ?guess=0 turns it off, to compare
  // Decodes started before the prompt was made (guess.js), per kind: started, used by the
  // prompt then made, dropped (another prompt came; cancelled in the worker if not yet run),
  // skipped (hover: a resting point replaced by a later one before its decode could start).
  guesses: {
    press: { started: 0, used: 0, dropped: 0 },
    hover: { started: 0, used: 0, dropped: 0, skipped: 0 },
  },
  /** @type {Map<number, {history: PromptHistory, clicks: number, since: number}>} imageId -> unaccepted object */
  drafts: new Map(),
  clicks: 0,
  since: performance.now(), // when work on the current object started
  hiddenMs: 0, // time the tab was hidden since then (not counted as work)
  /** @type {number | null} */
  hiddenSince: null,
  /** @type {{annotation: AnnotationRecord, lowRes: Float32Array | null, proposal?: boolean} | null} while a stored mask is re-opened (refined) */
  editing: null,
  /** @type {"prompt" | "brush" | "erase"} what a left press does: prompt, or paint / erase the mask (brush.js) */
  tool: "prompt",
  brushPx: 12, // the brush's radius in CSS pixels of the screen ([ and ] change it)
  /** @type {import('./polygon-edit.js').PolygonEdit | null} an accepted mask open as polygons */
  polygon: null,
  /** @type {import('./strokes.js').Stroke | null} the stroke being drawn (image frame) */
  stroke: null,
  /** @type {number[] | null} the pointer on the stage, CSS pixels (the brush's ring) */
  pointer: null,
  /** @type {any} pointer press in progress (input.js) */
  press: null,
  /** @type {any} */
  pan: null,
  spaceDown: false,
  busy: 0,
  saving: false,
  /** @type {{total: number, decode: number, render: number, frame: number | null, guess: string | null, server: boolean}[]} per prompt, ms: the last LATENCIES_KEPT */
  latencies: [],
  latencyCount: 0, // prompts timed since the page opened
  /** @type {{from: string, to: string, at: number}[]} model versions the page switched to without a reload */
  versionSwitches: [],
  /** @type {number | null} opening the current image -> its first mask drawn */
  firstMaskMs: null,
  /** @type {number | null} */
  firstMaskAt: null,
  /** @type {number | null} */
  openedAt: null,
  // Accounts on (team.js): {name, role, held: the image this page holds a lease on (or null),
  // reviewing: it was taken for review, left: the server had no image left to hand out}.
  /** @type {Team | null} */
  team: null,
  /** @type {{imageId: number, ms: number, warmMs: number, tierUpMs: number[], aheadMs: number | null} | null} the decoder's per-image prefix (and warm-up / tier-up runs) done */
  prepared: null,
  /** @type {Record<string, number>} when each step of the page's start first happened: name -> ms since navigation */
  timeline: {},
};

/** @type {Map<string, (() => void)[]>} */
const markWaiters = new Map();

/** Note when a step of the page's start first happened (the cold page's breakdown). */
export function mark(/** @type {string} */ name) {
  state.timeline[name] ??= performance.now();
  for (const resolve of markWaiters.get(name) ?? []) resolve();
  markWaiters.delete(name);
}

/** Resolves once step `name` has been marked (at once if it was). */
export function marked(/** @type {string} */ name) {
  if (name in state.timeline) return Promise.resolve();
  return /** @type {Promise<void>} */ (
    new Promise((resolve) =>
      markWaiters.set(name, [...(markWaiters.get(name) ?? []), () => resolve()]),
    )
  );
}

// ------------------------------------------------------------------------------------- redraws
/** @typedef {"image" | "masks" | "object"} Layer */
/** @typedef {"images" | "team" | "categories" | "currentCategory" | "annotations" | "proposalCursor" | "candidates" | "stageBar"} Panel */

/**
 * The canvas layers, bottom to top: "image" and "masks" change rarely, "object" on every prompt.
 * @type {Layer[]}
 */
export const LAYERS = ["image", "masks", "object"];
/**
 * The side panels, painted after the layers: the image list, the team bar and review list, the
 * categories (rebuilt, or only the current one marked: a rebuild would break a rename under way),
 * the masks and proposals lists (or only the proposal cursor moved), the candidate buttons, the
 * bar above the stage (undo / redo, zoom, previous / next).
 * @type {Panel[]}
 */
export const PANELS = [
  "images",
  "team",
  "categories",
  "currentCategory",
  "annotations",
  "proposalCursor",
  "candidates",
  "stageBar",
];
const ORDER = [...LAYERS, ...PANELS];
/** @type {Partial<Record<Layer | Panel, () => void>>} */
const painters = {};
/** @type {Set<Layer | Panel>} */
const dirty = new Set();
let scheduled = false;

/** Register the function that draws a layer or a panel from `state`. */
export function setPainter(/** @type {Layer | Panel} */ layer, /** @type {() => void} */ paint) {
  painters[layer] = paint;
}

/** Ask for layers or panels to be redrawn (all layers without arguments) once the current task ends. */
export function invalidate(/** @type {(Layer | Panel)[]} */ ...layers) {
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
/** @type {((value?: unknown) => void)[]} */
let idleWaiters = [];

/**
 * Count `promise` as work in progress until it settles (the test hook's `idle` waits for none).
 * @template T
 * @param {Promise<T>} promise
 * @returns {Promise<T>}
 */
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

/** The open image's record (for code that runs only while one is open). */
export function openedImage() {
  if (!state.image) throw new Error("no image is open");
  return state.image;
}

/** The signal of the image open now: aborted as soon as another one is opened. */
export function openedSignal() {
  return state.opened.signal;
}
