// Large images: once the view comes to rest zoomed in (less than ZOOMED_TILES tiles across), the
// embeddings of the tiles that clicks in view would be routed to are fetched, the one under the
// view's centre first, then the others nearest the centre first (at most AROUND in all), so that
// the first click there finds its tile in the decoder worker instead of waiting a second or more
// for the server to embed it.
//
// On a 2-core server a tile nobody asked for costs CPU the next click needs, so this stays small:
// one prefetch at a time, the latest view's tiles waiting for it (an older view's are forgotten),
// none while a click's decode or a hover preview's is in progress (they fetch their own tile), none
// on images that are not tiled.
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
// The most tiles one view at rest prefetches (the centre's included).
const AROUND = 4;
// Clicks in view are sampled on a SAMPLES x SAMPLES grid of the stage to find their tiles.
const SAMPLES = 4;

/** @typedef {{imageId: number, url: string, view: import('./view.js').View}} Wanted */

/** @type {ReturnType<typeof setTimeout> | undefined} */
let restTimer;
/** @type {string | null} the tile embedding being fetched */
let loading = null;
/** @type {Wanted[]} the latest view's tiles still to fetch, the next first */
let pending = [];
/** @type {Set<string>} tile embeddings fetched (the worker keeps the last few, the HTTP cache all) */
const fetched = new Set();

/** The view changed and has settled: prefetch its tiles once it stays put REST_MS. */
export function prefetchWhenRested() {
  clearTimeout(restTimer);
  const wanted = wantedTiles();
  if (!wanted.length) return;
  restTimer = setTimeout(() => {
    pending = wanted;
    startNext();
  }, REST_MS);
}

/**
 * The tiles clicks in view are routed to while the view is zoomed in on a tiled image: the one
 * under the view's centre, then the others by the distance of a click routed there to the centre
 * (stage pixels); at most AROUND, none fetched already.
 * @returns {Wanted[]}
 */
function wantedTiles() {
  const image = state.image;
  const tiling = state.manifest?.tiling;
  if (!image || !tiling || !isTiled(image.width, image.height, tiling)) return [];
  const { width, height } = stageSize();
  const view = state.view;
  if (Math.max(width, height) / view.scale >= ZOOMED_TILES * tiling.tile) return [];
  /** @type {{sx: number, sy: number}[]} stage points: the centre, then a grid over the stage */
  const points = [{ sx: width / 2, sy: height / 2 }];
  for (let i = 0; i < SAMPLES; i++) {
    for (let j = 0; j < SAMPLES; j++) {
      points.push({ sx: ((j + 0.5) * width) / SAMPLES, sy: ((i + 0.5) * height) / SAMPLES });
    }
  }
  const distance = (/** @type {{sx: number, sy: number}} */ p) =>
    Math.hypot(p.sx - width / 2, p.sy - height / 2);
  points.sort((a, b) => distance(a) - distance(b));
  /** @type {Wanted[]} */
  const wanted = [];
  for (const { sx, sy } of points) {
    const [ix, iy] = view.screenToImage(sx, sy);
    if (ix < 0 || iy < 0 || ix >= image.width || iy >= image.height) continue; // off the picture
    const route = routePrompt(
      { points: [{ x: ix, y: iy, label: 1 }], box: null },
      image.width,
      image.height,
      tiling,
    );
    if (route.kind !== "tile") continue;
    const url = routeUrl(routes.embedding(image.id), route);
    if (!fetched.has(url) && !wanted.some((w) => w.url === url))
      wanted.push({ imageId: image.id, url, view });
    if (wanted.length === AROUND) break;
  }
  return wanted;
}

/** Fetch the next pending tile unless the view moved on, it is fetched, or something else runs. */
function startNext() {
  if (loading) return; // its end starts the next
  const want = pending[0];
  if (!want) return;
  if (state.view !== want.view || state.image?.id !== want.imageId) {
    pending = []; // moved on: the new view's rest brings its own tiles
    return;
  }
  if (fetched.has(want.url)) {
    pending.shift();
    startNext();
    return;
  }
  if (state.busy > 0 || guessInFlight()) {
    clearTimeout(restTimer);
    restTimer = setTimeout(startNext, RETRY_MS);
    return;
  }
  pending.shift();
  loading = want.url;
  decoder
    .request("embedding", { imageId: want.imageId, url: want.url })
    .then(
      () => fetched.add(want.url),
      () => {}, // a click on that tile fetches it again and shows what is wrong
    )
    .finally(() => {
      loading = null;
      startNext();
    });
}
