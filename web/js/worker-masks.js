// The decoder worker's drawing of stored masks (COCO RLE): their bitmaps for the masks layer, the
// area no mask covers, and low-res logits standing for a mask that is re-opened. No model here.
import { maskToLowRes } from "./postprocess.js";
import { cropMask, paintMask, paintUncovered, parseColor, STYLES } from "./render.js";
import { decodeRle, rleAreaBbox, unionRle } from "./rle.js";
import { layoutFor } from "./worker-context.js";

/** @typedef {import('./worker-protocol.js').BBox} BBox */
/** @typedef {import('./worker-protocol.js').AnnotationBitmap} AnnotationBitmap */
/** @typedef {import('./worker-protocol.js').AnnotationBitmapsRequest} AnnotationBitmapsRequest */
/** @typedef {import('./worker-protocol.js').MaskLogitsRequest} MaskLogitsRequest */
/** @typedef {import('./worker-protocol.js').UncoveredRequest} UncoveredRequest */
/** @typedef {import('./render.js').Style} Style */
/**
 * @template {import('./worker-protocol.js').RequestType} T
 * @typedef {import('./worker-protocol.js').Handled<T>} Handled
 */

const MAX_BITMAP_PIXELS = 4_000_000; // larger annotation bitmaps are subsampled for drawing
const MAX_PROPOSAL_PIXELS = 1_000_000; // proposals come by the hundred on a 32x32 grid: keep them small

/** The subsampling step that keeps a w x h bitmap within `maxPixels`. */
function bitmapStep(
  /** @type {number} */ w,
  /** @type {number} */ h,
  maxPixels = MAX_BITMAP_PIXELS,
) {
  return Math.max(1, Math.ceil(Math.sqrt((w * h) / maxPixels)));
}

/**
 * A mask's bitmap, cropped to its box (and subsampled when large).
 * @param {Uint8Array} mask H x W row-major
 * @param {number} width W
 * @param {BBox} bbox
 * @param {string} color "#rrggbb"
 * @param {Style} [style]
 * @returns {Promise<{bitmap: ImageBitmap, box: BBox}>}
 */
export async function maskBitmap(mask, width, bbox, color, style = STYLES.accepted) {
  const step = bitmapStep(
    bbox[2],
    bbox[3],
    style === STYLES.proposal ? MAX_PROPOSAL_PIXELS : MAX_BITMAP_PIXELS,
  );
  const crop = cropMask(mask, width, bbox, step);
  const rgba = paintMask(crop.mask, crop.w, crop.h, parseColor(color), style);
  return { bitmap: await createImageBitmap(new ImageData(rgba, crop.w, crop.h)), box: bbox };
}

/**
 * Bitmaps of stored annotations (cropped to their boxes) for the annotation layer; `style`
 * "proposal" draws a proposal, anything else an accepted mask.
 * @returns {Promise<Handled<"annotationBitmaps">>}
 */
export async function annotationBitmaps(/** @type {AnnotationBitmapsRequest} */ msg) {
  /** @type {AnnotationBitmap[]} */
  const out = [];
  for (const a of msg.annotations) {
    const mask = decodeRle(a.rle);
    const { area, bbox } = rleAreaBbox(a.rle);
    if (!area) {
      out.push({ id: a.id, bitmap: null, box: bbox });
      continue;
    }
    const drawn = await maskBitmap(
      mask,
      a.rle.size[1],
      bbox,
      a.color,
      STYLES[a.style] ?? STYLES.accepted,
    );
    out.push({ id: a.id, bitmap: drawn.bitmap, box: bbox });
  }
  const transfer = out.flatMap((b) => (b.bitmap ? [b.bitmap] : []));
  return { reply: { bitmaps: out }, transfer };
}

/**
 * Low-res logits standing for a stored mask, to refine an annotation that has no prompts.
 * @returns {Promise<Handled<"maskLogits">>}
 */
export async function maskLogits(/** @type {MaskLogitsRequest} */ msg) {
  const [h, w] = msg.rle.size;
  const lowRes = maskToLowRes(decodeRle(msg.rle), layoutFor([h, w]));
  return { reply: { lowRes }, transfer: [lowRes.buffer] };
}

/**
 * The part of an H x W image that none of the given masks (COCO RLE) covers: its share of the
 * image (exact, full resolution) and an alpha bitmap of it to draw over the whole image.
 * @returns {Promise<Handled<"uncovered">>}
 */
export async function uncovered(/** @type {UncoveredRequest} */ msg) {
  const [h, w] = msg.hw;
  const { mask, area } = unionRle(msg.rles, h, w);
  const crop = cropMask(mask, w, [0, 0, w, h], bitmapStep(w, h));
  const bitmap = await createImageBitmap(
    new ImageData(paintUncovered(crop.mask, crop.w, crop.h), crop.w, crop.h),
  );
  const pixels = h * w;
  return {
    reply: {
      uncoveredPixels: pixels - area,
      pixels,
      fraction: (pixels - area) / pixels,
      bitmap,
      box: [0, 0, w, h],
    },
    transfer: [bitmap],
  };
}
