// 1–10 mask ratings (the SAM paper's scale: 1 nonsense … 10 pixel-perfect): the masks panel's
// menu per accepted mask, and the number keys on the mask whose row the pointer is over
// (0 gives 10). One rating per person per mask; the server keeps who and when.
import { api, routes } from "./api.js";
import { errorText, showError } from "./status.js";
import { invalidate, state } from "./store.js";

/** @typedef {import('./store.js').AnnotationRecord} AnnotationRecord */

/** The scale's anchors, "n — text" lines (the manifest's `rating_scale`, from the server). */
export function scaleText() {
  const scale = /** @type {Record<string, string>} */ (state.manifest?.rating_scale ?? {});
  return Object.entries(scale)
    .map(([n, text]) => `${n} — ${text}`)
    .join("\n");
}

/** The accepted mask whose row the pointer is over in the masks panel (number keys rate it), or null. */
export function ratingTarget() {
  const id = state.highlightId;
  if (id == null) return null;
  const a = state.annotations.find((x) => x.id === id);
  return a && a.status === "accepted" ? a : null;
}

/** Rate `annotation` `rating` (1..10) as this page's person. */
export async function rateMask(
  /** @type {AnnotationRecord} */ annotation,
  /** @type {number} */ rating,
) {
  try {
    const answer = await api(routes.rating(annotation.id), { method: "POST", body: { rating } });
    annotation.rating = { count: answer.count, mean: answer.mean, mine: answer.rating };
  } catch (err) {
    showError(`the rating was not saved: ${errorText(err)}`);
  }
  invalidate("annotations");
}
