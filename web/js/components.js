// Connected parts of a binary mask and the clean-ups built on them (issue 23): fill small holes,
// drop small islands, keep the largest part. Pure; runs in the decoder worker on full-resolution
// masks. Parts of the mask are 8-connected and holes 4-connected (so that a diagonal gap between
// two parts is no hole, and a hole's outline is a closed part), as in OpenCV's and
// scikit-image's conventions; a region of background that touches the image's border is no hole.

/** @typedef {"fillHoles" | "dropIslands" | "keepLargest"} CleanupOp */

/**
 * Label the connected regions of pixels equal to `value`.
 * @param {Uint8Array} mask h x w row-major, 0 / 1
 * @param {number} w
 * @param {number} h
 * @param {0 | 1} value
 * @param {boolean} eight 8-connectivity (else 4)
 * @returns {{labels: Int32Array, areas: number[], border: boolean[]}} labels: 0 elsewhere, else
 *   1 + the region's index into areas / border (border: it touches the image's edge)
 */
export function regions(mask, w, h, value, eight) {
  const labels = new Int32Array(w * h);
  /** @type {number[]} */
  const areas = [];
  /** @type {boolean[]} */
  const border = [];
  const stack = new Int32Array(w * h);
  let top = 0;
  let label = 0;
  const push = (/** @type {number} */ j) => {
    if (mask[j] !== value || labels[j]) return;
    labels[j] = label;
    stack[top++] = j;
  };
  for (let seed = 0; seed < w * h; seed++) {
    if (mask[seed] !== value || labels[seed]) continue;
    label = areas.length + 1;
    let area = 0;
    let edge = false;
    push(seed);
    while (top) {
      const i = stack[--top];
      area++;
      const x = i % w;
      const y = (i - x) / w;
      const left = x > 0;
      const right = x < w - 1;
      const up = y > 0;
      const down = y < h - 1;
      if (!(left && right && up && down)) edge = true;
      if (left) push(i - 1);
      if (right) push(i + 1);
      if (up) push(i - w);
      if (down) push(i + w);
      if (!eight) continue;
      if (up && left) push(i - w - 1);
      if (up && right) push(i - w + 1);
      if (down && left) push(i + w - 1);
      if (down && right) push(i + w + 1);
    }
    areas.push(area);
    border.push(edge);
  }
  return { labels, areas, border };
}

/**
 * Apply a clean-up to a mask in place: "fillHoles" fills enclosed background regions smaller
 * than `minArea` pixels, "dropIslands" clears parts smaller than `minArea`, "keepLargest" clears
 * every part but the largest (`minArea` unused). Returns how many pixels changed.
 * @param {Uint8Array} mask h x w row-major
 * @param {number} w
 * @param {number} h
 * @param {CleanupOp} op
 * @param {number} minArea
 */
export function cleanMask(mask, w, h, op, minArea) {
  const hole = op === "fillHoles";
  const { labels, areas, border } = regions(mask, w, h, hole ? 0 : 1, !hole);
  let largest = 0;
  for (let k = 1; k < areas.length; k++) if (areas[k] > areas[largest]) largest = k;
  /** @type {boolean[]} whether region k changes */
  const change = areas.map((area, k) =>
    hole ? !border[k] && area < minArea : op === "dropIslands" ? area < minArea : k !== largest,
  );
  let changed = 0;
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i];
    if (label && change[label - 1]) {
      mask[i] = hole ? 1 : 0;
      changed++;
    }
  }
  return changed;
}
