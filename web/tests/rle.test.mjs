import assert from "node:assert/strict";
import { test } from "node:test";
import { countsToString, decodeRle, encodeCounts, encodeRle, rleAreaBbox, stringToCounts } from "../js/rle.js";
import { fixtures } from "./fixtures.mjs";

test("encodeRle gives pycocotools' compressed string, area and bbox", () => {
  const { index, npy } = fixtures();
  for (const c of index.rle) {
    const mask = npy(c.mask).data;
    const rle = encodeRle(mask, c.h, c.w);
    assert.deepEqual(rle.size, [c.h, c.w]);
    assert.equal(rle.counts, c.counts, `${c.mask}`);
    const { area, bbox } = rleAreaBbox(rle);
    assert.equal(area, c.area, `${c.mask} area`);
    assert.deepEqual(bbox, c.bbox, `${c.mask} bbox`);
  }
});

test("decodeRle inverts pycocotools' strings", () => {
  const { index, npy } = fixtures();
  for (const c of index.rle.filter((r) => r.h * r.w < 10 ** 6)) {
    assert.deepEqual(decodeRle({ size: [c.h, c.w], counts: c.counts }), npy(c.mask).data, c.mask);
  }
});

test("counts strings round-trip, including large and negative deltas", () => {
  const counts = [0, 5, 1, 2 ** 24, 3, 1, 2 ** 30, 7, 0, 1];
  assert.deepEqual(stringToCounts(countsToString(counts)), counts);
  assert.equal(countsToString([6]), "6"); // pycocotools: an all-zero 2x3 mask
});

test("column-major runs start with zeros", () => {
  // 2x3, row-major [[1,0,0],[1,1,0]] -> column-major 1,1,0,1,0,0
  assert.deepEqual(encodeCounts(Uint8Array.from([1, 0, 0, 1, 1, 0]), 2, 3), [0, 2, 1, 1, 2]);
  assert.deepEqual(decodeRle({ size: [2, 3], counts: [0, 2, 1, 1, 2] }), Uint8Array.from([1, 0, 0, 1, 1, 0]));
  assert.throws(() => decodeRle({ size: [2, 3], counts: [1, 2] }), /covers 3 pixels/);
});
