// Coordinate frames of SAM's decoder, the twin of maskloop.exporter.decoder_runtime.
// Image frame: x,y in pixels of the upright (EXIF-applied) image, continuous, [0,W) x [0,H).
// Model frame: the image resized so that its long side is input_size (1024), top-left aligned.

/**
 * [newH, newW] of an image resized to long side inputSize, with SAM's rounding.
 * @param {number} height
 * @param {number} width
 * @param {number} inputSize
 * @returns {[number, number]}
 */
export function preprocessShape(height, width, inputSize) {
  const scale = inputSize / Math.max(height, width);
  return [Math.floor(height * scale + 0.5), Math.floor(width * scale + 0.5)];
}

/**
 * Scale x,y image pixels into the model frame. Computed in float32, as numpy does in
 * xy_image_to_model, so both produce bit-identical decoder inputs.
 * @param {number} x
 * @param {number} y
 * @param {number} height
 * @param {number} width
 * @param {number} inputSize
 * @returns {[number, number]}
 */
export function xyImageToModel(x, y, height, width, inputSize) {
  const [newH, newW] = preprocessShape(height, width, inputSize);
  const f = Math.fround;
  return [f(f(x) * f(newW / width)), f(f(y) * f(newH / height))];
}
