// Large images: once the view comes to rest zoomed in (less than ZOOMED_TILES tiles across), the
// embedding of the tile under the view's centre is fetched, so that the first click there finds it
// in the decoder worker instead of waiting a second or more for the server to embed it.
//
// On a 2-core server a tile nobody asked for costs CPU the next click needs, so this stays small:
// one prefetch at a time, the latest wanted tile waiting for it (older ones are forgotten), none
// while a click's decode or a hover preview's is in progress (they fetch their own tile), none on
// images that are not tiled.
import { routes } from "./api.js";
import { decoder } from "./decoder.js";
import { guessInFlight } from "./guess.js";
import { stageSize } from "./stage.js";
import { state } from "./store.js";
import { isTiled, routePrompt, routeUrl } from "./tile-route.js";

// The view has settled 80 ms after the last pan or zoom (stage.js): 400 ms after it in all.
const REST_MS = 320;
// A view busy with a click or a preview: look again this much later.
const RETRY_MS = 250;
// Zoomed out further than this many tiles across, the person has not chosen where to work yet.
const ZOOMED_TILES = 2;

/** @typedef {{imageId: number, url: string, view: import('./view.js').View}} Wanted */

/** @type {ReturnType<typeof setTimeout> | undefined} */
let restTimer;
/** @type {string | null} the tile embedding being fetched */
let loading = null;
/** @type {Wanted | null} the latest tile wanted while another loads */
let next = null;
/** @type {Set<string>} tile embeddings fetched (the worker keeps the last few, the HTTP cache all) */
const fetched = new Set();

/** The view changed and has settled: prefetch its tile once it stays put REST_MS. */
export function prefetchWhenRested() {
  clearTimeout(restTimer);
  const want = wantedTile();
  if (want) restTimer = setTimeout(() => start(want), REST_MS);
}

/**
 * The tile under the view's centre while the view is zoomed in on a tiled image, or null.
 * @returns {Wanted | null}
 */
function wantedTile() {
  const image = state.image;
  const tiling = state.manifest?.tiling;
  if (!image || !tiling || !isTiled(image.width, image.height, tiling)) return null;
  const { width, height } = stageSize();
  const view = state.view;
  if (Math.max(width, height) / view.scale >= ZOOMED_TILES * tiling.tile) return null;
  const [cx, cy] = view.screenToImage(width / 2, height / 2);
  const x = Math.min(Math.max(cx, 0), image.width - 1);
  const y = Math.min(Math.max(cy, 0), image.height - 1);
  const route = routePrompt(
    { points: [{ x, y, label: 1 }], box: null },
    image.width,
    image.height,
    tiling,
  );
  if (route.kind !== "tile") return null;
  return { imageId: image.id, url: routeUrl(routes.embedding(image.id), route), view };
}

/** Fetch `want`'s embedding unless the view moved on, it is fetched, or something else runs. */
function start(/** @type {Wanted} */ want) {
  if (state.view !== want.view || state.image?.id !== want.imageId) return; // moved on
  if (fetched.has(want.url) || loading === want.url) return;
  if (loading) {
    next = want;
    return;
  }
  if (state.busy > 0 || guessInFlight()) {
    restTimer = setTimeout(() => start(want), RETRY_MS);
    return;
  }
  loading = want.url;
  decoder
    .request("embedding", { imageId: want.imageId, url: want.url })
    .then(
      () => fetched.add(want.url),
      () => {}, // a click on that tile fetches it again and shows what is wrong
    )
    .finally(() => {
      loading = null;
      const after = next;
      next = null;
      if (after) start(after);
    });
}
