// The main thread's handle on the decoder worker: requests as promises, typed by the worker's
// protocol (worker-protocol.js): `request("decode", {...})` takes a DecodeRequest's fields and
// resolves to its DecodeReply.

/** @typedef {import('./worker-protocol.js').ToWorker} ToWorker */
/** @typedef {import('./worker-protocol.js').FromWorker} FromWorker */
/** @typedef {import('./worker-protocol.js').RequestType} RequestType */
/**
 * @template {RequestType} T
 * @typedef {import('./worker-protocol.js').Payload<T>} Payload
 */
/**
 * @template {RequestType} T
 * @typedef {import('./worker-protocol.js').ReplyOf<T>} ReplyOf
 */
/** @typedef {{resolve: (reply: any) => void, reject: (error: Error) => void}} Pending */

export class DecoderClient {
  /** @param {URL} [workerUrl] */
  constructor(workerUrl = new URL("./decoder-worker.js", import.meta.url)) {
    this.worker = new Worker(workerUrl, { type: "module" });
    this.nextId = 1;
    /** @type {Map<number, Pending>} */
    this.pending = new Map();
    /** @type {((error: Error) => void) | null} told when the worker fails as a whole */
    this.onfatal = null;
    this.worker.onmessage = (/** @type {MessageEvent<FromWorker>} */ event) => {
      const msg = event.data;
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg);
      else {
        const failure = /** @type {import('./worker-protocol.js').Failure} */ (msg);
        p.reject(Object.assign(new Error(failure.error), { cancelled: !!failure.cancelled }));
      }
    };
    this.worker.onerror = (event) => {
      const error = new Error(
        `the decoder worker failed: ${event.message || "it could not start (see the browser console)"}`,
      );
      for (const p of this.pending.values()) p.reject(error);
      this.pending.clear();
      this.onfatal?.(error);
    };
  }

  /** Reserve the id of the next request (a refinement names the result of an earlier one). */
  reserveId() {
    return this.nextId++;
  }

  /** Drop requests still waiting in the worker's queue (they reject with `cancelled` set). */
  cancel(/** @type {number[]} */ ids) {
    this.post({ type: "cancel", ids });
  }

  /**
   * Send a request; resolves to its reply, rejects with the worker's error.
   * @template {RequestType} T
   * @param {T} type
   * @param {Payload<T>} payload the request's fields but `type` and `id`
   * @param {Transferable[]} [transfer] objects whose ownership moves to the worker
   * @param {number} [id] a reserved id (reserveId), else the next
   * @returns {Promise<ReplyOf<T>>}
   */
  request(type, payload, transfer = [], id = this.reserveId()) {
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.post(/** @type {ToWorker} */ ({ ...payload, type, id }), transfer);
    });
  }

  /** Post a message to the worker (typed: worker-protocol.js's ToWorker). */
  post(/** @type {ToWorker} */ msg, /** @type {Transferable[]} */ transfer = []) {
    this.worker.postMessage(msg, transfer);
  }
}
