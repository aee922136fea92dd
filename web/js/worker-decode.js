// The decoder worker's prompts: one decoder run per prompt, its results kept (by request id) for
// refining, undo/redo, candidate switches and accept, and a candidate's mask drawn over a region
// of the image or encoded at full resolution.
import { bestCandidate, pointInputs } from "./prompts.js";
import {
  fullMask,
  maskToLowRes,
  rangeIndices,
  regionIndices,
  sampleIndices,
  sampleMask,
  sampleRegion,
} from "./postprocess.js";
import { paintMask, parseColor, STYLES } from "./render.js";
import { applyStrokes } from "./strokes.js";
import { cleanMask } from "./components.js";
import { decodeRle, encodeRle, rleAreaBbox } from "./rle.js";
import { layoutFor, manifest, mark, ort, remember, worker } from "./worker-context.js";
import { maskBitmap } from "./worker-masks.js";
import { embeddingEntry, imageInputs } from "./worker-prefix.js";
import { promptInRegion, sampleOnRegion } from "./tile-route.js";

/** @typedef {import('./worker-protocol.js').HW} HW */
/** @typedef {import('./worker-protocol.js').Prompt} Prompt */
/** @typedef {import('./worker-protocol.js').Region} Region */
/** @typedef {import('./worker-protocol.js').Rle} Rle */
/** @typedef {import('./worker-protocol.js').DecodeRequest} DecodeRequest */
/** @typedef {import('./worker-protocol.js').RenderRequest} RenderRequest */
/** @typedef {import('./worker-protocol.js').EncodeRequest} EncodeRequest */
/** @typedef {import('./worker-protocol.js').AdoptRequest} AdoptRequest */
/** @typedef {import('./worker-protocol.js').AdoptMaskRequest} AdoptMaskRequest */
/** @typedef {import('./worker-protocol.js').CleanRequest} CleanRequest */
/**
 * @template {import('./worker-protocol.js').RequestType} T
 * @typedef {import('./worker-protocol.js').Handled<T>} Handled
 */
/** @typedef {import('./worker-context.js').Result} Result */
/** @typedef {import('./worker-prefix.js').EmbeddingEntry} EmbeddingEntry */

const RESULTS_KEPT = 32; // decoder outputs kept for undo/redo and candidate switching (1 MiB each)
const MATCH_SIDE = 512; // a candidate is matched to a stored mask on at most 512 x 512 pixels

/** @type {Map<number, Result>} resultId (the decode request's id) -> result, least recently used first */
const results = new Map();

/** @type {Float32Array | null} the zero mask input of a prompt without one (kept: no 256 KiB per click) */
let zeros = null;
function noMask(/** @type {number} */ n) {
  if (zeros?.length !== n) zeros = new Float32Array(n);
  return zeros;
}

/**
 * One decoder run: a prompt (image frame) on an image of size `hw`, with an optional mask input
 * (one candidate's low-res logits).
 * @param {EmbeddingEntry} entry a loaded embedding (or, for the warm-up, a zero tensor)
 * @param {Prompt} prompt
 * @param {HW} hw
 * @param {Float32Array | null} maskInput
 * @returns {Promise<{lowRes: Float32Array, iou: Float32Array}>} every candidate's low-res logits and IoU
 */
export async function run(entry, prompt, hw, maskInput) {
  const Tensor = ort().Tensor;
  const session = /** @type {import('./worker-context.js').Session} */ (worker.session);
  const { coords, labels, count } = pointInputs(prompt, hw, manifest().input_size);
  const [lh, lw] = worker.lowSize;
  const feeds = {
    ...(await imageInputs(entry)),
    point_coords: new Tensor("float32", coords, [1, count, 2]),
    point_labels: new Tensor("float32", labels, [1, count]),
    mask_input: new Tensor("float32", maskInput ?? noMask(lh * lw), [1, 1, lh, lw]),
    has_mask_input: new Tensor("float32", new Float32Array([maskInput ? 1 : 0]), [1]),
  };
  const out = await session.run(feeds);
  return {
    lowRes: /** @type {Float32Array} */ (out.low_res_masks.data),
    iou: /** @type {Float32Array} */ (out.iou_predictions.data),
  };
}

/** One candidate's low-res logits (a view). */
function candidateLogits(/** @type {{lowRes: Float32Array}} */ result, /** @type {number} */ c) {
  const n = worker.lowSize[0] * worker.lowSize[1];
  return result.lowRes.subarray(c * n, (c + 1) * n);
}

/**
 * The mask of one candidate over a region of the image, with the brush and eraser strokes on
 * top, as an ImageBitmap to draw there.
 * @param {{hw: HW, lowRes: Float32Array, full?: Uint8Array, tile?: [number, number, number, number] | null}} result
 * @param {number} candidate
 * @param {Region} region
 * @param {string} color "#rrggbb"
 * @param {import('./strokes.js').Stroke[]} [strokes]
 */
export async function renderRegion(result, candidate, region, color, strokes) {
  let mask;
  if (result.full) mask = sampleStored(result.full, result.hw[1], region);
  else if (result.tile) {
    const { xs, ys } = regionIndices(region);
    mask = sampleOnRegion(candidateLogits(result, candidate), layoutFor, result.tile, xs, ys);
  } else mask = sampleRegion(candidateLogits(result, candidate), layoutFor(result.hw), region);
  applyStrokes(mask, region, strokes);
  const rgba = paintMask(mask, region.outW, region.outH, parseColor(color), STYLES.current);
  return createImageBitmap(new ImageData(rgba, region.outW, region.outH));
}

/**
 * Draw a decoder result's mask both ways a region is sampled (pixel by pixel, and subsampled:
 * a zoomed-out large image), for nobody: the drawing code's warm-up.
 */
export async function drawUnseen(/** @type {{hw: HW, lowRes: Float32Array}} */ result) {
  const { hw } = result;
  for (const out of [hw, [hw[0] / 2, hw[1] / 2]]) {
    const region = { x0: 0, y0: 0, x1: hw[1], y1: hw[0], outW: out[1], outH: out[0] };
    (await renderRegion(result, 0, region, "#ffffff")).close();
  }
}

/**
 * A stored H x W mask over a region, pixel by pixel or subsampled as sampleRegion does.
 * @param {Uint8Array} full H x W row-major
 * @param {number} width W
 * @param {Region} region
 * @returns {Uint8Array} outH x outW row-major
 */
function sampleStored(full, width, region) {
  const { xs, ys } = regionIndices(region);
  const out = new Uint8Array(xs.length * ys.length);
  for (let j = 0; j < ys.length; j++) {
    const row = ys[j] * width;
    for (let i = 0; i < xs.length; i++) out[j * xs.length + i] = full[row + xs[i]];
  }
  return out;
}

/**
 * Keep a full-resolution mask as result `resultId` (candidate 0): drawn and saved as it is, its
 * low-res stand-in fed back to the decoder by a later click.
 * @param {number} resultId
 * @param {number} imageId
 * @param {HW} hw
 * @param {Uint8Array} full H x W row-major
 */
function keepStored(resultId, imageId, hw, full) {
  const lowRes = maskToLowRes(full, layoutFor(hw));
  const result = { imageId, hw, lowRes, iou: new Float32Array([1]), candidate: 0, full };
  remember(results, resultId, result, RESULTS_KEPT);
}

function getResult(/** @type {number} */ resultId) {
  const result = results.get(resultId);
  if (!result) throw new Error(`decoder result ${resultId} is no longer kept`);
  return result;
}

/**
 * Decode a prompt, keep its result under the request's id, and draw the chosen candidate.
 * @param {DecodeRequest} msg
 * @returns {Promise<Handled<"decode">>}
 */
export async function decode(msg) {
  const entry = embeddingEntry(msg.imageId, msg.embeddingUrl);
  await entry.promise;
  const tile = msg.tile ?? null;
  /** @type {Float32Array | null} */
  let maskInput = null;
  const from = msg.maskInput;
  // A mask fed back must be in the frame this prompt is decoded in (the same tile, or none).
  if (from && "lowRes" in from && !tile) maskInput = from.lowRes;
  else if (from && "resultId" in from) {
    const prev = results.get(from.resultId);
    if (prev && String(prev.tile ?? null) === String(tile)) {
      const c = from.candidate ?? prev.candidate ?? 0;
      maskInput = new Float32Array(candidateLogits(prev, c));
    }
  }
  mark("decode start");
  const t0 = performance.now();
  const { lowRes, iou } = tile
    ? await run(
        entry,
        promptInRegion(msg.prompt, tile),
        [tile[3] - tile[1], tile[2] - tile[0]],
        maskInput,
      )
    : await run(entry, msg.prompt, msg.hw, maskInput);
  const decodeMs = performance.now() - t0;
  mark("decode end");
  worker.warm = null; // a real click has warmed the session up
  /** @type {Result} */
  const result = { imageId: msg.imageId, hw: msg.hw, lowRes, iou, candidate: null, tile };
  let match = null;
  if (msg.candidate == null && msg.matchRle && !tile) match = matchCandidate(result, msg.matchRle);
  const candidate =
    msg.candidate ?? match?.candidate ?? bestCandidate(iou, msg.prompt, manifest().mask_candidates);
  result.candidate = candidate;
  remember(results, msg.id, result, RESULTS_KEPT);
  const t1 = performance.now();
  const bitmap = msg.region
    ? await renderRegion(result, candidate, msg.region, msg.color, msg.strokes)
    : null;
  const renderMs = performance.now() - t1;
  mark("decode drawn");
  return {
    reply: {
      resultId: msg.id,
      iou: Array.from(iou),
      candidate,
      decodeMs,
      renderMs,
      bitmap,
      region: msg.region,
      usedMaskInput: !!maskInput,
      matchIou: match?.iou ?? null,
    },
    transfer: bitmap ? [bitmap] : [],
  };
}

/**
 * The multimask candidate most like a stored mask (a proposal, made by the automatic generator
 * from this very point prompt), compared on a grid of at most MATCH_SIDE^2 image pixels.
 * @param {Result} result
 * @param {Rle} rle
 * @returns {{candidate: number, iou: number}}
 */
function matchCandidate(result, rle) {
  const [h, w] = result.hw;
  const xs = sampleIndices(0, w, Math.min(w, MATCH_SIDE));
  const ys = sampleIndices(0, h, Math.min(h, MATCH_SIDE));
  const full = decodeRle(rle);
  const stored = new Uint8Array(xs.length * ys.length);
  for (let j = 0; j < ys.length; j++)
    for (let i = 0; i < xs.length; i++) stored[j * xs.length + i] = full[ys[j] * w + xs[i]];
  const indices = manifest().mask_candidates.multimask_indices;
  let best = { candidate: indices[0], iou: -1 };
  for (const c of indices) {
    const mask = sampleMask(candidateLogits(result, c), layoutFor(result.hw), xs, ys);
    let inter = 0;
    let union = 0;
    for (let k = 0; k < mask.length; k++) {
      inter += mask[k] & stored[k];
      union += mask[k] | stored[k];
    }
    const iou = union ? inter / union : 0;
    if (iou > best.iou) best = { candidate: c, iou };
  }
  return best;
}

/** @returns {Promise<Handled<"render">>} */
export async function render(/** @type {RenderRequest} */ msg) {
  const result = getResult(msg.resultId);
  const { region } = msg;
  if (!region) throw new Error("nothing to draw: the image is not on screen");
  const t0 = performance.now();
  const bitmap = await renderRegion(result, msg.candidate, region, msg.color, msg.strokes);
  return {
    reply: { bitmap, region, renderMs: performance.now() - t0 },
    transfer: [bitmap],
  };
}

/**
 * The accepted mask at full image resolution (SAM's exact postprocess, then the brush and eraser
 * strokes) as COCO RLE.
 * @returns {Promise<Handled<"encode">>}
 */
export async function encode(/** @type {EncodeRequest} */ msg) {
  const result = getResult(msg.resultId);
  const t0 = performance.now();
  const [h, w] = result.hw;
  const mask = fullOf(result, msg.candidate, msg.strokes);
  for (const c of msg.cleanups ?? []) cleanMask(mask, w, h, c.op, c.minArea);
  const rle = encodeRle(mask, h, w);
  const { area, bbox } = rleAreaBbox(rle);
  const drawn = area ? await maskBitmap(mask, w, bbox, msg.color) : null;
  return {
    reply: {
      rle,
      area,
      bbox,
      ms: performance.now() - t0,
      bitmap: drawn?.bitmap ?? null,
      drawBox: drawn?.box ?? null,
    },
    transfer: drawn ? [drawn.bitmap] : [],
  };
}

/**
 * A decoder result made elsewhere (the server's native decoder, while this one loaded), kept
 * under its resultId like this worker's own, so that refining, undo and accept can name it.
 * @returns {Promise<Handled<"adopt">>}
 */
export async function adopt(/** @type {AdoptRequest} */ msg) {
  const { resultId, imageId, hw, lowRes, iou, candidate } = msg;
  remember(results, resultId, { imageId, hw, lowRes, iou, candidate }, RESULTS_KEPT);
  return { reply: {} };
}

/**
 * A stored mask (an accepted mask re-opened to be painted on) kept as a result, drawn and saved
 * exactly as stored; its low-res stand-in is what a later click feeds back to the decoder.
 * @returns {Promise<Handled<"adoptMask">>}
 */
export async function adoptMask(/** @type {AdoptMaskRequest} */ msg) {
  keepStored(msg.resultId, msg.imageId, /** @type {HW} */ (msg.rle.size), decodeRle(msg.rle));
  return { reply: {} };
}

/**
 * A result's candidate at full resolution (H x W row-major, a copy) with the strokes on top.
 * @param {Result} result
 * @param {number} candidate
 * @param {import('./strokes.js').Stroke[] | undefined} strokes
 */
function fullOf(result, candidate, strokes) {
  const [h, w] = result.hw;
  const mask = result.full
    ? new Uint8Array(result.full)
    : result.tile
      ? sampleOnRegion(
          candidateLogits(result, candidate),
          layoutFor,
          result.tile,
          rangeIndices(0, w),
          rangeIndices(0, h),
        )
      : fullMask(candidateLogits(result, candidate), layoutFor(result.hw));
  return applyStrokes(mask, { x0: 0, y0: 0, x1: w, y1: h, outW: w, outH: h }, strokes);
}

/**
 * A clean-up (fill small holes, drop small islands, keep the largest part) of a result's mask
 * with its strokes, at full resolution, kept as a new stored-mask result when it changed anything.
 * @returns {Promise<Handled<"clean">>}
 */
export async function clean(/** @type {CleanRequest} */ msg) {
  const result = getResult(msg.resultId);
  const [h, w] = result.hw;
  const full = fullOf(result, msg.candidate, msg.strokes);
  const changed = cleanMask(full, w, h, msg.op, msg.minArea);
  if (changed) keepStored(msg.newResultId, result.imageId, result.hw, full);
  return { reply: { changed } };
}
