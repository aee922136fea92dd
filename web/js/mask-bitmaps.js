// The stored masks' bitmaps, made by the decoder worker in their categories' colours (what the
// masks layer draws). Below annotations.js and categories.js: both ask for new bitmaps here.
import { decoder } from "./decoder.js";
import { isProposal } from "./selectors.js";
import { invalidate, state } from "./store.js";

/**
 * (Re)make the bitmaps of some annotations in their category colours.
 * @param {import('./store.js').AnnotationRecord[]} annotations
 * @param {AbortSignal} [signal] the image's: bitmaps for an image no longer open are dropped
 */
export async function drawAnnotations(annotations, signal = state.opened.signal) {
  if (!annotations.length) return;
  /** @type {Map<number | null, string>} */
  const colors = new Map(state.categories.map((c) => [c.id, c.color]));
  const reply = await decoder.request("annotationBitmaps", {
    annotations: annotations.map((a) => ({
      id: a.id,
      rle: a.segmentation,
      color: colors.get(a.category_id) ?? "#888888",
      style: isProposal(a) ? "proposal" : "accepted",
    })),
  });
  if (signal.aborted) {
    reply.bitmaps.forEach((b) => b.bitmap?.close());
    return;
  }
  for (const b of reply.bitmaps) {
    state.drawn.get(b.id)?.bitmap?.close();
    state.drawn.set(b.id, { bitmap: b.bitmap, box: b.box });
  }
  invalidate("masks", "object");
}
