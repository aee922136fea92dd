import assert from "node:assert/strict";
import { test } from "node:test";
import { cropMask, paintMask, paintUncovered, parseColor, STYLES } from "../js/render.js";

test("fill inside, opaque outline at the mask's edge, nothing outside", () => {
  const w = 5,
    h = 5;
  const mask = new Uint8Array(w * h);
  for (let y = 1; y < 4; y++) for (let x = 1; x < 4; x++) mask[y * w + x] = 1;
  const rgba = paintMask(mask, w, h, parseColor("#ff8000"), {
    fillAlpha: 0.5,
    edge: null,
    edgeAlpha: 1,
  });
  const px = (x, y) => Array.from(rgba.slice(4 * (y * w + x), 4 * (y * w + x) + 4));
  assert.deepEqual(px(0, 0), [0, 0, 0, 0]);
  assert.deepEqual(px(1, 1), [255, 128, 0, 255]);
  assert.deepEqual(px(2, 2), [255, 128, 0, 128]);
  const white = paintMask(mask, w, h, parseColor("#ff8000"), {
    fillAlpha: 0.5,
    edge: [255, 255, 255],
    edgeAlpha: 1,
  });
  assert.deepEqual(Array.from(white.slice(4 * 6, 4 * 6 + 4)), [255, 255, 255, 255]);
});

test("crop with subsampling", () => {
  const mask = Uint8Array.from({ length: 16 }, (_, i) => i % 2);
  const c = cropMask(mask, 4, [1, 0, 3, 4], 2);
  assert.deepEqual([c.w, c.h], [2, 2]);
  assert.deepEqual(Array.from(c.mask), [1, 1, 1, 1]);
});

test("proposals: neutral fill whatever the colour, dashed two-colour outline", () => {
  const w = 12,
    h = 12;
  const mask = new Uint8Array(w * h);
  for (let y = 0; y < 12; y++)
    for (let x = 0; x < 12; x++) mask[y * w + x] = x >= 1 && x <= 10 && y >= 1 && y <= 10 ? 1 : 0;
  const rgba = paintMask(mask, w, h, parseColor("#ff0000"), STYLES.proposal);
  const px = (x, y) => Array.from(rgba.slice(4 * (y * w + x), 4 * (y * w + x) + 4));
  assert.deepEqual(px(5, 5), [235, 235, 235, 82]);
  const top = Array.from({ length: 10 }, (_, k) => px(k + 1, 1)[0]);
  assert.ok(top.includes(255) && top.includes(0), `the outline is not dashed: ${top}`);
  assert.deepEqual(px(0, 0), [0, 0, 0, 0]);
});

test("uncovered pixels are opaque, covered ones transparent", () => {
  const rgba = paintUncovered(Uint8Array.from([1, 0, 0, 1]), 2, 2);
  assert.deepEqual(Array.from(rgba.filter((_, i) => i % 4 === 3)), [0, 255, 255, 0]);
});

test("the current mask's outline is two-tone: white at the edge, black just inside", () => {
  const w = 9;
  const h = 9;
  const mask = new Uint8Array(w * h);
  for (let y = 1; y < 8; y++) for (let x = 1; x < 8; x++) mask[y * w + x] = 1;
  const rgba = paintMask(mask, w, h, parseColor("#ff0000"), STYLES.current);
  const at = (x, y) => Array.from(rgba.slice((y * w + x) * 4, (y * w + x) * 4 + 4));
  assert.deepEqual(at(1, 4), [255, 255, 255, 255]); // the edge
  assert.deepEqual(at(2, 4), [0, 0, 0, 255]); // the ring inside it
  assert.deepEqual(at(4, 4), [255, 0, 0, Math.round(0.5 * 255)]); // the fill
  assert.deepEqual(at(0, 4), [0, 0, 0, 0]); // outside
});

test("an accepted mask's outline is black at the edge and its category's colour inside", () => {
  const w = 9;
  const h = 9;
  const mask = new Uint8Array(w * h);
  for (let y = 1; y < 8; y++) for (let x = 1; x < 8; x++) mask[y * w + x] = 1;
  const rgba = paintMask(mask, w, h, parseColor("#1e90ff"), STYLES.accepted);
  const at = (x, y) => Array.from(rgba.slice((y * w + x) * 4, (y * w + x) * 4 + 4));
  assert.deepEqual(at(1, 4), [0, 0, 0, 255]);
  assert.deepEqual(at(2, 4), [30, 144, 255, 255]);
  assert.deepEqual(at(3, 4), [30, 144, 255, 255]); // a ring two pixels wide
  assert.deepEqual(at(4, 4), [30, 144, 255, Math.round(0.42 * 255)]);
});
