// Large images: the tiles that cover them and the routing of a prompt to the region (tile, crop or
// the whole image) whose embedding answers it — the page's copy of maskloop/tiles.py, with the
// numbers (tile, overlap, threshold) from /api/model's `tiling`, so both sides route alike.
//
// Frames: image pixels (the whole upright image); a region's frame is image pixels minus the
// region's (x0, y0), and the region is embedded as an image of its own (its hw = its size). A
// decoder result on a region is placed back at that offset in the image.

import { sampleMask } from "./postprocess.js";

/** @typedef {import('./worker-protocol.js').Prompt} Prompt */
/** @typedef {[number, number, number, number]} RegionBox x0, y0, x1, y1 image pixels, half-open */
/** @typedef {{tile: number, overlap: number, threshold: number, crop_padding: number}} Tiling */
/** @typedef {{kind: "image" | "tile" | "crop", region: RegionBox}} Route */

/**
 * Whether an image of width x height is answered by tiles.
 * @param {number} width
 * @param {number} height
 * @param {Tiling | undefined} tiling
 */
export function isTiled(width, height, tiling) {
  return !!tiling && Math.max(width, height) > tiling.threshold;
}

/**
 * Where tiles start along an axis: evenly spread, first at 0, last ending at `length`,
 * consecutive ones sharing at least `overlap` pixels.
 * @param {number} length
 * @param {number} tile
 * @param {number} overlap
 * @returns {number[]}
 */
export function tileStarts(length, tile, overlap) {
  if (length <= tile) return [0];
  const count = Math.ceil((length - tile) / (tile - overlap)) + 1;
  return Array.from({ length: count }, (_, i) => Math.round((i * (length - tile)) / (count - 1)));
}

/**
 * Every tile of an image, row by row.
 * @param {number} width
 * @param {number} height
 * @param {Tiling} tiling
 * @returns {RegionBox[]}
 */
export function tileGrid(width, height, tiling) {
  const xs = tileStarts(width, tiling.tile, tiling.overlap);
  const ys = tileStarts(height, tiling.tile, tiling.overlap);
  return ys.flatMap((y) =>
    xs.map(
      (x) =>
        /** @type {RegionBox} */ ([
          x,
          y,
          Math.min(x + tiling.tile, width),
          Math.min(y + tiling.tile, height),
        ]),
    ),
  );
}

/**
 * How far bounds lie inside a tile from its nearest edge that cuts the image (negative when they
 * stick out; an edge on the image border does not count).
 * @param {RegionBox} bounds
 * @param {RegionBox} tile
 * @param {number} width
 * @param {number} height
 */
export function margin(bounds, tile, width, height) {
  const sides = [
    [bounds[0] - tile[0], tile[0] > 0],
    [bounds[1] - tile[1], tile[1] > 0],
    [tile[2] - bounds[2], tile[2] < width],
    [tile[3] - bounds[3], tile[3] < height],
  ];
  const least = Math.min(...sides.map(([d]) => Number(d)));
  if (least < 0) return least;
  const cuts = sides.filter(([, cut]) => cut).map(([d]) => Number(d));
  return cuts.length ? Math.min(...cuts) : Infinity;
}

/**
 * The region whose embedding answers a prompt (points and box together): the whole image of a
 * small image; the tile holding the prompt with the most margin; a crop around a prompt no tile
 * holds (or the whole image when the crop would be as large).
 * @param {Prompt} prompt image frame
 * @param {number} width
 * @param {number} height
 * @param {Tiling | undefined} tiling
 * @returns {Route}
 */
export function routePrompt(prompt, width, height, tiling) {
  /** @type {Route} */
  const whole = { kind: "image", region: [0, 0, width, height] };
  if (!tiling || !isTiled(width, height, tiling)) return whole;
  const xs = prompt.points.map((p) => p.x);
  const ys = prompt.points.map((p) => p.y);
  if (prompt.box) xs.push(prompt.box.x0, prompt.box.x1);
  if (prompt.box) ys.push(prompt.box.y0, prompt.box.y1);
  if (!xs.length) return whole;
  /** @type {RegionBox} */
  const bounds = [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
  let best = null;
  let bestMargin = -Infinity;
  for (const tile of tileGrid(width, height, tiling)) {
    const m = margin(bounds, tile, width, height);
    if (m > bestMargin) [best, bestMargin] = [tile, m];
  }
  if (best && bestMargin >= 0) return { kind: "tile", region: best };
  const side =
    Math.max(bounds[2] - bounds[0], bounds[3] - bounds[1]) * (1 + 2 * tiling.crop_padding);
  const [x0, x1] = fit((bounds[0] + bounds[2]) / 2 - side / 2, side, width);
  const [y0, y1] = fit((bounds[1] + bounds[3]) / 2 - side / 2, side, height);
  if (Math.max(x1 - x0, y1 - y0) >= Math.max(width, height)) return whole;
  return { kind: "crop", region: [x0, y0, x1, y1] };
}

/** [start, start + size) of an interval of `size` from `a`, shifted inside [0, length). */
function fit(/** @type {number} */ a, /** @type {number} */ size, /** @type {number} */ length) {
  const n = Math.min(length, Math.ceil(size));
  const start = Math.min(Math.max(0, Math.floor(a)), length - n);
  return [start, start + n];
}

/**
 * The embedding URL of a route: the image's own, or its region's (`?tile=x0,y0,x1,y1`).
 * @param {string} imageUrl the whole image's embedding URL
 * @param {Route} route
 */
export function routeUrl(imageUrl, route) {
  return route.kind === "image" ? imageUrl : `${imageUrl}?tile=${route.region.join(",")}`;
}

/**
 * A prompt in a region's frame (image pixels minus the region's offset).
 * @param {Prompt} prompt image frame
 * @param {RegionBox} region
 * @returns {Prompt}
 */
export function promptInRegion(prompt, [x0, y0]) {
  return {
    points: prompt.points.map((p) => ({ ...p, x: p.x - x0, y: p.y - y0 })),
    box: prompt.box && {
      x0: prompt.box.x0 - x0,
      y0: prompt.box.y0 - y0,
      x1: prompt.box.x1 - x0,
      y1: prompt.box.y1 - y0,
    },
  };
}

/**
 * Threshold a region's decoder logits at image pixels: SAM's postprocess in the region's frame
 * (its hw = its size), 0 outside the region.
 * @param {Float32Array} lowRes one candidate's low-res logits (the region's)
 * @param {(hw: [number, number]) => import('./postprocess.js').MaskLayout} layoutFor
 * @param {RegionBox} region
 * @param {Int32Array} xs image columns wanted, ascending
 * @param {Int32Array} ys image rows wanted, ascending
 * @returns {Uint8Array} ys.length x xs.length row-major
 */
export function sampleOnRegion(lowRes, layoutFor, [x0, y0, x1, y1], xs, ys) {
  const out = new Uint8Array(xs.length * ys.length);
  const [i0, i1] = within(xs, x0, x1);
  const [j0, j1] = within(ys, y0, y1);
  if (i1 <= i0 || j1 <= j0) return out;
  const sub = sampleMask(
    lowRes,
    layoutFor([y1 - y0, x1 - x0]),
    xs.slice(i0, i1).map((x) => x - x0),
    ys.slice(j0, j1).map((y) => y - y0),
  );
  const n = i1 - i0;
  for (let j = j0; j < j1; j++)
    out.set(sub.subarray((j - j0) * n, (j - j0 + 1) * n), j * xs.length + i0);
  return out;
}

/** [first, last + 1) indices of the ascending `values` that lie in [lo, hi). */
function within(
  /** @type {Int32Array} */ values,
  /** @type {number} */ lo,
  /** @type {number} */ hi,
) {
  let a = 0;
  while (a < values.length && values[a] < lo) a++;
  let b = a;
  while (b < values.length && values[b] < hi) b++;
  return [a, b];
}
