import assert from "node:assert/strict";
import { test } from "node:test";
import {
  countsToString,
  decodeRle,
  encodeCounts,
  encodeRle,
  rleAreaBbox,
  stringToCounts,
  unionRle,
} from "../js/rle.js";
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
  assert.deepEqual(
    decodeRle({ size: [2, 3], counts: [0, 2, 1, 1, 2] }),
    Uint8Array.from([1, 0, 0, 1, 1, 0]),
  );
  assert.throws(() => decodeRle({ size: [2, 3], counts: [1, 2] }), /covers 3 pixels/);
});

test("unionRle is pycocotools' merge: same pixels, same area", () => {
  const { index } = fixtures();
  for (const c of index.union) {
    const rles = c.counts.map((counts) => ({ size: [c.h, c.w], counts }));
    const { mask, area } = unionRle(rles, c.h, c.w);
    assert.equal(area, c.area, `${c.h}x${c.w} area`);
    assert.equal(encodeRle(mask, c.h, c.w).counts, c.union_counts, `${c.h}x${c.w} union`);
  }
  assert.deepEqual(unionRle([], 2, 3), { mask: new Uint8Array(6), area: 0 });
  assert.throws(() => unionRle([{ size: [3, 2], counts: [6] }], 2, 3), /3x2 on a 2x3 image/);
});

test("decodeRle into a mask adds to what it holds", () => {
  const into = Uint8Array.from([0, 0, 1, 0, 0, 0]);
  assert.equal(decodeRle({ size: [2, 3], counts: [0, 2, 4] }, into), into);
  assert.deepEqual(into, Uint8Array.from([1, 0, 1, 1, 0, 0]));
  assert.throws(
    () => decodeRle({ size: [2, 3], counts: [6] }, new Uint8Array(5)),
    /cannot be merged/,
  );
});
