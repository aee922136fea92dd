import assert from "node:assert/strict";
import { test } from "node:test";
import { halfToFloat, parseNpy } from "../js/npy.js";

/** A .npy v1 file as numpy writes it (header padded so the data starts at a multiple of 64). */
function makeNpy(descr, shape, bytes) {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += " ".repeat(pad % 64) + "\n";
  const out = new Uint8Array(10 + header.length + bytes.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(bytes, 10 + header.length);
  return out.buffer;
}

test("float16 embedding-shaped array keeps its raw bits", () => {
  const bits = new Uint16Array([0x3c00, 0xc000, 0x0000, 0x7bff, 0x0001, 0x8000]); // 1, -2, 0, 65504, 2^-24, -0
  const parsed = parseNpy(makeNpy("<f2", [1, 2, 3], new Uint8Array(bits.buffer)));
  assert.equal(parsed.dtype, "float16");
  assert.deepEqual(parsed.shape, [1, 2, 3]);
  assert.equal(parsed.fortranOrder, false);
  assert.ok(parsed.data instanceof Uint16Array);
  assert.deepEqual(Array.from(parsed.data), Array.from(bits));
  assert.deepEqual(Array.from(parsed.data, halfToFloat), [1, -2, 0, 65504, 2 ** -24, -0]);
});

test("float32 and 1-d shapes", () => {
  const values = new Float32Array([1.5, -3.25, 1e-3]);
  const parsed = parseNpy(makeNpy("<f4", [3], new Uint8Array(values.buffer)));
  assert.equal(parsed.dtype, "float32");
  assert.deepEqual(parsed.shape, [3]);
  assert.deepEqual(Array.from(parsed.data), Array.from(values));
});

test("bad files are refused with a reason", () => {
  assert.throws(() => parseNpy(new ArrayBuffer(4)), /not a .npy file/);
  const truncated = makeNpy("<f4", [10], new Uint8Array(8));
  assert.throws(() => parseNpy(truncated), /truncated/);
  assert.throws(() => parseNpy(makeNpy(">f4", [1], new Uint8Array(4))), /unsupported .npy dtype/);
});
