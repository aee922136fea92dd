// Binary masks -> RGBA pixels for drawing (pure; runs in the worker).

/** "#rrggbb" -> [r, g, b]. */
export function parseColor(hex) {
  const m = /^#?([0-9a-f]{6})$/i.exec(hex || "");
  const v = m ? parseInt(m[1], 16) : 0x1e90ff;
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

/** How masks look: the object being prompted stands out from the accepted ones. */
export const STYLES = {
  current: { fillAlpha: 0.5, edge: [255, 255, 255], edgeAlpha: 1 },
  accepted: { fillAlpha: 0.38, edge: null, edgeAlpha: 0.95 },
};

/**
 * Paint a mask: translucent fill, opaque outline (inside pixels with an outside 4-neighbour).
 * Neighbours beyond the array count as inside, so a mask cut by the visible region shows no
 * false edge there.
 * @param {Uint8Array} mask h x w row-major
 * @param {number[]} rgb fill colour; style: {fillAlpha, edge: rgb or null (= fill colour), edgeAlpha}
 * @returns {Uint8ClampedArray} RGBA, h x w
 */
export function paintMask(mask, w, h, rgb, style = STYLES.accepted) {
  const out = new Uint8ClampedArray(w * h * 4);
  const px = new Uint32Array(out.buffer);
  const pack = ([r, g, b], alpha) => ((Math.round(alpha * 255) << 24) | (b << 16) | (g << 8) | r) >>> 0;
  const fill = pack(rgb, style.fillAlpha);
  const edge = pack(style.edge ?? rgb, style.edgeAlpha);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      const i = row + x;
      if (!mask[i]) continue;
      const isEdge = (x > 0 && !mask[i - 1]) || (x < w - 1 && !mask[i + 1])
        || (y > 0 && !mask[i - w]) || (y < h - 1 && !mask[i + w]);
      px[i] = isEdge ? edge : fill;
    }
  }
  return out;
}

/**
 * Crop a row-major H x W mask to [x, y, w, h], keeping every `step`-th pixel (step >= 1),
 * so that very large annotations stay small to draw.
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
