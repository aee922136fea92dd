// The decoder's Web Worker: onnxruntime-web (WASM, SIMD, threads), image embeddings, and the
// mask pixels. The main thread sends prompts and receives ready-to-draw ImageBitmaps, so it
// never blocks on the model or on per-pixel work.
//
// Messages in: {id, type, ...}; every one is answered by {id, ok: true, ...} or
// {id, ok: false, error: "<what went wrong, in words>"}. Every request but "embedding" runs one
// at a time, in order (each waits for the one before it to finish), so a refinement can name the
// result of the request just before it; "embedding" loads (prefetches) and "timeline" run beside
// that queue. When the queue has been empty a while, prefetched images' decoder prefixes run.
// {type: "cancel", ids} (no answer) drops queued requests that are no longer wanted (a guessed
// prompt that the person did not make): they are answered {ok: false, cancelled: true} unrun.
import { parseNpy } from "./npy.js";
import { bestCandidate, pointInputs } from "./prompts.js";
import {
  fullMask,
  maskLayout,
  maskToLowRes,
  sampleIndices,
  sampleMask,
  sampleRegion,
} from "./postprocess.js";
import { decodeRle, encodeRle, rleAreaBbox, unionRle } from "./rle.js";
import { cropMask, paintMask, paintUncovered, parseColor, STYLES } from "./render.js";

const EMBEDDINGS_KEPT = 6; // current image, a few prefetched, a few behind
const RESULTS_KEPT = 32; // decoder outputs kept for undo/redo and candidate switching (1 MiB each)
const MAX_BITMAP_PIXELS = 4_000_000; // larger annotation bitmaps are subsampled for drawing
const MAX_PROPOSAL_PIXELS = 1_000_000; // proposals come by the hundred on a 32x32 grid: keep them small
const MATCH_SIDE = 512; // a candidate is matched to a stored mask on at most 512 x 512 pixels

const SESSIONS_KEPT = 3; // decoders of model versions loaded before (a switch back is instant)
// A prefetched image's decoder prefix runs once the worker has been idle this long: soon enough
// for the next image, late enough not to hold up a click or an open that follows a click at once.
const IDLE_PREFIX_MS = 400;
// V8 runs onnxruntime's wasm with its baseline compiler first and optimises each function only
// after it has run a while (dynamic tiering): on a fresh page the first ~8 decodes took up to
// twice as long as later ones, and they made the slowest clicks of a session (bench/RESULTS.md).
// So a fresh worker runs the decoder this many times ("tierUp", which the page asks for after
// preparing the image it opened; its clicks go to the server meanwhile: server-decode.js).
const TIER_UP_RUNS = 8;

let ort = null;
let session = null; // the decoder, or with a prefix (exporter/decoder_prefix.py) its per-prompt graph
let prefixSession = null; // the per-image prefix graph, when the decoder is split
let warm = null; // the loaded decoder ({session, prefix}) while it still wants its warm-up run
let tierUpRunsLeft = TIER_UP_RUNS; // per worker: the wasm is compiled once for every session
const sessions = new Map(); // decoder URL -> {session, modelBytes}, least recently used first
let manifest = null;
let setManifest;
const manifestKnown = new Promise((resolve) => (setManifest = resolve)); // the first init's
let lowSize = [256, 256];
// imageId -> {promise, npy, tensor, bytes, ms, side: the prefix's outputs {session, feeds}}
const embeddings = new Map();
const results = new Map(); // resultId -> {imageId, hw, lowRes: Float32Array [4*lh*lw], iou: Float32Array}
// When each step of getting ready first happened (epoch ms: timeOrigin + now, comparable with the
// page's), for the cold page's breakdown (bench/bench_web.py): name -> ms.
const timeline = {};

function mark(name) {
  timeline[name] ??= performance.timeOrigin + performance.now();
}
mark("worker started");

function remember(map, key, value, limit) {
  map.delete(key);
  map.set(key, value);
  while (map.size > limit) map.delete(map.keys().next().value);
}

function layoutFor(hw) {
  return maskLayout(manifest, hw);
}

/**
 * Load a decoder (again when the server's model version changes; embeddings are kept). A
 * decoder loaded before is taken from `sessions`, so switching back to a version is instant.
 * `prefixUrl`: the decoder is split (the manifest's `prefix`): `decoderUrl` is then its
 * per-prompt graph, and the per-image prefix runs once per image.
 */
async function init({
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
  manifest = m;
  setManifest(m);
  if (tierUpRuns != null && !ort) tierUpRunsLeft = tierUpRuns;
  lowSize = m.low_res_mask_size;
  let loaded = sessions.get(decoderUrl);
  const reused = !!loaded;
  // onnxruntime-web, its wasm and the decoder load side by side. The wasm is only fetched here,
  // into the HTTP cache (its URL is immutable): onnxruntime-web then compiles it from there with
  // streaming compilation, whose optimised code Chromium caches for the next visit.
  const wasmUrl = new URL("ort-wasm-simd-threaded.wasm", new URL(ortUrl, self.location.href));
  const wasmFetched = ort ? null : fetchBytes(wasmUrl.href, "onnxruntime-web's wasm", "wasm");
  const modelBytes = loaded ? null : fetchBytes(decoderUrl, "the decoder", "decoder");
  const prefixBytes =
    loaded || !prefixUrl ? null : fetchBytes(prefixUrl, "the decoder's prefix", "prefix graph");
  if (!ort) {
    ort = await import(ortUrl);
    mark("ort imported");
    ort.env.wasm.numThreads = numThreads;
    ort.env.wasm.proxy = false; // already off the main thread
    ort.env.wasm.wasmPaths = new URL(".", wasmUrl).href;
    await wasmFetched;
  }
  if (!loaded) {
    const options = {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
      // Threads that spin while waiting for work steal the CPU from each other (and from the
      // page) on a small machine: on 2 cores, p95 of a decoder run fell from ~250 to ~140 ms.
      extra: { session: { intra_op: { allow_spinning: spinning ? "1" : "0" } } },
    };
    // The small prefix graph first: its session starts onnxruntime's wasm (compiling it,
    // starting its threads) while the large per-prompt graph is still downloading.
    const prefix = prefixUrl ? await ort.InferenceSession.create(await prefixBytes, options) : null;
    mark("prefix session created");
    const model = await modelBytes;
    // A prompt graph the exporter saved optimised (exporter/decoder_prefix.py) is not optimised
    // again: in WASM that took most of a cold page's session creation.
    const preOptimized = !!prefixUrl && !!m.prefix.prompt.optimized;
    mark("decoder session start");
    const created = await ort.InferenceSession.create(
      model,
      preOptimized ? { ...options, graphOptimizationLevel: "disabled" } : options,
    );
    mark("decoder session created");
    const wanted = prefixUrl ? m.prefix.prompt.inputs : m.inputs;
    const missing = wanted.filter((name) => !created.inputNames.includes(name));
    if (missing.length)
      throw new Error(`the decoder lacks the manifest's inputs: ${missing.join(", ")}`);
    const bytes = model.byteLength + (prefix ? (await prefixBytes).byteLength : 0);
    loaded = { session: created, prefix, modelBytes: bytes };
  }
  sessions.delete(decoderUrl);
  sessions.set(decoderUrl, loaded);
  while (sessions.size > SESSIONS_KEPT) {
    const [oldest, old] = sessions.entries().next().value;
    sessions.delete(oldest);
    old.session.release();
    old.prefix?.release();
  }
  session = loaded.session;
  prefixSession = loaded.prefix;
  warm = reused ? null : loaded;
  if (!reused && !prefixSession) await warmUp(); // a split decoder warms up with an image's prefix
  mark("decoder loaded");
  return {
    loadMs: performance.now() - t0,
    reused,
    threads: numThreads,
    split: !!prefixSession,
    crossOriginIsolated: self.crossOriginIsolated,
    modelBytes: loaded.modelBytes,
  };
}

async function fetchBytes(url, what, name) {
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
 * @returns {Promise<number>} ms
 */
async function warmUp(entry = null) {
  const t0 = performance.now();
  mark("warm-up start");
  warm = null;
  if (!entry) {
    const shape = manifest.embedding.shape;
    const size = shape.reduce((a, b) => a * b, 1);
    const dtype = manifest.embedding.dtype;
    const data = dtype === "float16" ? new Uint16Array(size) : new Float32Array(size);
    entry = { tensor: new ort.Tensor(dtype, data, shape) };
  }
  const prompt = { points: [{ x: 10, y: 10, label: 1 }], box: null };
  const hw = [lowSize[0] * 4, lowSize[1] * 4];
  const { lowRes, iou } = await run(entry, prompt, hw, null);
  await drawUnseen({ hw, lowRes, iou });
  mark("warm-up end");
  return performance.now() - t0;
}

/** Draw a decoder result's mask both ways a region is sampled (pixel by pixel, and subsampled:
 * a zoomed-out large image), for nobody: the drawing code's warm-up. */
async function drawUnseen(result) {
  const { hw } = result;
  for (const out of [hw, [hw[0] / 2, hw[1] / 2]]) {
    const region = { x0: 0, y0: 0, x1: hw[1], y1: hw[0], outW: out[1], outH: out[0] };
    (await renderRegion(result, 0, region, "#ffffff")).close();
  }
}

function embeddingEntry(imageId, url) {
  let entry = embeddings.get(imageId);
  if (entry) {
    remember(embeddings, imageId, entry, EMBEDDINGS_KEPT);
    return entry;
  }
  entry = { ms: null, bytes: null, tensor: null };
  entry.promise = (async () => {
    const t0 = performance.now();
    const response = await fetch(url);
    if (!response.ok) {
      let detail;
      try {
        detail = (await response.json()).error;
      } catch {
        detail = response.statusText;
      }
      throw new Error(
        `the embedding of image ${imageId} did not load (HTTP ${response.status}: ${detail})`,
      );
    }
    const buffer = await response.arrayBuffer();
    const npy = parseNpy(buffer);
    const want = (await manifestKnown).embedding; // an embedding may load before the decoder

    if (npy.dtype !== want.dtype || npy.shape.join() !== want.shape.join()) {
      throw new Error(
        `the embedding of image ${imageId} is ${npy.dtype} (${npy.shape}), the decoder wants ${want.dtype} (${want.shape})`,
      );
    }
    entry.npy = npy;
    entry.bytes = buffer.byteLength;
    entry.ms = performance.now() - t0;
    mark("embedding fetched");
    return entry;
  })();
  entry.promise.catch(() => embeddings.delete(imageId)); // a failed load may be retried
  remember(embeddings, imageId, entry, EMBEDDINGS_KEPT);
  return entry;
}

/** The decoder's image inputs for an embedding entry: the embedding, or the prefix's outputs. */
async function imageInputs(entry) {
  entry.tensor ??= new ort.Tensor(entry.npy.dtype, entry.npy.data, entry.npy.shape);
  if (!prefixSession) return { image_embeddings: entry.tensor };
  if (entry.side?.session !== prefixSession) {
    mark("prefix run start");
    const feeds = await prefixSession.run({ image_embeddings: entry.tensor });
    mark("prefix run end");
    entry.side = { session: prefixSession, feeds };
  }
  return entry.side.feeds;
}

async function run(entry, prompt, hw, maskInput) {
  const { coords, labels, count } = pointInputs(prompt, hw, manifest.input_size);
  const [lh, lw] = lowSize;
  const feeds = {
    ...(await imageInputs(entry)),
    point_coords: new ort.Tensor("float32", coords, [1, count, 2]),
    point_labels: new ort.Tensor("float32", labels, [1, count]),
    mask_input: new ort.Tensor("float32", maskInput ?? new Float32Array(lh * lw), [1, 1, lh, lw]),
    has_mask_input: new ort.Tensor("float32", new Float32Array([maskInput ? 1 : 0]), [1]),
  };
  const out = await session.run(feeds);
  return { lowRes: out.low_res_masks.data, iou: out.iou_predictions.data };
}

function candidateLogits(result, candidate) {
  const n = lowSize[0] * lowSize[1];
  return result.lowRes.subarray(candidate * n, (candidate + 1) * n);
}

/** The mask of one candidate over a region of the image, as an ImageBitmap to draw there. */
async function renderRegion(result, candidate, region, color) {
  const mask = sampleRegion(candidateLogits(result, candidate), layoutFor(result.hw), region);
  const rgba = paintMask(mask, region.outW, region.outH, parseColor(color), STYLES.current);
  return createImageBitmap(new ImageData(rgba, region.outW, region.outH));
}

function getResult(resultId) {
  const result = results.get(resultId);
  if (!result) throw new Error(`decoder result ${resultId} is no longer kept`);
  return result;
}

async function decode(msg) {
  const entry = embeddingEntry(msg.imageId, msg.embeddingUrl);
  await entry.promise;
  let maskInput = null;
  if (msg.maskInput?.lowRes) maskInput = msg.maskInput.lowRes;
  else if (msg.maskInput) {
    const prev = results.get(msg.maskInput.resultId);
    if (prev) {
      const c = msg.maskInput.candidate ?? prev.candidate;
      maskInput = new Float32Array(candidateLogits(prev, c));
    }
  }
  mark("decode start");
  const t0 = performance.now();
  const { lowRes, iou } = await run(entry, msg.prompt, msg.hw, maskInput);
  const decodeMs = performance.now() - t0;
  mark("decode end");
  warm = null; // a real click has warmed the session up
  const result = { imageId: msg.imageId, hw: msg.hw, lowRes, iou, candidate: null };
  let match = null;
  if (msg.candidate == null && msg.matchRle) match = matchCandidate(result, msg.matchRle);
  const candidate =
    msg.candidate ?? match?.candidate ?? bestCandidate(iou, msg.prompt, manifest.mask_candidates);
  result.candidate = candidate;
  remember(results, msg.id, result, RESULTS_KEPT);
  const t1 = performance.now();
  const bitmap = msg.region ? await renderRegion(result, candidate, msg.region, msg.color) : null;
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
  let best = { candidate: manifest.mask_candidates.multimask_indices[0], iou: -1 };
  for (const c of manifest.mask_candidates.multimask_indices) {
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

async function render(msg) {
  const result = getResult(msg.resultId);
  const t0 = performance.now();
  const bitmap = await renderRegion(result, msg.candidate, msg.region, msg.color);
  return {
    reply: { bitmap, region: msg.region, renderMs: performance.now() - t0 },
    transfer: [bitmap],
  };
}

/** The accepted mask at full image resolution (SAM's exact postprocess) as COCO RLE. */
async function encode(msg) {
  const result = getResult(msg.resultId);
  const t0 = performance.now();
  const [h, w] = result.hw;
  const mask = fullMask(candidateLogits(result, msg.candidate), layoutFor(result.hw));
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

function bitmapStep(w, h, maxPixels = MAX_BITMAP_PIXELS) {
  return Math.max(1, Math.ceil(Math.sqrt((w * h) / maxPixels)));
}

async function maskBitmap(mask, width, bbox, color, style = STYLES.accepted) {
  const step = bitmapStep(
    bbox[2],
    bbox[3],
    style === STYLES.proposal ? MAX_PROPOSAL_PIXELS : MAX_BITMAP_PIXELS,
  );
  const crop = cropMask(mask, width, bbox, step);
  const rgba = paintMask(crop.mask, crop.w, crop.h, parseColor(color), style);
  return { bitmap: await createImageBitmap(new ImageData(rgba, crop.w, crop.h)), box: bbox };
}

/** Bitmaps of stored annotations (cropped to their boxes) for the annotation layer; `style`
 * "proposal" draws a proposal, anything else an accepted mask. */
async function annotationBitmaps(msg) {
  const out = [];
  for (const a of msg.annotations) {
    const mask = decodeRle(a.rle);
    const { area, bbox } = rleAreaBbox(a.rle);
    if (!area) {
      out.push({ id: a.id, bitmap: null, box: bbox });
      continue;
    }
    const drawn = await maskBitmap(
      mask,
      a.rle.size[1],
      bbox,
      a.color,
      STYLES[a.style] ?? STYLES.accepted,
    );
    out.push({ id: a.id, bitmap: drawn.bitmap, box: bbox });
  }
  return { reply: { bitmaps: out }, transfer: out.filter((b) => b.bitmap).map((b) => b.bitmap) };
}

/** A decoder result made elsewhere (the server's native decoder, while this one loaded), kept
 * under its resultId like this worker's own, so that refining, undo and accept can name it. */
async function adopt(msg) {
  const { resultId, imageId, hw, lowRes, iou, candidate } = msg;
  remember(results, resultId, { imageId, hw, lowRes, iou, candidate }, RESULTS_KEPT);
  return { reply: {} };
}

/** Low-res logits standing for a stored mask, to refine an annotation that has no prompts. */
async function maskLogits(msg) {
  const [h, w] = msg.rle.size;
  const lowRes = maskToLowRes(decodeRle(msg.rle), layoutFor([h, w]));
  return { reply: { lowRes }, transfer: [lowRes.buffer] };
}

/**
 * The part of an H x W image that none of the given masks (COCO RLE) covers: its share of the
 * image (exact, full resolution) and an alpha bitmap of it to draw over the whole image.
 */
async function uncovered(msg) {
  const [h, w] = msg.hw;
  const { mask, area } = unionRle(msg.rles, h, w);
  const crop = cropMask(mask, w, [0, 0, w, h], bitmapStep(w, h));
  const bitmap = await createImageBitmap(
    new ImageData(paintUncovered(crop.mask, crop.w, crop.h), crop.w, crop.h),
  );
  const pixels = h * w;
  return {
    reply: {
      uncoveredPixels: pixels - area,
      pixels,
      fraction: (pixels - area) / pixels,
      bitmap,
      box: [0, 0, w, h],
    },
    transfer: [bitmap],
  };
}

/**
 * Load (prefetch) an image's embedding. `ahead`: an image that may be opened next: its decoder
 * prefix runs when the worker is idle (runPrefixesAhead), so opening it needs none.
 */
async function embedding(msg) {
  const entry = embeddingEntry(msg.imageId, msg.url);
  await entry.promise;
  if (msg.ahead) {
    entry.ahead = true;
    idleSoon();
  }
  return { reply: { bytes: entry.bytes, ms: entry.ms } };
}

let idleTimer = null;

/** Run the prefixes of prefetched images once the queue has stayed empty IDLE_PREFIX_MS. */
function idleSoon() {
  clearTimeout(idleTimer);
  idleTimer = setTimeout(runPrefixesAhead, IDLE_PREFIX_MS);
}

/** One prefetched image's prefix (in the order they were asked for), then wait to be idle again. */
function runPrefixesAhead() {
  if (jobsWaiting > 0 || !prefixSession) return; // the job that ends the queue calls idleSoon
  const entry = [...embeddings.values()].find(
    (e) => e.ahead && e.npy && e.side?.session !== prefixSession,
  );
  if (!entry) return;
  enqueue(async () => {
    const t0 = performance.now();
    await imageInputs(entry);
    entry.aheadMs = performance.now() - t0;
  });
}

/**
 * Run the decoder's per-image prefix for an opened image now, so that its first click does not;
 * and the warm-up run of a freshly loaded decoder, unless a decode waits (a click on a cold
 * page is not held up by it: it warms the decoder up itself).
 */
async function prepare(msg) {
  const entry = embeddingEntry(msg.imageId, msg.url);
  await entry.promise;
  const t0 = performance.now();
  if (prefixSession) await imageInputs(entry);
  const prefixMs = performance.now() - t0;
  const warmMs = warm && decodesWaiting === 0 ? await warmUp(entry) : 0;
  return {
    reply: { ms: prefixMs, warmMs, aheadMs: entry.aheadMs ?? null, tierUpLeft: tierUpRunsLeft },
  };
}

/**
 * Decoder runs on a prepared image's embedding (their masks unused) until TIER_UP_RUNS have run
 * in this worker, stopping as soon as another job is queued (the page asks again).
 * @returns {{reply: {ms: number[], left: number}}} each run's ms, the runs still to make
 */
async function tierUp(msg) {
  const entry = embeddingEntry(msg.imageId, msg.url);
  await entry.promise;
  const ms = [];
  const hw = [lowSize[0] * 4, lowSize[1] * 4]; // the model's input frame, as warmUp's
  while (tierUpRunsLeft > 0 && jobsWaiting <= 1 && decodesWaiting === 0) {
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
    const { lowRes, iou } = await run(entry, { points, box: null }, hw, maskInput);
    // The last run's mask is drawn too: the first click after these runs drew its mask 50-100 ms
    // slower than later ones (the runs' garbage collected then?); now this drawing pays for it.
    if (tierUpRunsLeft === 0) await drawUnseen({ hw, lowRes, iou });
    ms.push(Math.round(performance.now() - t0));
  }
  if (tierUpRunsLeft === 0) mark("tier-up end");
  return { reply: { ms, left: tierUpRunsLeft } };
}

const handlers = {
  init,
  prepare,
  tierUp,
  decode,
  render,
  encode,
  annotationBitmaps,
  adopt,
  maskLogits,
  uncovered,
  embedding,
  timeline: async () => ({ timeline }),
};
let queue = Promise.resolve();
let jobsWaiting = 0; // queued requests not finished yet
let decodesWaiting = 0; // queued decode requests not started yet
const cancelled = new Set(); // ids of queued requests not to run

self.onmessage = (event) => {
  const msg = event.data;
  if (msg.type === "cancel") {
    for (const id of msg.ids) cancelled.add(id);
    return;
  }
  const handler = handlers[msg.type];
  // Embedding loads run beside the queue (a prefetch must not hold up a click); the rest in order.
  const job = async () => {
    if (msg.type === "decode") decodesWaiting--;
    if (cancelled.delete(msg.id)) {
      self.postMessage({ id: msg.id, ok: false, cancelled: true, error: "cancelled" });
      return;
    }
    for (const id of cancelled) if (id < msg.id) cancelled.delete(id); // ran already: ids only grow
    try {
      if (!handler) throw new Error(`unknown request ${msg.type}`);
      if (!["init", "embedding", "timeline"].includes(msg.type) && !session)
        throw new Error("the decoder is not loaded");
      const out = await handler(msg);
      const { reply, transfer = [] } = out.reply ? out : { reply: out };
      self.postMessage({ id: msg.id, ok: true, ...reply }, transfer);
    } catch (err) {
      self.postMessage({ id: msg.id, ok: false, error: err?.message || String(err) });
    }
  };
  if (msg.type === "embedding" || msg.type === "timeline") job();
  else {
    if (msg.type === "decode") decodesWaiting++;
    enqueue(job);
  }
};

/** Run `job` after the queued ones; when the queue empties, the idle work may start. */
function enqueue(job) {
  jobsWaiting++;
  clearTimeout(idleTimer);
  queue = queue
    .then(job)
    .catch(() => {}) // a request answers its own errors; idle work has none worth telling
    .finally(() => {
      if (--jobsWaiting === 0) idleSoon();
    });
}
