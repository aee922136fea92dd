// COCO run-length encoding, as pycocotools writes it.
// pycocotools is C + Python and does not run in a browser, so its encoder is re-written here:
// runs over the mask in column-major (Fortran) order, starting with a run of zeros, then
// rleToString's compact text form (5 bits per char, deltas against the run two back).

/** @typedef {import('./worker-protocol.js').Rle} Rle */
/** @typedef {{size: [number, number], counts: string | number[]}} AnyRle compressed or not */

/**
 * Run lengths of a row-major H x W mask read in column-major order (what maskUtils.encode
 * does with a Fortran-ordered array). The first run counts zeros (it may be 0).
 * @param {Uint8Array} mask H x W, row-major, nonzero = inside
 * @param {number} height
 * @param {number} width
 * @returns {number[]} counts
 */
export function encodeCounts(mask, height, width) {
  /** @type {number[]} */
  const counts = [];
  let current = 0;
  let run = 0;
  for (let x = 0; x < width; x++) {
    for (let i = x, end = x + height * width; i < end; i += width) {
      const v = mask[i] ? 1 : 0;
      if (v === current) run++;
      else {
        counts.push(run);
        current = v;
        run = 1;
      }
    }
  }
  counts.push(run);
  return counts;
}

/** pycocotools' rleToString: counts -> the compressed "counts" string of COCO JSON. */
export function countsToString(/** @type {number[]} */ counts) {
  let s = "";
  for (let i = 0; i < counts.length; i++) {
    let x = counts[i];
    if (i > 2) x -= counts[i - 2];
    let more = true;
    while (more) {
      let c = x & 0x1f;
      x >>= 5; // arithmetic shift, as C's on a signed long (|x| < 2^31 for any real image)
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      s += String.fromCharCode(c + 48);
    }
  }
  return s;
}

/** pycocotools' rleFrString: the compressed "counts" string -> counts. */
export function stringToCounts(/** @type {string} */ s) {
  /** @type {number[]} */
  const counts = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length) throw new Error("RLE string ends in the middle of a number");
      const c = s.charCodeAt(p) - 48;
      x += (c & 0x1f) * 2 ** (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && c & 0x10) x -= 2 ** (5 * k); // sign-extend
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

/**
 * {size: [H, W], counts: string} of a row-major mask: COCO compressed RLE.
 * @param {Uint8Array} mask
 * @param {number} height
 * @param {number} width
 * @returns {Rle}
 */
export function encodeRle(mask, height, width) {
  return { size: [height, width], counts: countsToString(encodeCounts(mask, height, width)) };
}

/**
 * Decode COCO RLE (compressed string or uncompressed counts array) to a row-major mask.
 * @param {AnyRle} rle
 * @param {Uint8Array} [into] H x W row-major mask to set the RLE's pixels in (the union with
 *   what it holds, as pycocotools' merge); a new zero mask when not given
 * @returns {Uint8Array} H x W
 */
export function decodeRle(rle, into) {
  const [height, width] = rle.size;
  const counts = typeof rle.counts === "string" ? stringToCounts(rle.counts) : rle.counts;
  if (into && into.length !== height * width)
    throw new Error(
      `RLE of ${height}x${width} cannot be merged into a mask of ${into.length} pixels`,
    );
  const mask = into ?? new Uint8Array(height * width);
  let pos = 0;
  for (let k = 0; k < counts.length; k++) {
    const n = counts[k];
    if (k & 1 && n > 0) {
      let x = Math.floor(pos / height);
      let y = pos - x * height;
      for (let t = 0; t < n; t++) {
        mask[y * width + x] = 1;
        if (++y === height) {
          y = 0;
          x++;
        }
      }
    }
    pos += n;
  }
  if (pos !== height * width)
    throw new Error(`RLE covers ${pos} pixels, the image has ${height * width}`);
  return mask;
}

/**
 * The union of several RLEs of one H x W image (pycocotools' merge), row-major.
 * @param {AnyRle[]} rles
 * @param {number} height
 * @param {number} width
 * @returns {{mask: Uint8Array, area: number}} area: pixels covered by any of them
 */
export function unionRle(rles, height, width) {
  const mask = new Uint8Array(height * width);
  for (const rle of rles) {
    if (rle.size[0] !== height || rle.size[1] !== width)
      throw new Error(`RLE of ${rle.size.join("x")} on a ${height}x${width} image`);
    decodeRle(rle, mask);
  }
  let area = 0;
  for (let i = 0; i < mask.length; i++) area += mask[i];
  return { mask, area };
}

/**
 * Area and [x, y, w, h] box of an RLE, as pycocotools' area/toBbox compute them.
 * @param {AnyRle} rle
 * @returns {{area: number, bbox: [number, number, number, number]}}
 */
export function rleAreaBbox(rle) {
  const [height] = rle.size;
  const counts = typeof rle.counts === "string" ? stringToCounts(rle.counts) : rle.counts;
  let area = 0;
  let pos = 0;
  let xMin = Infinity,
    yMin = Infinity,
    xMax = -1,
    yMax = -1;
  for (let k = 0; k < counts.length; k++) {
    const n = counts[k];
    if (k & 1 && n > 0) {
      area += n;
      const first = pos;
      const last = pos + n - 1;
      const x0 = Math.floor(first / height);
      const x1 = Math.floor(last / height);
      xMin = Math.min(xMin, x0);
      xMax = Math.max(xMax, x1);
      if (x0 !== x1) {
        yMin = 0;
        yMax = height - 1;
      } else {
        yMin = Math.min(yMin, first - x0 * height);
        yMax = Math.max(yMax, last - x0 * height);
      }
    }
    pos += n;
  }
  if (!area) return { area: 0, bbox: [0, 0, 0, 0] };
  return { area, bbox: [xMin, yMin, xMax - xMin + 1, yMax - yMin + 1] };
}
