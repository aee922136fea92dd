// A large image shown as a tile pyramid (server: /api/images/<id>/pyramid, server/jobs/pyramid.py).
//
// Frames. Level n of `levels` (0 = one pixel, levels-1 = the full image) is the image scaled by
// 2^(n - (levels-1)); tile (col, row) of level n covers that level's pixels
// [col*T, (col+1)*T) x [row*T, (row+1)*T), i.e. image pixels scaled by f = 2^(levels-1-n).
// Tiles are drawn in the image frame (the canvas carries the view transform, stage.js), so masks,
// prompts and the brush, drawn in the same frame, line up at any zoom.
import { api } from "./api.js";

/**
 * The server's manifest of a pyramid.
 * @typedef {{width: number, height: number, tile_size: number, levels: number, coarse_levels: number, level_sizes: number[][], tile_url: string, complete: boolean}} PyramidManifest
 */
/**
 * One tile: its bitmap once loaded; `retryAt` (ms, performance.now) when its level was still being cut.
 * @typedef {{bitmap: ImageBitmap | null, loading: boolean, retryAt: number, used: number}} Tile
 */

/** Tiles fetched at once (a browser allows ~6 per host; the rest of the page keeps one free). */
const MAX_FETCHES = 5;
/** Tile bitmaps kept (512² RGBA = 1 MiB each). */
const MAX_TILES = 256;
/** Coarser levels drawn under the chosen one while its tiles arrive. */
const FALLBACK_LEVELS = 4;

export class TilePyramid {
  /**
   * @param {PyramidManifest} manifest
   * @param {() => void} onTile called when a tile arrives (the image layer is then drawn again)
   */
  constructor(manifest, onTile) {
    this.manifest = manifest;
    this.onTile = onTile;
    /** @type {Map<string, Tile>} by "level/col/row" */
    this.tiles = new Map();
    this.fetching = 0;
    /** @type {string[]} keys wanted by the last draw, finest first */
    this.wanted = [];
    /** tiles of the chosen level drawn by the last draw (tests and the benchmark read it) */
    this.drawnAtLevel = 0;
    this.level = 0;
    /** when the chosen level's first tiles were drawn (performance.now; 0: not yet) */
    this.firstViewAt = 0;
    this.closed = false;
  }

  get top() {
    return this.manifest.levels - 1;
  }

  /**
   * The level to show at `scale` screen px per image px: the coarsest whose pixels are no larger
   * than a device pixel (at most the full image).
   */
  levelFor(/** @type {number} */ scale, /** @type {number} */ dpr) {
    const k = Math.floor(Math.log2(1 / Math.max(1e-9, scale * dpr))); // levels below the top
    return Math.max(0, Math.min(this.top, this.top - Math.max(0, k)));
  }

  /** The finest level that fits in one tile: the overview (minimap, first paint). */
  overviewLevel() {
    let n = this.top;
    while (n > 0 && Math.max(...this.manifest.level_sizes[n]) > this.manifest.tile_size) n--;
    return n;
  }

  url(/** @type {number} */ level, /** @type {number} */ col, /** @type {number} */ row) {
    return this.manifest.tile_url
      .replace("{level}", String(level))
      .replace("{col}", String(col))
      .replace("{row}", String(row));
  }

  /**
   * The tiles of `level` that cover image rectangle [x0, x1) x [y0, y1).
   * @returns {{c0: number, c1: number, r0: number, r1: number, f: number}} tile columns [c0, c1),
   *   rows [r0, r1), and f: image pixels per level pixel
   */
  tileRange(
    /** @type {number} */ level,
    /** @type {number} */ x0,
    /** @type {number} */ y0,
    /** @type {number} */ x1,
    /** @type {number} */ y1,
  ) {
    const f = 2 ** (this.top - level);
    const span = this.manifest.tile_size * f;
    const [w, h] = this.manifest.level_sizes[level];
    const cols = Math.ceil(w / this.manifest.tile_size);
    const rows = Math.ceil(h / this.manifest.tile_size);
    return {
      c0: Math.max(0, Math.floor(x0 / span)),
      c1: Math.min(cols, Math.ceil(x1 / span)),
      r0: Math.max(0, Math.floor(y0 / span)),
      r1: Math.min(rows, Math.ceil(y1 / span)),
      f,
    };
  }

  /**
   * Draw the visible part: the coarser levels' loaded tiles first, then the chosen level's, so a
   * coarse tile stays until the finer one over it arrives; fetch the chosen level's missing tiles.
   * @param {CanvasRenderingContext2D} ctx set to the image frame (withImageTransform)
   * @param {[number, number, number, number]} visible image rectangle [x0, y0, x1, y1] on screen
   * @param {number} scale screen px per image px
   * @param {number} dpr device pixels per screen px
   */
  draw(ctx, visible, scale, dpr) {
    const level = this.levelFor(scale, dpr);
    const [x0, y0, x1, y1] = visible;
    const now = performance.now();
    /** @type {string[]} */
    const wanted = [];
    let drawn = 0;
    for (let n = Math.max(0, level - FALLBACK_LEVELS); n <= level; n++) {
      const { c0, c1, r0, r1, f } = this.tileRange(n, x0, y0, x1, y1);
      const span = this.manifest.tile_size * f;
      for (let row = r0; row < r1; row++) {
        for (let col = c0; col < c1; col++) {
          const key = `${n}/${col}/${row}`;
          const tile = this.tiles.get(key);
          if (tile?.bitmap) {
            tile.used = now;
            ctx.drawImage(
              tile.bitmap,
              col * span,
              row * span,
              tile.bitmap.width * f,
              tile.bitmap.height * f,
            );
            if (n === level) drawn++;
          } else if (n === level && !tile?.loading && (tile?.retryAt ?? 0) <= now) wanted.push(key);
        }
      }
    }
    this.level = level;
    this.drawnAtLevel = drawn;
    this.wanted = wanted;
    this.pump();
  }

  /** Start fetches for wanted tiles, up to MAX_FETCHES at once. */
  pump() {
    while (this.fetching < MAX_FETCHES && this.wanted.length && !this.closed) {
      const key = /** @type {string} */ (this.wanted.shift());
      const [n, col, row] = key.split("/").map(Number);
      this.load(n, col, row);
    }
  }

  /** Fetch one tile (kept in `tiles`); a 503 (level still being cut) is asked again in 2 s. */
  async load(/** @type {number} */ level, /** @type {number} */ col, /** @type {number} */ row) {
    const key = `${level}/${col}/${row}`;
    /** @type {Tile} */
    const tile = this.tiles.get(key) ?? { bitmap: null, loading: false, retryAt: 0, used: 0 };
    this.tiles.set(key, tile);
    tile.loading = true;
    this.fetching++;
    try {
      const response = await fetch(this.url(level, col, row));
      if (response.status === 503) {
        tile.retryAt = performance.now() + 2000;
        setTimeout(() => this.closed || this.onTile(), 2100);
      } else if (response.ok) {
        const bitmap = await createImageBitmap(await response.blob());
        if (this.closed) bitmap.close();
        else tile.bitmap = bitmap;
      } else tile.retryAt = Infinity; // a 4xx: asking again will not help
    } catch {
      tile.retryAt = performance.now() + 5000;
    } finally {
      tile.loading = false;
      this.fetching--;
    }
    if (this.closed) return;
    this.evict();
    this.onTile();
  }

  /** Fetch one tile now and wait for it (the overview); null when it could not be had. */
  async loadNow(/** @type {number} */ level, /** @type {number} */ col, /** @type {number} */ row) {
    await this.load(level, col, row);
    return this.tiles.get(`${level}/${col}/${row}`)?.bitmap ?? null;
  }

  /** Keep at most MAX_TILES bitmaps: the least recently drawn go (the overview level stays). */
  evict() {
    const loaded = [...this.tiles.entries()].filter(([, t]) => t.bitmap);
    if (loaded.length <= MAX_TILES) return;
    const keep = `${this.overviewLevel()}/`;
    loaded.sort((a, b) => a[1].used - b[1].used);
    for (const [key, tile] of loaded.slice(0, loaded.length - MAX_TILES)) {
      if (key.startsWith(keep)) continue;
      tile.bitmap?.close();
      this.tiles.delete(key);
    }
  }

  close() {
    this.closed = true;
    for (const tile of this.tiles.values()) tile.bitmap?.close();
    this.tiles.clear();
  }
}

/**
 * Open image `imageId`'s pyramid: the manifest, then the overview tile (one bitmap of the whole
 * image, at most one tile large), which the page shows at once and the minimap draws.
 * @param {number} imageId
 * @param {() => void} onTile
 * @returns {Promise<{pyramid: TilePyramid, overview: ImageBitmap | null}>}
 */
export async function openPyramid(imageId, onTile) {
  /** @type {PyramidManifest} */
  const manifest = await api(`/api/images/${imageId}/pyramid`);
  const pyramid = new TilePyramid(manifest, onTile);
  const overview = await pyramid.loadNow(pyramid.overviewLevel(), 0, 0);
  return { pyramid, overview };
}
