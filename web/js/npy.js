// Parse NumPy .npy files (format versions 1-3) into typed arrays.
// The server sends image embeddings as little-endian float16 .npy; onnxruntime-web takes
// float16 tensors as raw Uint16Array bits, so no conversion happens here.

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

/**
 * dtype name (onnxruntime-web's spelling) and typed-array constructor per little-endian descr.
 * @type {Record<string, [string, Uint16ArrayConstructor | Float32ArrayConstructor | Float64ArrayConstructor | Uint8ArrayConstructor | Int32ArrayConstructor]>}
 */
const DTYPES = {
  "<f2": ["float16", Uint16Array],
  "<f4": ["float32", Float32Array],
  "<f8": ["float64", Float64Array],
  "|u1": ["uint8", Uint8Array],
  "|b1": ["bool", Uint8Array],
  "<i4": ["int32", Int32Array],
  "<u2": ["uint16", Uint16Array],
};

/**
 * A parsed .npy file.
 * @typedef {{dtype: string, shape: number[], fortranOrder: boolean, data: Uint16Array | Float32Array | Float64Array | Uint8Array | Int32Array}} Npy
 */

/**
 * Parse one .npy file.
 * @param {ArrayBuffer} buffer the whole file
 * @returns {Npy} data is a view on buffer when aligned, else a copy; its length is the product
 *   of shape.
 */
export function parseNpy(buffer) {
  const bytes = new Uint8Array(buffer);
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new Error("not a .npy file (the magic string \\x93NUMPY is missing)");
  }
  const major = bytes[6];
  const view = new DataView(buffer);
  let headerLen, offset;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    offset = 10;
  } else if (major === 2 || major === 3) {
    headerLen = view.getUint32(8, true);
    offset = 12;
  } else {
    throw new Error(`unsupported .npy format version ${major}`);
  }
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(
    bytes.subarray(offset, offset + headerLen),
  );
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new Error(`cannot read the .npy header: ${header.trim()}`);
  }
  if (!(descr in DTYPES))
    throw new Error(`unsupported .npy dtype ${descr} (expected little-endian float16/float32)`);
  const shape = shapeText
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length)
    .map(Number);
  const [dtype, Ctor] = DTYPES[descr];
  const count = shape.reduce((a, b) => a * b, 1);
  const dataOffset = offset + headerLen;
  const need = count * Ctor.BYTES_PER_ELEMENT;
  if (buffer.byteLength - dataOffset < need) {
    throw new Error(
      `truncated .npy file: ${buffer.byteLength - dataOffset} data bytes, ${need} expected for shape (${shape})`,
    );
  }
  const data =
    dataOffset % Ctor.BYTES_PER_ELEMENT === 0
      ? new Ctor(buffer, dataOffset, count)
      : new Ctor(buffer.slice(dataOffset, dataOffset + need));
  return { dtype, shape, fortranOrder: fortran === "True", data };
}

/** float16 bits -> number (for tests and checks; the decoder takes the bits as they are). */
export function halfToFloat(/** @type {number} */ h) {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}
