import assert from "node:assert/strict";
import { test } from "node:test";
import { View } from "../js/view.js";

const close = (a, b, eps = 1e-9) => assert.ok(Math.abs(a - b) < eps, `${a} != ${b}`);

test("fit centres the image and maps corners exactly", () => {
  const v = View.fit(3000, 2000, 1000, 800, 0);
  close(v.scale, 1000 / 3000);
  const [sx, sy] = v.imageToScreen(0, 0);
  close(sx, 0);
  close(sy, (800 - 2000 / 3) / 2);
  const [x, y] = v.screenToImage(...v.imageToScreen(1234.5, 987.25));
  close(x, 1234.5);
  close(y, 987.25);
});

test("zooming keeps the image point under the cursor in place", () => {
  let v = View.fit(451, 300, 800, 600);
  const [px, py] = v.screenToImage(321, 222);
  for (const f of [2, 1.7, 3, 0.4]) {
    v = v.zoomedAt(321, 222, f);
    const [qx, qy] = v.screenToImage(321, 222);
    close(qx, px, 1e-9);
    close(qy, py, 1e-9);
  }
  const p = v.panned(10, -5);
  const [a, b] = p.screenToImage(331, 217);
  close(a, px, 1e-9);
  close(b, py, 1e-9);
});

test("visible region: clipped to the image, one sample per image pixel when zoomed in", () => {
  const zoomedIn = new View(4, -400, -200); // image x 100..300, y 50..200 in an 800x600 view
  assert.deepEqual(zoomedIn.visibleRegion(451, 300, 800, 600), {
    x0: 100,
    y0: 50,
    x1: 300,
    y1: 200,
    outW: 200,
    outH: 150,
  });
  const zoomedOut = View.fit(3000, 2000, 1000, 800, 0);
  const r = zoomedOut.visibleRegion(3000, 2000, 1000, 800, 1);
  assert.deepEqual([r.x0, r.y0, r.x1, r.y1], [0, 0, 3000, 2000]);
  assert.equal(r.outW, 1000);
  assert.equal(new View(1, 5000, 0).visibleRegion(100, 100, 800, 600), null);
});
