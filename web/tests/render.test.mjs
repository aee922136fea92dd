import assert from "node:assert/strict";
import { test } from "node:test";
import { cropMask, paintMask, parseColor } from "../js/render.js";

test("fill inside, opaque outline at the mask's edge, nothing outside", () => {
  const w = 5, h = 5;
  const mask = new Uint8Array(w * h);
  for (let y = 1; y < 4; y++) for (let x = 1; x < 4; x++) mask[y * w + x] = 1;
  const rgba = paintMask(mask, w, h, parseColor("#ff8000"), { fillAlpha: 0.5, edge: null, edgeAlpha: 1 });
  const px = (x, y) => Array.from(rgba.slice(4 * (y * w + x), 4 * (y * w + x) + 4));
  assert.deepEqual(px(0, 0), [0, 0, 0, 0]);
  assert.deepEqual(px(1, 1), [255, 128, 0, 255]);
  assert.deepEqual(px(2, 2), [255, 128, 0, 128]);
  const white = paintMask(mask, w, h, parseColor("#ff8000"), { fillAlpha: 0.5, edge: [255, 255, 255], edgeAlpha: 1 });
  assert.deepEqual(Array.from(white.slice(4 * 6, 4 * 6 + 4)), [255, 255, 255, 255]);
});

test("crop with subsampling", () => {
  const mask = Uint8Array.from({ length: 16 }, (_, i) => i % 2);
  const c = cropMask(mask, 4, [1, 0, 3, 4], 2);
  assert.deepEqual([c.w, c.h], [2, 2]);
  assert.deepEqual(Array.from(c.mask), [1, 1, 1, 1]);
});
