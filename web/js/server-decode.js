// Clicks decoded by the server (POST /api/images/<id>/decode: the same fp32 decoder on native
// onnxruntime) while the page's own decoder is not ready for the open image: on a cold page it
// is still compiling ~14 MB of wasm and creating its sessions, on a newly opened image it may
// still be running the image's decoder prefix. The answer (the low-res logits of the 4
// candidates) is drawn here and handed to the worker under the click's resultId, so refining,
// undo and accept work on it as on the worker's own results.
import { api, routes } from "./api.js";
import { decoder } from "./decoder.js";
import { maskLayout, sampleRegion } from "./postprocess.js";
import { bestCandidate } from "./prompts.js";
import { paintMask, parseColor, STYLES } from "./render.js";
import { mark, openedImage, state } from "./store.js";

const KEPT = 8; // the last server results, for the refining clicks that follow them
/** @typedef {import('./history.js').PromptStep} PromptStep */
/** @typedef {import('./worker-protocol.js').Region} Region */
/** @typedef {import('./store.js').ImageRecord} ImageRecord */
/** @typedef {import('./store.js').PageManifest} PageManifest */

/** @type {Map<number, {lowRes: Float32Array, candidate: number}>} resultId -> its logits [4*lh*lw] */
const kept = new Map();
/** @type {Promise<unknown>} */
let chain = Promise.resolve(); // server decodes run one after another (a refinement needs the one before)
let inFlight = 0;

/** Whether the worker's decoder has loaded and prepared the open image (its prefix ran). */
export function localDecoderReady() {
  return state.decoderReady && state.prepared?.imageId === state.image?.id;
}

/**
 * Whether a decode of `entry` goes to the server: the local decoder is not ready for the open
 * image, or an earlier server decode is still on its way (this one may refine it); a prompt
 * that refines a result the worker made, or matches a stored mask, stays with the worker.
 * @param {PromptStep} entry
 * @param {unknown} matchRle
 */
export function decodeOnServer(entry, matchRle) {
  if (matchRle || state.decoderPrecision !== "fp32") return false; // the server runs fp32
  if (localDecoderReady() && inFlight === 0) return false;
  const from = /** @type {any} */ (entry.maskFrom);
  return !from?.resultId || kept.has(from.resultId);
}

/**
 * Decode `entry`'s prompt on the server and draw its mask over `region`. Resolves like the
 * worker's decode reply: {resultId, iou, candidate, decodeMs, renderMs, bitmap, region, server}.
 * @param {PromptStep} entry
 * @param {Region | null} region
 * @param {string} color
 * @returns {Promise<import('./worker-protocol.js').DecodeReply & {server: boolean}>}
 */
export function serverDecode(entry, region, color) {
  const image = openedImage();
  const manifest = state.manifest;
  const id = decoder.reserveId();
  entry.resultId = id;
  inFlight++;
  const run = chain.then(() => decodeNow(id, entry, image, manifest, region, color));
  chain = run.catch(() => {});
  return run.finally(() => inFlight--);
}

/**
 * @param {number} id
 * @param {PromptStep} entry
 * @param {ImageRecord} image
 * @param {PageManifest} manifest
 * @param {Region | null} region
 * @param {string} color
 */
async function decodeNow(id, entry, image, manifest, region, color) {
  const body = {
    points: entry.prompt.points.map((p) => [p.x, p.y, p.label]),
    box: entry.prompt.box
      ? [entry.prompt.box.x0, entry.prompt.box.y0, entry.prompt.box.x1, entry.prompt.box.y1]
      : null,
    mask_input: maskInput(entry.maskFrom, manifest),
    model_version: manifest.model_version,
  };
  mark("server decode sent");
  const reply = await api(routes.decode(image.id), { method: "POST", body });
  mark("server decode answered");
  const lowRes = new Float32Array(fromBase64(reply.low_res_logits).buffer);
  const iou = Float32Array.from(reply.iou);
  const candidate = entry.candidate ?? bestCandidate(iou, entry.prompt, manifest.mask_candidates);
  kept.set(id, { lowRes, candidate });
  while (kept.size > KEPT) kept.delete(/** @type {number} */ (kept.keys().next().value));
  /** @type {import('./worker-protocol.js').HW} */
  const hw = [image.height, image.width];
  decoder
    .request("adopt", { resultId: id, imageId: image.id, hw, lowRes, iou, candidate })
    .catch(() => {}); // without the worker's decoder nothing can refine it anyway
  const t0 = performance.now();
  const n = manifest.low_res_mask_size[0] * manifest.low_res_mask_size[1];
  const logits = lowRes.subarray(candidate * n, (candidate + 1) * n);
  if (!region) throw new Error("the image is not on screen: nothing to draw the mask over");
  const mask = sampleRegion(logits, maskLayout(manifest, hw), region);
  const rgba = paintMask(mask, region.outW, region.outH, parseColor(color), STYLES.current);
  const bitmap = await createImageBitmap(new ImageData(rgba, region.outW, region.outH));
  return {
    resultId: id,
    iou: Array.from(iou),
    candidate,
    decodeMs: reply.ms,
    renderMs: performance.now() - t0,
    bitmap,
    region,
    usedMaskInput: body.mask_input !== null,
    matchIou: null,
    server: true,
  };
}

/**
 * The logits a refinement feeds back (one candidate, 256 x 256 float32) as base64, or null.
 * @param {any} maskFrom a MaskInput
 * @param {PageManifest} manifest
 */
function maskInput(maskFrom, manifest) {
  if (!maskFrom) return null;
  const { lowRes } = maskFrom;
  if (lowRes) return toBase64(new Uint8Array(lowRes.buffer, lowRes.byteOffset, lowRes.byteLength));
  const prev = /** @type {{lowRes: Float32Array, candidate: number}} */ (
    kept.get(maskFrom.resultId)
  );
  const c = maskFrom.candidate ?? prev.candidate;
  const n = manifest.low_res_mask_size[0] * manifest.low_res_mask_size[1];
  return toBase64(new Uint8Array(prev.lowRes.slice(c * n, (c + 1) * n).buffer));
}

function fromBase64(/** @type {string} */ text) {
  if (Uint8Array.fromBase64) return Uint8Array.fromBase64(text);
  return Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));
}

function toBase64(/** @type {Uint8Array} */ bytes) {
  if (bytes.toBase64) return bytes.toBase64();
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000)
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}
