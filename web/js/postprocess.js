// SAM's mask postprocess in plain JS: the twin of decoder_runtime.upsample_logits.
//
// SAM upsamples the decoder's low-res logits (256x256) bilinearly to input_size x input_size
// (1024, align_corners=False), crops the un-padded part (newH x newW), resizes that bilinearly
// to the image size (H x W) and thresholds at mask_threshold. Both resizes are separable and
// linear, so one image pixel's logit is a weighted sum of at most 3x3 low-res logits; this
// module computes those weights per image row/column and evaluates any set of image pixels
// directly: all of them when a mask is accepted, only the visible ones (at screen resolution)
// while prompting, which keeps drawing a mask cheap on large images.
import { preprocessShape } from "./frames.js";

const f32 = Math.fround;

/**
 * torch's source index and weights of output index i of a bilinear resize inLen -> outLen.
 * @param {number} i
 * @param {number} inLen
 * @param {number} outLen
 * @returns {[number, number, number, number]} i0, i1, their weights
 */
function linearTap(i, inLen, outLen) {
  const scale = f32(inLen / outLen);
  let src = f32(f32(scale * (i + 0.5)) - 0.5);
  if (src < 0) src = 0;
  const i0 = Math.min(Math.floor(src), inLen - 1);
  const lambda = Math.min(Math.max(f32(src - i0), 0), 1);
  const i1 = i0 < inLen - 1 ? i0 + 1 : i0;
  return [i0, i1, 1 - lambda, lambda];
}

/**
 * Weights of the two chained resizes along one axis, for selected output indices.
 * @param {Int32Array} indices output indices (image pixels) wanted, each in [0, outLen)
 * @param {number} lowLen low-res length (256)
 * @param {number} inputSize 1024
 * @param {number} croppedLen newH or newW
 * @param {number} outLen H or W
 * @returns {{start: Int32Array, weights: Float32Array}} 3 taps per index: low-res start .. start+2
 */
export function axisTaps(indices, lowLen, inputSize, croppedLen, outLen) {
  const n = indices.length;
  const start = new Int32Array(n);
  const weights = new Float32Array(3 * n);
  /** @type {Map<number, [number, number, number, number]>} */
  const stage1 = new Map();
  const tap1 = (/** @type {number} */ a) => {
    let t = stage1.get(a);
    if (t === undefined) stage1.set(a, (t = linearTap(a, lowLen, inputSize)));
    return t;
  };
  const acc = new Float64Array(lowLen);
  for (let k = 0; k < n; k++) {
    const [a0, a1, wa0, wa1] = linearTap(indices[k], croppedLen, outLen);
    const [b00, b01, w00, w01] = tap1(a0);
    const [b10, b11, w10, w11] = tap1(a1);
    const lo = Math.min(Math.max(Math.min(b00, b10), 0), Math.max(lowLen - 3, 0));
    acc[b00] += wa0 * w00;
    acc[b01] += wa0 * w01;
    acc[b10] += wa1 * w10;
    acc[b11] += wa1 * w11;
    start[k] = lo;
    for (let j = 0; j < 3; j++) {
      if (lo + j < lowLen) {
        weights[3 * k + j] = acc[lo + j];
        acc[lo + j] = 0;
      }
    }
    if (acc[b00] || acc[b01] || acc[b10] || acc[b11])
      throw new Error("postprocess: a tap fell outside its 3-wide window");
  }
  return { start, weights };
}

/** Image pixel indices sampled when [lo, hi) is shown with `count` samples (nearest, centres). */
export function sampleIndices(
  /** @type {number} */ lo,
  /** @type {number} */ hi,
  /** @type {number} */ count,
) {
  const out = new Int32Array(count);
  const step = (hi - lo) / count;
  for (let j = 0; j < count; j++) out[j] = Math.min(hi - 1, Math.floor(lo + (j + 0.5) * step));
  return out;
}

/** Every index of [lo, hi). */
export function rangeIndices(/** @type {number} */ lo, /** @type {number} */ hi) {
  const out = new Int32Array(hi - lo);
  for (let j = 0; j < out.length; j++) out[j] = lo + j;
  return out;
}

/**
 * The size and model constants `sampleMask` works with.
 * @typedef {{height: number, width: number, inputSize: number, lowH: number, lowW: number, threshold: number}} MaskLayout
 */

/**
 * The layout `sampleMask` needs for an H x W image (`hw`), from the model manifest.
 * @param {import('./worker-protocol.js').Manifest} manifest
 * @param {import('./worker-protocol.js').HW} hw
 * @returns {MaskLayout}
 */
export function maskLayout(manifest, hw) {
  return {
    height: hw[0],
    width: hw[1],
    inputSize: manifest.input_size,
    lowH: manifest.low_res_mask_size[0],
    lowW: manifest.low_res_mask_size[1],
    threshold: manifest.mask_threshold,
  };
}

/**
 * A mask over a region of the image: `region` {x0, y0, x1, y1, outW, outH} is image pixels
 * [x0, x1) x [y0, y1), every pixel when outW x outH is its size, else sampled to that size.
 * @param {Float32Array} lowRes one candidate's low-res logits
 * @param {MaskLayout} layout
 * @param {import('./worker-protocol.js').Region} region
 * @returns {Uint8Array} outH x outW row-major
 */
export function sampleRegion(lowRes, layout, region) {
  const { xs, ys } = regionIndices(region);
  return sampleMask(lowRes, layout, xs, ys);
}

/**
 * The image columns and rows a region's pixels show: every one when outW x outH is its size,
 * else sampled to that size.
 * @param {import('./worker-protocol.js').Region} region
 * @returns {{xs: Int32Array, ys: Int32Array}}
 */
export function regionIndices({ x0, y0, x1, y1, outW, outH }) {
  const xs = outW === x1 - x0 ? rangeIndices(x0, x1) : sampleIndices(x0, x1, outW);
  const ys = outH === y1 - y0 ? rangeIndices(y0, y1) : sampleIndices(y0, y1, outH);
  return { xs, ys };
}

/**
 * Threshold SAM's upsampled logits at selected image pixels.
 * @param {Float32Array} lowRes one candidate's low-res logits, lowH x lowW row-major
 * @param {MaskLayout} layout
 * @param {Int32Array} xs image columns wanted
 * @param {Int32Array} ys image rows wanted
 * @param {Float32Array} [logitsOut] if given (length ys*xs), receives the logits too
 * @returns {Uint8Array} ys.length x xs.length row-major, 1 where logit > threshold
 */
export function sampleMask(lowRes, layout, xs, ys, logitsOut) {
  const { height, width, inputSize, lowH, lowW, threshold } = layout;
  const [newH, newW] = preprocessShape(height, width, inputSize);
  const cx = axisTaps(xs, lowW, inputSize, newW, width);
  const cy = axisTaps(ys, lowH, inputSize, newH, height);
  const nx = xs.length;
  const ny = ys.length;
  const out = new Uint8Array(nx * ny);
  if (!nx || !ny) return out;
  let rMin = lowH;
  let rMax = 0;
  for (let i = 0; i < ny; i++) {
    rMin = Math.min(rMin, cy.start[i]);
    rMax = Math.max(rMax, Math.min(cy.start[i] + 2, lowH - 1));
  }
  // Horizontal pass over the low-res rows that the wanted image rows touch.
  const rows = rMax - rMin + 1;
  const tmp = new Float32Array(rows * nx);
  const xs0 = cx.start;
  const xw = cx.weights;
  for (let r = 0; r < rows; r++) {
    const base = (r + rMin) * lowW;
    const o = r * nx;
    for (let j = 0; j < nx; j++) {
      const s = base + xs0[j];
      const w = 3 * j;
      tmp[o + j] = xw[w] * lowRes[s] + xw[w + 1] * lowRes[s + 1] + xw[w + 2] * lowRes[s + 2];
    }
  }
  // Vertical pass, thresholded as it goes.
  const yw = cy.weights;
  for (let i = 0; i < ny; i++) {
    const r0 = (cy.start[i] - rMin) * nx;
    const w0 = yw[3 * i];
    const w1 = yw[3 * i + 1];
    const w2 = yw[3 * i + 2];
    const o = i * nx;
    if (logitsOut) {
      for (let j = 0; j < nx; j++) {
        const v = w0 * tmp[r0 + j] + w1 * tmp[r0 + nx + j] + w2 * tmp[r0 + 2 * nx + j];
        logitsOut[o + j] = v;
        out[o + j] = v > threshold ? 1 : 0;
      }
    } else if (w2 === 0) {
      for (let j = 0; j < nx; j++)
        out[o + j] = w0 * tmp[r0 + j] + w1 * tmp[r0 + nx + j] > threshold ? 1 : 0;
    } else {
      for (let j = 0; j < nx; j++) {
        out[o + j] =
          w0 * tmp[r0 + j] + w1 * tmp[r0 + nx + j] + w2 * tmp[r0 + 2 * nx + j] > threshold ? 1 : 0;
      }
    }
  }
  return out;
}

/**
 * The whole H x W mask (row-major) of one candidate: what is saved when a mask is accepted.
 * @param {Float32Array} lowRes
 * @param {MaskLayout} layout
 */
export function fullMask(lowRes, layout) {
  return sampleMask(lowRes, layout, rangeIndices(0, layout.width), rangeIndices(0, layout.height));
}

/**
 * Low-res logits that reproduce a binary mask when fed back as mask_input (re-opening an
 * annotation that has no stored prompts): +/-`magnitude` at each low-res cell's centre pixel.
 * @param {Uint8Array} mask H x W row-major
 * @param {MaskLayout} layout
 */
export function maskToLowRes(mask, layout, magnitude = 10) {
  const { height, width, inputSize, lowH, lowW } = layout;
  const [newH, newW] = preprocessShape(height, width, inputSize);
  const out = new Float32Array(lowH * lowW).fill(-magnitude);
  for (let r = 0; r < lowH; r++) {
    const yModel = (r + 0.5) * (inputSize / lowH);
    if (yModel >= newH) break;
    const y = Math.min(height - 1, Math.floor((yModel * height) / newH));
    for (let c = 0; c < lowW; c++) {
      const xModel = (c + 0.5) * (inputSize / lowW);
      if (xModel >= newW) break;
      const x = Math.min(width - 1, Math.floor((xModel * width) / newW));
      if (mask[y * width + x]) out[r * lowW + c] = magnitude;
    }
  }
  return out;
}
