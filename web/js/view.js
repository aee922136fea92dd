// Zoom and pan: the mapping between screen (CSS pixels of the canvas, origin top-left) and
// the image frame (pixels of the upright image; pixel (i, j) covers [i, i+1) x [j, j+1)).
//   screen = image * scale + (tx, ty)

/** The closest zoom: 32 screen pixels per image pixel (3200%); past that a pixel only gets bigger. */
export const MAX_SCALE = 32;

export class View {
  constructor(scale = 1, tx = 0, ty = 0) {
    this.scale = scale;
    this.tx = tx;
    this.ty = ty;
  }

  /** Fit an imageW x imageH image centred in a viewW x viewH canvas with a margin in CSS px. */
  static fit(
    /** @type {number} */ imageW,
    /** @type {number} */ imageH,
    /** @type {number} */ viewW,
    /** @type {number} */ viewH,
    margin = 8,
  ) {
    const scale = Math.max(
      1e-6,
      Math.min((viewW - 2 * margin) / imageW, (viewH - 2 * margin) / imageH),
    );
    return new View(scale, (viewW - imageW * scale) / 2, (viewH - imageH * scale) / 2);
  }

  /** @returns {[number, number]} */
  imageToScreen(/** @type {number} */ x, /** @type {number} */ y) {
    return [x * this.scale + this.tx, y * this.scale + this.ty];
  }

  /** @returns {[number, number]} */
  screenToImage(/** @type {number} */ sx, /** @type {number} */ sy) {
    return [(sx - this.tx) / this.scale, (sy - this.ty) / this.scale];
  }

  /** A view zoomed by `factor` about screen point (sx, sy): the image point under it stays put. */
  zoomedAt(
    /** @type {number} */ sx,
    /** @type {number} */ sy,
    /** @type {number} */ factor,
    minScale = 0.01,
    maxScale = MAX_SCALE,
  ) {
    const scale = Math.min(maxScale, Math.max(minScale, this.scale * factor));
    const [x, y] = this.screenToImage(sx, sy);
    return new View(scale, sx - x * scale, sy - y * scale);
  }

  panned(/** @type {number} */ dx, /** @type {number} */ dy) {
    return new View(this.scale, this.tx + dx, this.ty + dy);
  }

  /**
   * The part of the image on screen and how finely to sample it for drawing.
   * @returns {import('./worker-protocol.js').Region | null} integer image pixel range [x0,x1) x [y0,y1)
   *   and the sample counts: one per image pixel when zoomed in, one per device pixel when zoomed out.
   */
  visibleRegion(
    /** @type {number} */ imageW,
    /** @type {number} */ imageH,
    /** @type {number} */ viewW,
    /** @type {number} */ viewH,
    devicePixelRatio = 1,
  ) {
    const [ax, ay] = this.screenToImage(0, 0);
    const [bx, by] = this.screenToImage(viewW, viewH);
    const x0 = Math.max(0, Math.floor(ax));
    const y0 = Math.max(0, Math.floor(ay));
    const x1 = Math.min(imageW, Math.ceil(bx));
    const y1 = Math.min(imageH, Math.ceil(by));
    if (x1 <= x0 || y1 <= y0) return null;
    const perPixel = this.scale * devicePixelRatio; // device pixels per image pixel
    const outW = Math.max(1, Math.min(x1 - x0, Math.ceil((x1 - x0) * perPixel)));
    const outH = Math.max(1, Math.min(y1 - y0, Math.ceil((y1 - y0) * perPixel)));
    return { x0, y0, x1, y1, outW, outH };
  }
}
