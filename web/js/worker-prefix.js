// The decoder worker's per-image cache: the images' embeddings (fetched once, a few kept) and,
// with a split decoder, the outputs of its per-image prefix graph, so that a click runs only the
// per-prompt graph. Prefetched images' prefixes run while the worker is idle.
import { parseNpy } from "./npy.js";
import { manifestKnown, mark, ort, remember, worker } from "./worker-context.js";
import { enqueue, idleSoon, waiting } from "./worker-queue.js";

/** @typedef {import('./worker-protocol.js').EmbeddingRequest} EmbeddingRequest */
/** @typedef {import('./worker-protocol.js').Handled<"embedding">} HandledEmbedding */
/** @typedef {import('./worker-context.js').Feeds} Feeds */
/** @typedef {import('./worker-context.js').Session} Session */
/**
 * An image's embedding: loading (`promise`), then its array (`npy`), the tensor made of it, and
 * the prefix's outputs (`side`, for the prefix session that made them).
 * @typedef {object} EmbeddingEntry
 * @property {Promise<EmbeddingEntry>} promise
 * @property {import('./npy.js').Npy} [npy]
 * @property {import('./worker-context.js').Tensor | null} tensor
 * @property {number | null} bytes
 * @property {number | null} ms
 * @property {{session: Session, feeds: Feeds}} [side]
 * @property {boolean} [ahead] it may be opened next: its prefix runs while the worker idles
 * @property {number} [aheadMs] how long that run took
 */

const EMBEDDINGS_KEPT = 12; // current image, a few prefetched, a few behind; a large image's tiles
/** @type {Map<string, EmbeddingEntry>} url -> entry, least recently used first */
const embeddings = new Map();

/**
 * An embedding's entry, kept or its load started now: an image's (its url), or a region's of a
 * large image (the url with `?tile=x0,y0,x1,y1`, tile-route.js).
 */
export function embeddingEntry(/** @type {number} */ imageId, /** @type {string} */ url) {
  const kept = embeddings.get(url);
  if (kept) {
    remember(embeddings, url, kept, EMBEDDINGS_KEPT);
    return kept;
  }
  const entry = /** @type {EmbeddingEntry} */ ({ ms: null, bytes: null, tensor: null });
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
  entry.promise.catch(() => embeddings.delete(url)); // a failed load may be retried
  remember(embeddings, url, entry, EMBEDDINGS_KEPT);
  return entry;
}

/**
 * The decoder's image inputs for a loaded embedding entry: the embedding, or the prefix's outputs.
 * @returns {Promise<Feeds>}
 */
export async function imageInputs(/** @type {EmbeddingEntry} */ entry) {
  if (!entry.tensor) {
    const npy = /** @type {import('./npy.js').Npy} */ (entry.npy);
    entry.tensor = new (ort().Tensor)(npy.dtype, npy.data, npy.shape);
  }
  const prefix = worker.prefixSession;
  if (!prefix) return { image_embeddings: entry.tensor };
  if (entry.side?.session !== prefix) {
    mark("prefix run start");
    const feeds = await prefix.run({ image_embeddings: entry.tensor });
    mark("prefix run end");
    entry.side = { session: prefix, feeds };
  }
  return entry.side.feeds;
}

/**
 * Load (prefetch) an image's embedding. `ahead`: an image that may be opened next: its decoder
 * prefix runs when the worker is idle (runPrefixesAhead), so opening it needs none.
 * @returns {Promise<HandledEmbedding>}
 */
export async function embedding(/** @type {EmbeddingRequest} */ msg) {
  const entry = embeddingEntry(msg.imageId, msg.url);
  await entry.promise;
  if (msg.ahead) {
    entry.ahead = true;
    idleSoon();
  }
  return { reply: { bytes: entry.bytes, ms: entry.ms } };
}

/** One prefetched image's prefix (in the order they were asked for), then wait to be idle again. */
export function runPrefixesAhead() {
  const prefix = worker.prefixSession;
  if (waiting.jobs > 0 || !prefix) return; // the job that ends the queue calls idleSoon
  const entry = [...embeddings.values()].find(
    (e) => e.ahead && e.npy && e.side?.session !== prefix,
  );
  if (!entry) return;
  enqueue(async () => {
    const t0 = performance.now();
    await imageInputs(entry);
    entry.aheadMs = performance.now() - t0;
  });
}
