// The main thread's handle on the decoder worker: requests as promises.

export class DecoderClient {
  constructor(workerUrl = new URL("./decoder-worker.js", import.meta.url)) {
    this.worker = new Worker(workerUrl, { type: "module" });
    this.nextId = 1;
    this.pending = new Map();
    this.worker.onmessage = (event) => {
      const msg = event.data;
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg);
      else p.reject(Object.assign(new Error(msg.error), { cancelled: !!msg.cancelled }));
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
  cancel(ids) {
    this.worker.postMessage({ type: "cancel", ids });
  }

  request(type, payload = {}, transfer = [], id = this.reserveId()) {
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...payload, type, id }, transfer);
    });
  }
}
