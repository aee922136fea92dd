// The decoder worker's request queue: requests run one at a time, in order, so a refinement can
// name the result of the request just before it. Speculative decodes (a press or a resting
// pointer guessed the prompt: guess.js) may be cancelled while they wait; a decode waiting makes
// the warm-up and tier-up runs give way. When the queue has stayed empty a while, idle work runs
// (prefetched images' decoder prefixes: worker-prefix.js).

/** Requests queued and not finished yet, and decodes among them not started yet. */
export const waiting = { jobs: 0, decodes: 0 };

/** @type {Promise<unknown>} */
let queue = Promise.resolve();
const cancelled = new Set(); // ids of queued requests not to run
/** @type {ReturnType<typeof setTimeout> | undefined} */
let idleTimer;
let idleWork = () => {};

/** Set what runs once the queue has stayed empty `IDLE_MS` (one thing; it may enqueue more). */
export function setIdleWork(/** @type {() => void} */ work) {
  idleWork = work;
}

// A prefetched image's decoder prefix runs once the worker has been idle this long: soon enough
// for the next image, late enough not to hold up a click or an open that follows a click at once.
const IDLE_MS = 400;

/** Start (again) waiting IDLE_MS for the idle work. */
export function idleSoon() {
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => idleWork(), IDLE_MS);
}

/** Run `job` after the queued ones; when the queue empties, the idle work may start. */
export function enqueue(/** @type {() => Promise<void>} */ job) {
  waiting.jobs++;
  clearTimeout(idleTimer);
  queue = queue
    .then(job)
    .catch(() => {}) // a request answers its own errors; idle work has none worth telling
    .finally(() => {
      if (--waiting.jobs === 0) idleSoon();
    });
}

/** Queued requests not to run (answered as cancelled when their turn comes). */
export function cancel(/** @type {number[]} */ ids) {
  for (const id of ids) cancelled.add(id);
}

/** Whether request `id`, whose turn has come, was cancelled; forgets cancels of earlier ids. */
export function wasCancelled(/** @type {number} */ id) {
  if (cancelled.delete(id)) return true;
  for (const other of cancelled) if (other < id) cancelled.delete(other); // ran already: ids only grow
  return false;
}
