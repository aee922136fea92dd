// The decoder worker's model: loading onnxruntime-web and a decoder (again when the server's
// model version changes; embeddings are kept), its warm-up run, and the tier-up runs a fresh
// worker makes until V8 has optimised onnxruntime's wasm.
import { drawUnseen, run } from "./worker-decode.js";
import { manifest, mark, ort, useManifest, worker } from "./worker-context.js";
import { embeddingEntry, imageInputs } from "./worker-prefix.js";
import { waiting } from "./worker-queue.js";

/** @typedef {import('./worker-protocol.js').InitRequest} InitRequest */
/** @typedef {import('./worker-protocol.js').InitReply} InitReply */
/** @typedef {import('./worker-protocol.js').PrepareRequest} PrepareRequest */
/** @typedef {import('./worker-protocol.js').TierUpRequest} TierUpRequest */
/**
 * @template {import('./worker-protocol.js').RequestType} T
 * @typedef {import('./worker-protocol.js').Handled<T>} Handled
 */
/** @typedef {import('./worker-context.js').Ort} Ort */
/** @typedef {import('./worker-context.js').LoadedDecoder} LoadedDecoder */
/** @typedef {import('./worker-prefix.js').EmbeddingEntry} EmbeddingEntry */

const SESSIONS_KEPT = 3; // decoders of model versions loaded before (a switch back is instant)
// V8 runs onnxruntime's wasm with its baseline compiler first and optimises each function only
// after it has run a while (dynamic tiering): on a fresh page the first ~8 decodes took up to
// twice as long as later ones, and they made the slowest clicks of a session (bench/RESULTS.md).
// So a fresh worker runs the decoder this many times ("tierUp", which the page asks for after
// preparing the image it opened; its clicks go to the server meanwhile: server-decode.js).
const TIER_UP_RUNS = 8;

let tierUpRunsLeft = TIER_UP_RUNS; // per worker: the wasm is compiled once for every session
/** @type {Map<string, LoadedDecoder>} decoder URL -> decoder, least recently used first */
const sessions = new Map();

/**
 * Load a decoder (again when the server's model version changes; embeddings are kept). A
 * decoder loaded before is taken from `sessions`, so switching back to a version is instant.
 * `prefixUrl`: the decoder is split (the manifest's `prefix`): `decoderUrl` is then its
 * per-prompt graph, and the per-image prefix runs once per image.
 * @param {InitRequest} msg
 * @returns {Promise<Handled<"init">>}
 */
export async function init({
  ortUrl,
  decoderUrl,
  prefixUrl = null,
  manifest: m,
  numThreads,
  spinning = false,
  tierUpRuns = null,
}) {
  const t0 = performance.now();
  mark("decoder init");
  useManifest(m);
  if (tierUpRuns != null && !worker.ort) tierUpRunsLeft = tierUpRuns;
  let loaded = sessions.get(decoderUrl);
  const reused = !!loaded;
  // onnxruntime-web, its wasm and the decoder load side by side. The wasm is only fetched here,
  // into the HTTP cache (its URL is immutable): onnxruntime-web then compiles it from there with
  // streaming compilation, whose optimised code Chromium caches for the next visit.
  const wasmUrl = new URL("ort-wasm-simd-threaded.wasm", new URL(ortUrl, self.location.href));
  const wasmFetched = worker.ort
    ? null
    : fetchBytes(wasmUrl.href, "onnxruntime-web's wasm", "wasm");
  const modelBytes = loaded ? null : fetchBytes(decoderUrl, "the decoder", "decoder");
  const prefixBytes =
    loaded || !prefixUrl ? null : fetchBytes(prefixUrl, "the decoder's prefix", "prefix graph");
  if (!worker.ort) {
    const imported = /** @type {Ort} */ (await import(ortUrl));
    worker.ort = imported;
    mark("ort imported");
    imported.env.wasm.numThreads = numThreads;
    imported.env.wasm.proxy = false; // already off the main thread
    imported.env.wasm.wasmPaths = new URL(".", wasmUrl).href;
    await wasmFetched;
  }
  if (!loaded) {
    const { InferenceSession } = ort();
    const options = {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
      // Threads that spin while waiting for work steal the CPU from each other (and from the
      // page) on a small machine: on 2 cores, p95 of a decoder run fell from ~250 to ~140 ms.
      extra: { session: { intra_op: { allow_spinning: spinning ? "1" : "0" } } },
    };
    // The small prefix graph first: its session starts onnxruntime's wasm (compiling it,
    // starting its threads) while the large per-prompt graph is still downloading.
    const prefixModel = await prefixBytes;
    const prefix = prefixModel ? await InferenceSession.create(prefixModel, options) : null;
    mark("prefix session created");
    const model = /** @type {Uint8Array} */ (await modelBytes);
    // A prompt graph the exporter saved optimised (exporter/decoder_prefix.py) is not optimised
    // again: in WASM that took most of a cold page's session creation.
    const preOptimized = !!prefixUrl && !!m.prefix?.prompt.optimized;
    mark("decoder session start");
    const created = await InferenceSession.create(
      model,
      preOptimized ? { ...options, graphOptimizationLevel: "disabled" } : options,
    );
    mark("decoder session created");
    const wanted = prefixUrl && m.prefix ? m.prefix.prompt.inputs : m.inputs;
    const missing = wanted.filter((name) => !created.inputNames.includes(name));
    if (missing.length)
      throw new Error(`the decoder lacks the manifest's inputs: ${missing.join(", ")}`);
    const bytes = model.byteLength + (prefixModel ? prefixModel.byteLength : 0);
    loaded = { session: created, prefix, modelBytes: bytes };
  }
  sessions.delete(decoderUrl);
  sessions.set(decoderUrl, loaded);
  while (sessions.size > SESSIONS_KEPT) {
    const [oldest, old] = /** @type {[string, LoadedDecoder]} */ (sessions.entries().next().value);
    sessions.delete(oldest);
    old.session.release();
    old.prefix?.release();
  }
  worker.session = loaded.session;
  worker.prefixSession = loaded.prefix;
  worker.warm = reused ? null : loaded;
  if (!reused && !worker.prefixSession) await warmUp(); // a split decoder warms up with an image's prefix
  mark("decoder loaded");
  /** @type {InitReply} */
  const reply = {
    loadMs: performance.now() - t0,
    reused,
    threads: numThreads,
    split: !!worker.prefixSession,
    crossOriginIsolated: self.crossOriginIsolated,
    modelBytes: loaded.modelBytes,
  };
  return { reply };
}

/** A file's bytes; `what` names it in the error, `name` in the timeline. */
async function fetchBytes(
  /** @type {string} */ url,
  /** @type {string} */ what,
  /** @type {string} */ name,
) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${what} (${url}) did not load (HTTP ${response.status})`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  mark(`${name} fetched`);
  return bytes;
}

/**
 * One decoder run and its mask drawn, so that the first real click pays neither for the
 * session's allocations nor for compiling the drawing code and starting createImageBitmap: on
 * `entry`'s embedding (an opened image's, its prefix computed already), else on a zero one.
 * @param {EmbeddingEntry | null} [entry]
 * @returns {Promise<number>} ms
 */
async function warmUp(entry = null) {
  const t0 = performance.now();
  mark("warm-up start");
  worker.warm = null;
  if (!entry) {
    const { shape, dtype } = manifest().embedding;
    const size = shape.reduce((a, b) => a * b, 1);
    const data = dtype === "float16" ? new Uint16Array(size) : new Float32Array(size);
    const tensor = new (ort().Tensor)(dtype, data, shape);
    entry = /** @type {EmbeddingEntry} */ ({ tensor, bytes: null, ms: null });
  }
  const prompt = { points: [{ x: 10, y: 10, label: 1 }], box: null };
  const { lowSize } = worker;
  /** @type {import('./worker-protocol.js').HW} */
  const hw = [lowSize[0] * 4, lowSize[1] * 4];
  const { lowRes } = await run(entry, prompt, hw, null);
  await drawUnseen({ hw, lowRes });
  mark("warm-up end");
  return performance.now() - t0;
}

/**
 * Run the decoder's per-image prefix for an opened image now, so that its first click does not;
 * and the warm-up run of a freshly loaded decoder, unless a decode waits (a click on a cold
 * page is not held up by it: it warms the decoder up itself).
 * @returns {Promise<Handled<"prepare">>}
 */
export async function prepare(/** @type {PrepareRequest} */ msg) {
  const entry = embeddingEntry(msg.imageId, msg.url);
  await entry.promise;
  const t0 = performance.now();
  if (worker.prefixSession) await imageInputs(entry);
  const prefixMs = performance.now() - t0;
  const warmMs = worker.warm && waiting.decodes === 0 ? await warmUp(entry) : 0;
  return {
    reply: { ms: prefixMs, warmMs, aheadMs: entry.aheadMs ?? null, tierUpLeft: tierUpRunsLeft },
  };
}

/**
 * Decoder runs on a prepared image's embedding (their masks unused) until TIER_UP_RUNS have run
 * in this worker, stopping as soon as another job is queued (the page asks again).
 * @returns {Promise<Handled<"tierUp">>} each run's ms, the runs still to make
 */
export async function tierUp(/** @type {TierUpRequest} */ msg) {
  const entry = embeddingEntry(msg.imageId, msg.url);
  await entry.promise;
  /** @type {number[]} */
  const ms = [];
  const { lowSize } = worker;
  /** @type {import('./worker-protocol.js').HW} */
  const hw = [lowSize[0] * 4, lowSize[1] * 4]; // the model's input frame, as warmUp's
  while (tierUpRunsLeft > 0 && waiting.jobs <= 1 && waiting.decodes === 0) {
    tierUpRunsLeft--;
    const t0 = performance.now();
    // Prompts of 1 to 5 points, every other one with a fed-back mask: the shapes and branches
    // of a person's clicks.
    const n = 1 + (tierUpRunsLeft % 5);
    const points = Array.from({ length: n }, (_, k) => ({
      x: 100 + 150 * k,
      y: 500,
      label: k % 2,
    }));
    const maskInput = tierUpRunsLeft % 2 ? new Float32Array(lowSize[0] * lowSize[1]) : null;
    const { lowRes } = await run(entry, { points, box: null }, hw, maskInput);
    // The last run's mask is drawn too: the first click after these runs drew its mask 50-100 ms
    // slower than later ones (the runs' garbage collected then?); now this drawing pays for it.
    if (tierUpRunsLeft === 0) await drawUnseen({ hw, lowRes });
    ms.push(Math.round(performance.now() - t0));
  }
  if (tierUpRunsLeft === 0) mark("tier-up end");
  return { reply: { ms, left: tierUpRunsLeft } };
}
