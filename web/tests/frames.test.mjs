import assert from "node:assert/strict";
import { test } from "node:test";
import { preprocessShape, xyImageToModel } from "../js/frames.js";
import { fixtures } from "./fixtures.mjs";

test("resized shape uses SAM's rounding", () => {
  assert.deepEqual(preprocessShape(300, 451, 1024), [681, 1024]);
  assert.deepEqual(preprocessShape(2000, 3000, 1024), [683, 1024]);
  assert.deepEqual(preprocessShape(1024, 1024, 1024), [1024, 1024]);
  assert.deepEqual(preprocessShape(7, 5, 1024), [1024, 731]);
});

test("image -> model coordinates are bit-identical to decoder_runtime.xy_image_to_model", () => {
  const { index } = fixtures();
  for (const c of index.frames) {
    c.xy.forEach(([x, y], i) => {
      const [mx, my] = xyImageToModel(x, y, c.h, c.w, index.input_size);
      assert.equal(mx, c.xy_model[i][0], `x of point ${i} on ${c.h}x${c.w}`);
      assert.equal(my, c.xy_model[i][1], `y of point ${i} on ${c.h}x${c.w}`);
    });
  }
});
