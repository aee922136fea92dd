import assert from "node:assert/strict";
import { test } from "node:test";
import { cleanMask } from "../js/components.js";
import { fixtures } from "./fixtures.mjs";

test("clean-ups agree with OpenCV's connected components", () => {
  const { index, npy } = fixtures();
  for (const c of index.cleanup) {
    for (const [op, expected] of [
      ["dropIslands", c.drop_islands],
      ["fillHoles", c.fill_holes],
      ["keepLargest", c.keep_largest],
    ]) {
      const mask = new Uint8Array(npy(c.mask).data);
      const want = npy(expected).data;
      const changed = cleanMask(mask, c.w, c.h, op, c.limit);
      assert.deepEqual(Array.from(mask), Array.from(want), `${c.mask} ${op}`);
      const before = npy(c.mask).data;
      assert.equal(
        changed,
        before.reduce((n, v, i) => n + (v !== want[i] ? 1 : 0), 0),
      );
    }
  }
});

test("a mask with nothing to clean is left alone", () => {
  const mask = new Uint8Array([0, 0, 0, 0, 1, 1, 0, 1, 1]);
  assert.equal(cleanMask(mask, 3, 3, "keepLargest", 0), 0);
  assert.equal(cleanMask(mask, 3, 3, "fillHoles", 100), 0); // the background touches the border
  assert.equal(cleanMask(new Uint8Array(4), 2, 2, "keepLargest", 0), 0);
});
