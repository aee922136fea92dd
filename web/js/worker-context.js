// What the decoder worker's modules share: the loaded decoder and the manifest it was loaded
// with, and the start-up timeline. Below every other worker module.
import { maskLayout } from "./postprocess.js";

/** @typedef {import('./worker-protocol.js').Manifest} Manifest */
/** @typedef {import('./worker-protocol.js').HW} HW */
/**
 * onnxruntime-web's module, as far as the worker uses it (imported at run time: worker-model.js).
 * @typedef {{
 *   Tensor: new (type: string, data: ArrayLike<number> | ArrayBufferView, dims: readonly number[]) => Tensor,
 *   InferenceSession: {create(model: Uint8Array, options: object): Promise<Session>},
 *   env: {wasm: {numThreads: number, proxy: boolean, wasmPaths: string}},
 * }} Ort
 * @typedef {{data: ArrayLike<number> & ArrayBufferView, dims: readonly number[]}} Tensor
 * @typedef {Record<string, Tensor>} Feeds
 * @typedef {{session: Session, prefix: Session | null, modelBytes: number}} LoadedDecoder
 * @typedef {{run(feeds: Feeds): Promise<Feeds>, release(): void, inputNames: readonly string[]}} Session
 */
/**
 * A decoder result kept for refining, undo/redo, candidate switches and accept; `full`: a stored
 * mask taken as a result (H x W row-major, drawn and saved as it is; `lowRes` stands for it when
 * it is fed back to the decoder).
 * `tile`: the region of a large image whose embedding made it (tile-route.js); its logits are in
 * that region's frame, placed at its offset in the image of `hw`.
 * @typedef {{imageId: number, hw: HW, lowRes: Float32Array, iou: Float32Array, candidate: number | null, full?: Uint8Array, tile?: [number, number, number, number] | null}} Result
 */

export const worker = {
  /** @type {Ort | null} */
  ort: null,
  /** @type {Session | null} the decoder, or with a prefix (exporter/decoder_prefix.py) its per-prompt graph */
  session: null,
  /** @type {Session | null} the per-image prefix graph, when the decoder is split */
  prefixSession: null,
  /** @type {LoadedDecoder | null} the decoder loaded last, while it still wants its warm-up run */
  warm: null,
  /** @type {Manifest | null} the manifest of the decoder loaded last */
  manifest: null,
  /** @type {[number, number]} */
  lowSize: [256, 256],
};

/** @type {(m: Manifest) => void} */
let setManifest = () => {};
/** The first init's manifest: an embedding may load before the decoder. */
export const manifestKnown = /** @type {Promise<Manifest>} */ (
  new Promise((resolve) => (setManifest = resolve))
);

/** @param {Manifest} m */
export function useManifest(m) {
  worker.manifest = m;
  worker.lowSize = m.low_res_mask_size;
  setManifest(m);
}

/** The manifest (a request that needs it runs only once a decoder is loaded: decoder-worker.js). */
export function manifest() {
  if (!worker.manifest) throw new Error("the decoder is not loaded");
  return worker.manifest;
}

/** onnxruntime-web, once `init` imported it. */
export function ort() {
  if (!worker.ort) throw new Error("the decoder is not loaded");
  return worker.ort;
}

// When each step of getting ready first happened (epoch ms: timeOrigin + now, comparable with the
// page's), for the cold page's breakdown (bench/bench_web.py): name -> ms.
/** @type {Record<string, number>} */
export const timeline = {};

/** @param {string} name */
export function mark(name) {
  timeline[name] ??= performance.timeOrigin + performance.now();
}

/**
 * Put `key` last in a map kept in least-recently-used order, dropping the oldest over `limit`.
 * @template K, V
 * @param {Map<K, V>} map
 * @param {K} key
 * @param {V} value
 * @param {number} limit
 */
export function remember(map, key, value, limit) {
  map.delete(key);
  map.set(key, value);
  while (map.size > limit) map.delete(/** @type {K} */ (map.keys().next().value));
}

/** The layout `sampleMask` needs for an H x W image, from the loaded decoder's manifest. */
export function layoutFor(/** @type {HW} */ hw) {
  return maskLayout(manifest(), hw);
}
