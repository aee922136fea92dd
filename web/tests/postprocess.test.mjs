import assert from "node:assert/strict";
import { test } from "node:test";
import {
  fullMask,
  maskToLowRes,
  rangeIndices,
  sampleIndices,
  sampleMask,
} from "../js/postprocess.js";
import { fixtures } from "./fixtures.mjs";

const layoutOf = (c) => ({
  height: c.h,
  width: c.w,
  inputSize: 1024,
  lowH: 256,
  lowW: 256,
  threshold: 0,
});

test("full-resolution masks equal SAM's postprocess (torch) wherever the logit is not ~0", () => {
  const { index, npy } = fixtures();
  for (const c of index.postprocess) {
    const low = npy(c.low).data;
    const want = npy(c.logits).data;
    const logits = new Float32Array(c.h * c.w);
    const mask = sampleMask(low, layoutOf(c), rangeIndices(0, c.w), rangeIndices(0, c.h), logits);
    let maxDiff = 0;
    let flips = 0;
    for (let i = 0; i < want.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(logits[i] - want[i]));
      if (mask[i] !== (want[i] > 0 ? 1 : 0) && Math.abs(want[i]) > 1e-4) flips++;
    }
    assert.ok(maxDiff < 1e-4, `${c.h}x${c.w}: max logit difference ${maxDiff}`);
    assert.equal(flips, 0, `${c.h}x${c.w}: ${flips} pixels differ`);
    assert.deepEqual(fullMask(low, layoutOf(c)), mask);
  }
});

test("a visible region sampled at screen resolution picks the same pixels as the full mask", () => {
  const { index, npy } = fixtures();
  const c = index.postprocess.find((p) => p.h === 2000);
  const low = npy(c.low).data;
  const full = fullMask(low, layoutOf(c));
  const xs = sampleIndices(700, 2900, 640);
  const ys = sampleIndices(100, 1500, 410);
  const region = sampleMask(low, layoutOf(c), xs, ys);
  for (let i = 0; i < ys.length; i++) {
    for (let j = 0; j < xs.length; j++) {
      assert.equal(
        region[i * xs.length + j],
        full[ys[i] * c.w + xs[j]],
        `pixel (${xs[j]}, ${ys[i]})`,
      );
    }
  }
});

test("sample indices are pixel centres inside the range", () => {
  assert.deepEqual(Array.from(sampleIndices(0, 10, 5)), [1, 3, 5, 7, 9]);
  assert.deepEqual(Array.from(sampleIndices(3, 6, 3)), [3, 4, 5]);
  assert.deepEqual(Array.from(rangeIndices(2, 5)), [2, 3, 4]);
});

test("a stored mask turned back into low-res logits reproduces itself", () => {
  const layout = { height: 300, width: 451, inputSize: 1024, lowH: 256, lowW: 256, threshold: 0 };
  const mask = new Uint8Array(300 * 451);
  for (let y = 60; y < 240; y++) for (let x = 100; x < 350; x++) mask[y * 451 + x] = 1;
  const again = fullMask(maskToLowRes(mask, layout), layout);
  let inter = 0,
    union = 0;
  for (let i = 0; i < mask.length; i++) {
    inter += mask[i] & again[i];
    union += mask[i] | again[i];
  }
  assert.ok(inter / union > 0.97, `IoU ${inter / union}`);
});
