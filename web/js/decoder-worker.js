// The decoder's Web Worker: onnxruntime-web (WASM, SIMD, threads), image embeddings, and the
// mask pixels. The main thread sends prompts and receives ready-to-draw ImageBitmaps, so it
// never blocks on the model or on per-pixel work. This module is its message loop; the messages
// both ways are typed in worker-protocol.js.
//
// Every request is answered once, by {type, id, ok: true, ...} or {type, id, ok: false, error:
// "<what went wrong, in words>"}. Every request but "embedding" and "timeline" runs one at a time,
// in order (worker-queue.js), so a refinement can name the result of the request just before it;
// "embedding" loads (prefetches) and "timeline" run beside that queue. {type: "cancel", ids} (no
// answer) drops queued requests that are no longer wanted (a guessed prompt that the person did
// not make): they are answered {ok: false, cancelled: true} unrun.
//
// The work itself: worker-model.js (loading, warm-up, tier-up), worker-prefix.js (embeddings and
// the decoder's per-image prefix), worker-decode.js (prompts, results, drawing them),
// worker-masks.js (stored masks); worker-context.js holds what they share.
import { mark, timeline, worker } from "./worker-context.js";
import { adopt, adoptMask, clean, decode, encode, render } from "./worker-decode.js";
import { annotationBitmaps, maskLogits, uncovered } from "./worker-masks.js";
import { init, prepare, tierUp } from "./worker-model.js";
import { embedding, runPrefixesAhead } from "./worker-prefix.js";
import { cancel, enqueue, setIdleWork, waiting, wasCancelled } from "./worker-queue.js";

/** @typedef {import('./worker-protocol.js').ToWorker} ToWorker */
/** @typedef {import('./worker-protocol.js').WorkerRequest} WorkerRequest */
/** @typedef {import('./worker-protocol.js').RequestType} RequestType */
/** @typedef {import('./worker-protocol.js').FromWorker} FromWorker */
/**
 * @template {RequestType} T
 * @typedef {import('./worker-protocol.js').RequestOf<T>} RequestOf
 */
/**
 * @template {RequestType} T
 * @typedef {import('./worker-protocol.js').Handled<T>} Handled
 */
/** @typedef {{[T in RequestType]: (msg: RequestOf<T>) => Promise<Handled<T>>}} Handlers */

mark("worker started");
setIdleWork(runPrefixesAhead);

/** @type {Handlers} */
const handlers = {
  init,
  prepare,
  tierUp,
  decode,
  render,
  encode,
  clean,
  annotationBitmaps,
  adopt,
  adoptMask,
  maskLogits,
  uncovered,
  embedding,
  timeline: async () => ({ reply: { timeline } }),
};
/** Requests a decoder need not be loaded for. */
const WITHOUT_DECODER = ["init", "embedding", "timeline"];

/** Post a message to the page (typed: worker-protocol.js's FromWorker). */
function post(/** @type {FromWorker} */ msg, /** @type {Transferable[]} */ transfer = []) {
  self.postMessage(msg, { transfer });
}

self.onmessage = (/** @type {MessageEvent<ToWorker>} */ event) => {
  const msg = event.data;
  if (msg.type === "cancel") {
    cancel(msg.ids);
    return;
  }
  const { type, id } = msg;
  const handler = /** @type {(msg: WorkerRequest) => Promise<Handled<RequestType>>} */ (
    handlers[type]
  );
  // Embedding loads run beside the queue (a prefetch must not hold up a click); the rest in order.
  const job = async () => {
    if (type === "decode") waiting.decodes--;
    if (wasCancelled(id)) {
      post({ type, id, ok: false, cancelled: true, error: "cancelled" });
      return;
    }
    try {
      if (!handler) throw new Error(`unknown request ${type}`);
      if (!WITHOUT_DECODER.includes(type) && !worker.session)
        throw new Error("the decoder is not loaded");
      const { reply, transfer = [] } = await handler(msg);
      post(/** @type {FromWorker} */ ({ ...reply, type, id, ok: true }), transfer);
    } catch (err) {
      post({ type, id, ok: false, error: /** @type {Error} */ (err)?.message || String(err) });
    }
  };
  if (type === "embedding" || type === "timeline") job();
  else {
    if (type === "decode") waiting.decodes++;
    enqueue(job);
  }
};
