// Review (reviewer and admin roles, accounts on): the finished images waiting for review, taking
// one (POST /api/work/review/<id>), deciding on single masks (POST /api/annotations/<id>/review)
// and on the image (POST /api/images/<id>/review): accepted, or sent back to its annotator with a
// reason. A correction is an ordinary edit of the mask (annotations.js reopen, accept.js saves
// it), which the server records as the reviewer's.
import { api, routes } from "./api.js";
import { loadAnnotations } from "./annotations.js";
import { refreshImages } from "./image-list.js";
import { waitingForReview } from "./selectors.js";
import { errorText, showError, stageMessage } from "./status.js";
import { invalidate, openedImage, state } from "./store.js";
import { openHeld } from "./team.js";

export const NONE_WAITING = "No finished image is waiting for review.";

/** Take image `id` for review and open it. */
export async function openForReview(/** @type {number} */ id) {
  let answer;
  try {
    answer = await api(routes.takeReview(id), { method: "POST" });
  } catch (err) {
    showError(`cannot review this image: ${errorText(err)}`);
    await refreshImages();
    return;
  }
  await openHeld(answer.image, true);
}

/** Accept or reject (with a reason) one mask of the image under review. */
export async function decideMask(
  /** @type {import('./store.js').AnnotationRecord} */ annotation,
  /** @type {string} */ decision,
  /** @type {string | undefined} */ reason,
) {
  try {
    const saved = await api(routes.reviewMask(annotation.id), {
      method: "POST",
      body: reason ? { decision, reason } : { decision },
    });
    Object.assign(annotation, saved);
  } catch (err) {
    showError(`the mask's review was not saved: ${errorText(err)}`);
  }
  invalidate("annotations");
}

/** Accept the image under review (masks not decided one by one are accepted) or send it back
 * with a reason; then open the next image waiting for review. */
export async function decideImage(/** @type {string} */ decision, /** @type {string} */ reason) {
  const id = state.team?.held;
  if (!state.team?.reviewing || id !== state.image?.id) {
    showError("open an image from the review list first");
    return;
  }
  try {
    await api(routes.reviewImage(/** @type {number} */ (id)), {
      method: "POST",
      body: reason ? { decision, reason } : { decision },
    });
  } catch (err) {
    showError(`the review was not saved: ${errorText(err)}`);
    return;
  }
  state.team.held = null; // the decision released it
  state.team.reviewing = false;
  await refreshImages();
  const next = waitingForReview()[0];
  if (next) await openForReview(next.id);
  else {
    invalidate("team");
    await loadAnnotations(openedImage(), state.opened.signal); // the decisions, shown
    stageMessage(NONE_WAITING);
  }
}
