import assert from "node:assert/strict";
import { test } from "node:test";
import { describe, isSlow, median } from "../js/status-line.js";

const base = {
  decoder: "ready",
  image: "ready",
  progress: null,
  last: null,
  maskMs: null,
  slow: false,
  text: "",
  level: "",
};

test("a mask is slow only against enough of this session's own masks", () => {
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(isSlow(900, [40, 50, 60]), false); // too few to know what is usual
  assert.equal(isSlow(170, [40, 50, 60, 50, 45]), true); // > 3 x 50
  assert.equal(isSlow(140, [10, 10, 10, 10, 10]), false); // under the floor
  assert.equal(isSlow(250, [100, 100, 90, 110, 100]), false); // 2.5 x the median
});

test("the line speaks a person's language and is red only for trouble", () => {
  assert.deepEqual(describe(base), ["Ready", ""]);
  assert.deepEqual(describe({ ...base, image: "computing" }), ["Computing this image…", "busy"]);
  assert.deepEqual(describe({ ...base, image: "computing", progress: 0.4 }), [
    "Computing this image… 40%",
    "busy",
  ]);
  assert.deepEqual(describe({ ...base, last: "mask", maskMs: 45.4 }), ["Mask in 45 ms", ""]);
  assert.equal(describe({ ...base, last: "mask", maskMs: 900, slow: true })[1], "bad");
  assert.equal(describe({ ...base, decoder: "failed" })[1], "bad");
  assert.equal(describe({ ...base, last: "unsaved" })[1], "bad");
  assert.deepEqual(describe({ ...base, last: "saved" }), ["Saved", "ok"]);
});
