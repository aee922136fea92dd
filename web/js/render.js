// Binary masks -> RGBA pixels for drawing (pure; runs in the worker).

/** @typedef {[number, number, number]} RGB */
/**
 * How a mask is painted: fill alpha; outline colour (null: the fill's) and alpha; `fill`: a fill
 * colour instead of the category's; `dash` and `dashEdge`: the outline alternates every n pixels;
 * `halo`: a second ring just inside the outline in this colour (null: the fill's, opaque), a
 * two-tone line that shows on any picture; `haloWidth` pixels wide (1).
 * @typedef {{fillAlpha: number, edge: RGB | null, edgeAlpha: number, fill?: RGB, dash?: number, dashEdge?: RGB, halo?: RGB | null, haloWidth?: number}} Style
 */

/**
 * "#rrggbb" -> [r, g, b].
 * @param {string | null | undefined} hex
 * @returns {RGB}
 */
export function parseColor(hex) {
  const m = /^#?([0-9a-f]{6})$/i.exec(hex || "");
  const v = m ? parseInt(m[1], 16) : 0x1e90ff;
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

/**
 * How masks look: the object being prompted stands out from the accepted ones (a white edge with a
 * black ring inside, round a stronger fill; accepted masks a black edge with a ring of their
 * category's colour inside, opaque, round a lighter fill); proposals
 * (not yet a person's decision) are a faint neutral fill with a dashed black-and-white outline,
 * whatever their category, so they read as "not yet labelled" on any photo.
 */
/** @type {{current: Style, accepted: Style, proposal: Style}} */
export const STYLES = {
  current: { fillAlpha: 0.5, edge: [255, 255, 255], edgeAlpha: 1, halo: [0, 0, 0] },
  accepted: { fillAlpha: 0.42, edge: [0, 0, 0], edgeAlpha: 1, halo: null, haloWidth: 2 },
  proposal: {
    fill: [235, 235, 235],
    fillAlpha: 0.32,
    edge: [255, 255, 255],
    edgeAlpha: 1,
    dash: 3,
    dashEdge: [0, 0, 0],
  },
};

/**
 * Paint a mask: translucent fill, opaque outline (inside pixels with an outside 4-neighbour).
 * Neighbours beyond the array count as inside, so a mask cut by the visible region shows no
 * false edge there.
 * @param {Uint8Array} mask h x w row-major
 * @param {number} w
 * @param {number} h
 * @param {RGB} rgb fill colour (unless the style has its own)
 * @param {Style} [style]
 * @returns {Uint8ClampedArray<ArrayBuffer>} RGBA, h x w
 */
export function paintMask(mask, w, h, rgb, style = STYLES.accepted) {
  const out = new Uint8ClampedArray(w * h * 4);
  const px = new Uint32Array(out.buffer);
  const pack = (/** @type {RGB} */ [r, g, b], /** @type {number} */ alpha) =>
    ((Math.round(alpha * 255) << 24) | (b << 16) | (g << 8) | r) >>> 0;
  const fillRgb = style.fill ?? rgb;
  const fill = pack(fillRgb, style.fillAlpha);
  const edge = pack(style.edge ?? fillRgb, style.edgeAlpha);
  const dash = style.dash ?? 0;
  const dashEdge = dash ? pack(style.dashEdge ?? fillRgb, style.edgeAlpha) : edge;
  const halo = style.halo !== undefined ? pack(style.halo ?? fillRgb, style.edgeAlpha) : 0;
  /** @type {number[] | null} the edge pixels, from which the halo grows inwards */
  const edges = halo ? [] : null;
  for (let y = 0; y < h; y++) {
    const row = y * w;
    const yBlock = dash ? Math.floor(y / dash) : 0;
    for (let x = 0; x < w; x++) {
      const i = row + x;
      if (!mask[i]) continue;
      const isEdge =
        (x > 0 && !mask[i - 1]) ||
        (x < w - 1 && !mask[i + 1]) ||
        (y > 0 && !mask[i - w]) ||
        (y < h - 1 && !mask[i + w]);
      // A checkerboard of dash x dash blocks: along any edge direction the colours alternate.
      if (isEdge) {
        px[i] = dash && (Math.floor(x / dash) + yBlock) & 1 ? dashEdge : edge;
        edges?.push(i);
      } else px[i] = fill;
    }
  }
  if (edges) paintHalo(px, w, h, edges, fill, halo, style.haloWidth ?? 1);
  return out;
}

/**
 * The ring just inside a mask's outline, `width` pixels: filled pixels 4-adjacent to the edge,
 * then to that ring, and so on. Its cost follows the outline's length, not the mask's area (the
 * current mask is painted on every decode).
 * @param {Uint32Array} px the painted pixels
 * @param {number} w
 * @param {number} h
 * @param {number[]} edges the edge pixels' indices
 * @param {number} fill the fill's packed colour
 * @param {number} halo the ring's packed colour
 * @param {number} width
 */
function paintHalo(px, w, h, edges, fill, halo, width) {
  let ring = edges;
  for (let k = 0; k < width; k++) {
    /** @type {number[]} */
    const next = [];
    const take = (/** @type {number} */ n) => {
      if (px[n] !== fill) return;
      px[n] = halo;
      next.push(n);
    };
    for (const i of ring) {
      const x = i % w;
      if (x > 0) take(i - 1);
      if (x < w - 1) take(i + 1);
      if (i >= w) take(i - w);
      if (i < w * (h - 1)) take(i + w);
    }
    ring = next;
  }
}

/**
 * Alpha of the pixels that no mask covers (opaque black there, transparent elsewhere): the
 * page fills it with a screen-space hatch, so the hatch keeps its size at any zoom.
 * @param {Uint8Array} covered h x w row-major, nonzero = inside some accepted mask
 * @param {number} w
 * @param {number} h
 * @returns {Uint8ClampedArray<ArrayBuffer>} RGBA, h x w
 */
export function paintUncovered(covered, w, h) {
  const out = new Uint8ClampedArray(w * h * 4);
  const px = new Uint32Array(out.buffer);
  for (let i = 0; i < w * h; i++) if (!covered[i]) px[i] = 0xff000000;
  return out;
}

/**
 * Crop a row-major H x W mask to [x, y, w, h], keeping every `step`-th pixel (step >= 1),
 * so that very large annotations stay small to draw.
 * @param {Uint8Array} mask
 * @param {number} width W
 * @param {number[]} box [x, y, w, h]
 * @param {number} [step]
 * @returns {{mask: Uint8Array, w: number, h: number}}
 */
export function cropMask(mask, width, box, step = 1) {
  const [bx, by, bw, bh] = box;
  const w = Math.max(1, Math.ceil(bw / step));
  const h = Math.max(1, Math.ceil(bh / step));
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    const src = (by + y * step) * width + bx;
    for (let x = 0; x < w; x++) out[y * w + x] = mask[src + x * step];
  }
  return { mask: out, w, h };
}
