// Where a prompt step's decode runs: the page's decoder worker, or the server while the worker is
// not ready for the open image. Below session.js (which shows the mask) and guess.js (which starts
// decodes before the prompt is made).
import { routes } from "./api.js";
import { decoder } from "./decoder.js";
import { categoryColor } from "./selectors.js";
import { decodeOnServer, serverDecode } from "./server-decode.js";
import { currentRegion } from "./stage.js";
import { openedImage, state } from "./store.js";
import { routePrompt, routeUrl } from "./tile-route.js";

/** @typedef {import('./history.js').PromptStep} PromptStep */
/** @typedef {import('./worker-protocol.js').DecodeReply} DecodeReply */

/**
 * Send a history entry's prompt to the decoder worker (the mask is rendered for the view as it
 * is now), or to the server while the worker's decoder is not ready for the open image
 * (server-decode.js; the worker's decoder takes it if the server fails). `matchRle` (a stored mask): pick the candidate most like it instead of the
 * best-scored one. Resolves to the worker's reply. On a large image the prompt is routed to a
 * tile (tile-route.js) and always decoded by the worker, on that tile's embedding.
 * @param {PromptStep} entry
 * @param {import('./worker-protocol.js').Rle | null} [matchRle]
 * @returns {Promise<DecodeReply>}
 */
export function requestDecode(entry, matchRle = null) {
  const image = state.image;
  const route =
    image && routePrompt(entry.prompt, image.width, image.height, state.manifest?.tiling);
  if (route && route.kind !== "image") return workerDecode(entry, matchRle, route);
  if (decodeOnServer(entry, matchRle)) {
    // A server that cannot answer (busy, an older version): the page's decoder does, later.
    return serverDecode(entry, currentRegion(), categoryColor()).catch((err) => {
      if (state.image !== image) throw err;
      return workerDecode(entry, matchRle);
    });
  }
  return workerDecode(entry, matchRle);
}

/**
 * @param {PromptStep} entry
 * @param {import('./worker-protocol.js').Rle | null} matchRle
 * @param {import('./tile-route.js').Route | null} [route] a large image's region for this prompt
 */
function workerDecode(entry, matchRle, route = null) {
  const image = openedImage();
  const id = decoder.reserveId();
  entry.resultId = id;
  return decoder.request(
    "decode",
    {
      imageId: image.id,
      embeddingUrl: route
        ? routeUrl(routes.embedding(image.id), route)
        : routes.embedding(image.id),
      tile: route ? route.region : null,
      hw: [image.height, image.width],
      prompt: entry.prompt,
      maskInput: entry.maskFrom,
      candidate: entry.candidate,
      region: currentRegion(),
      color: categoryColor(),
      matchRle,
      strokes: entry.strokes,
    },
    [],
    id,
  );
}
