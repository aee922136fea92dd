// window.maskloop: the small, explicit surface the browser tests and the benchmarks read. They
// drive the page like a person (pointer and keys) and read only what is listed here, so the
// store's inner layout can change without touching them. All of it is read-only, except that a
// test fills `latencies` (to check that it stays bounded) and `openImage` opens an image.
import { imageToClient } from "./stage.js";
import { idle, state } from "./store.js";
import { openImage } from "./sync.js";
import { decoder } from "./decoder.js";
import { statusLine } from "./status-line.js";
import { askingCategory } from "./first-category.js";

/**
 * Store fields read as they are: image (API record), busy, annotations, categoryId,
 * proposalCursor, proposing, editing ({annotation, lowRes, proposal} while refining),
 * versionSwitches, decoderInfo, decoderPrecision, latencies ({total, decode, render, frame} ms,
 * guess: "press" / "hover" when the decode started before the prompt was made, server: true
 * when the server decoded it (server-decode.js); the last 1000),
 * latencyCount, guesses ({press, hover}: {started, used, dropped}), hoverPreview (the toggle), firstMaskMs, firstMaskAt, view ({scale, tx, ty}: screen = image *
 * scale + t, CSS pixels), team (accounts on: {name, role, held, reviewing, left}; else null),
 * prepared ({imageId, ms, warmMs, tierUpMs, aheadMs}: the open image's decoder prefix run when it
 * opened, the warm-up run of a fresh decoder when no click was waiting for it, the ms of each
 * tier-up run made while it opened (a fresh page's first image), and the prefix run ahead while
 * the worker was idle after a prefetch, or null), tool ("prompt", "brush" or "erase"), brushPx
 * (the brush's radius, CSS pixels), polygon ({annotation, rings: [{points, hole}], tolerance,
 * drag, changed} while an accepted mask is open as polygons, else null).
 */
const FIELDS = [
  "image",
  "busy",
  "annotations",
  "categoryId",
  "proposalCursor",
  "proposing",
  "editing",
  "versionSwitches",
  "decoderInfo",
  "decoderPrecision",
  "latencies",
  "latencyCount",
  "guesses",
  "hoverPreview",
  "firstMaskMs",
  "firstMaskAt",
  "view",
  "team",
  "prepared",
  "tool",
  "brushPx",
  "polygon",
];

export function installTestHook() {
  const hook = {
    /** The decoder is loaded, the image shown and no work is in progress. */
    get ready() {
      return state.decoderReady && !!state.picture && state.busy === 0;
    },
    /** The current prompt step {prompt, maskFrom, resultId, candidate, iou, done}, or null. */
    get current() {
      return state.history.current;
    },
    get maskShown() {
      return state.mask !== null;
    },
    /** The hover preview is drawn. */
    get previewShown() {
      return state.preview !== null && !state.history.current;
    },
    /** The image pixel [x, y] whose click the preview shows, or null. */
    get previewPoint() {
      return state.preview?.point ?? null;
    },
    get pictureShown() {
      return !!state.picture;
    },
    /** The top bar's line for people: {text, level, decoder, image, last, maskMs, slow, usualMs}. */
    get statusLine() {
      return statusLine();
    },
    /** The first accept's "Name this kind of object" prompt is open. */
    get askingCategory() {
      return askingCategory();
    },
    get modelVersion() {
      return state.manifest?.model_version ?? null;
    },
    /** Resolves when no work is in progress. */
    idle,
    /** Open image `index` of the list, as a click on it would. */
    openImage: (/** @type {number} */ index) => openImage(index),
    /**
     * When each step of the page's start first happened, the page's and the decoder worker's,
     * in ms since the navigation started: {name: ms}.
     */
    async timeline() {
      const { timeline } = await decoder.request("timeline", {});
      const worker = Object.entries(timeline).map(([k, t]) => [k, t - performance.timeOrigin]);
      return { ...state.timeline, ...Object.fromEntries(worker) };
    },
    /** Image pixel (x, y) -> client coordinates, for pointer events. */
    imageToClient,
  };
  for (const name of FIELDS)
    Object.defineProperty(hook, name, {
      get: () => state[/** @type {keyof typeof state} */ (name)],
      enumerable: true,
    });
  /** @type {any} */ (window).maskloop = hook;
}
