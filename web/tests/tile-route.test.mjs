import assert from "node:assert/strict";
import { test } from "node:test";
import { fullMask, rangeIndices, sampleIndices } from "../js/postprocess.js";
import { promptInRegion, routePrompt, sampleOnRegion, tileGrid } from "../js/tile-route.js";
import { fixtures } from "./fixtures.mjs";

test("prompts are routed to the same region as maskloop/tiles.py routes them", () => {
  const { index } = fixtures();
  assert.ok(index.tiles.length > 100);
  for (const c of index.tiles) {
    const prompt = {
      points: c.points.map(([x, y]) => ({ x, y, label: 1 })),
      box: c.box && { x0: c.box[0], y0: c.box[1], x1: c.box[2], y1: c.box[3] },
    };
    const route = routePrompt(prompt, c.w, c.h, c.tiling);
    assert.deepEqual(route, { kind: c.kind, region: c.region }, JSON.stringify(c));
  }
});

test("a 9000x6000 image has 12x8 tiles of 1024 sharing at least 256 pixels", () => {
  const tiling = { tile: 1024, overlap: 256, threshold: 2048, crop_padding: 0.125 };
  const grid = tileGrid(9000, 6000, tiling);
  assert.equal(grid.length, 12 * 8);
  assert.deepEqual(grid[0], [0, 0, 1024, 1024]);
  assert.deepEqual(grid.at(-1), [7976, 4976, 9000, 6000]);
});

test("a region's mask is placed at its offset in the image, the same pixels as on the region", () => {
  const layoutFor = ([height, width]) => ({
    height,
    width,
    inputSize: 1024,
    lowH: 256,
    lowW: 256,
    threshold: 0,
  });
  const low = new Float32Array(256 * 256);
  for (let r = 0; r < 256; r++)
    for (let c = 0; c < 256; c++) low[r * 256 + c] = 40 - Math.hypot(r - 100, c - 60);
  const region = /** @type {[number, number, number, number]} */ ([3000, 2000, 4024, 3024]);
  const onRegion = fullMask(low, layoutFor([1024, 1024]));
  const xs = rangeIndices(2900, 4100);
  const ys = rangeIndices(1950, 3050);
  const placed = sampleOnRegion(low, layoutFor, region, xs, ys);
  for (let j = 0; j < ys.length; j++)
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i] - 3000;
      const y = ys[j] - 2000;
      const want = x >= 0 && x < 1024 && y >= 0 && y < 1024 ? onRegion[y * 1024 + x] : 0;
      assert.equal(placed[j * xs.length + i], want);
    }
  // subsampled (a zoomed-out view) too
  const sx = sampleIndices(0, 9000, 900);
  const sy = sampleIndices(0, 6000, 600);
  const coarse = sampleOnRegion(low, layoutFor, region, sx, sy);
  assert.ok(coarse.some((v) => v === 1));
  const shifted = promptInRegion({ points: [{ x: 3100, y: 2100, label: 1 }], box: null }, region);
  assert.deepEqual(shifted.points[0], { x: 100, y: 100, label: 1 });
});
