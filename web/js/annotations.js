// The current image's stored masks: loading and drawing them, changing, deleting and re-opening
// one, and the area no accepted mask covers.
import { api, routes } from "./api.js";
import { refreshCategories } from "./categories.js";
import { decoder } from "./decoder.js";
import { refreshImages } from "./image-list.js";
import { drawAnnotations } from "./mask-bitmaps.js";
import { promptFromJson } from "./prompts.js";
import { cursorProposal, proposalsInOrder } from "./selectors.js";
import { clearObject, startObjectClock } from "./session.js";
import { $, errorText, showError, stageMessage } from "./status.js";
import { invalidate, state, tracked } from "./store.js";

/** Load an image's masks and proposals (rejected ones are not shown); `signal`: the image's. */
export async function loadAnnotations(
  /** @type {import('./store.js').ImageRecord} */ image,
  /** @type {AbortSignal} */ signal,
) {
  let list;
  try {
    list = await api(routes.annotations(image.id), { signal });
  } catch (err) {
    if (signal.aborted) return; // another image was opened: its request was cancelled
    throw err;
  }
  state.annotations = list.filter(
    (/** @type {import('./store.js').AnnotationRecord} */ a) => a.status !== "rejected",
  );
  await drawAnnotations(state.annotations, signal);
  if (signal.aborted) return;
  if (!cursorProposal()) state.proposalCursor = proposalsInOrder()[0]?.id ?? null;
  invalidate("annotations");
  invalidate("masks");
  await updateUncovered();
}

/** Forget an annotation that is no longer shown (deleted, rejected). */
export function dropAnnotation(/** @type {number} */ id) {
  state.annotations = state.annotations.filter((a) => a.id !== id);
  state.drawn.get(id)?.bitmap?.close();
  state.drawn.delete(id);
  if (state.highlightId === id) state.highlightId = null;
}

export function setHighlight(/** @type {number | null} */ id) {
  if (state.highlightId === id) return;
  state.highlightId = id;
  invalidate("masks");
}

export function toggleHidden(/** @type {import('./store.js').AnnotationRecord} */ annotation) {
  if (state.hidden.has(annotation.id)) state.hidden.delete(annotation.id);
  else state.hidden.add(annotation.id);
  invalidate("annotations");
  invalidate("masks");
}

export async function changeCategory(
  /** @type {import('./store.js').AnnotationRecord} */ annotation,
  /** @type {number} */ categoryId,
) {
  try {
    const saved = await api(routes.annotation(annotation.id), {
      method: "PATCH",
      body: { category_id: categoryId },
    });
    Object.assign(annotation, saved);
    await drawAnnotations([annotation]);
    invalidate("annotations");
    refreshCategories();
  } catch (err) {
    showError(`the category was not changed: ${errorText(err)}`);
    invalidate("annotations");
  }
}

/** Delete a stored mask; whether it was deleted. */
export async function deleteAnnotation(
  /** @type {import('./store.js').AnnotationRecord} */ annotation,
) {
  try {
    await api(routes.annotation(annotation.id), { method: "DELETE" });
  } catch (err) {
    showError(`the mask was not deleted: ${errorText(err)}`);
    return false;
  }
  dropAnnotation(annotation.id);
  if (state.editing?.annotation.id === annotation.id) clearObject();
  invalidate("annotations");
  invalidate("masks");
  refreshImages();
  refreshCategories();
  await updateUncovered();
  return true;
}

/** Re-open an accepted mask: its prompts come back; new points refine it (mask fed back). */
export async function reopen(/** @type {import('./store.js').AnnotationRecord} */ annotation) {
  clearObject();
  let lowRes;
  try {
    ({ lowRes } = await decoder.request("maskLogits", { rle: annotation.segmentation }));
  } catch (err) {
    showError(`cannot re-open mask #${annotation.id}: ${errorText(err)}`);
    return;
  }
  state.editing = { annotation, lowRes };
  state.categoryId = annotation.category_id;
  invalidate("currentCategory");
  const prompt = promptFromJson(annotation.prompts);
  if (prompt.points.length || prompt.box) {
    state.history.push({
      prompt,
      maskFrom: null,
      resultId: null,
      candidate: null,
      iou: null,
      done: false,
    });
  }
  startObjectClock();
  invalidate("annotations");
  invalidate("masks", "object");
  stageMessage(
    `editing mask #${annotation.id}: add points to refine, Enter saves, Esc leaves it as it was`,
  );
}

// ------------------------------------------------------------------------------------ uncovered
export function toggleUncovered(show = !state.showUncovered) {
  state.showUncovered = show;
  $("show-uncovered").checked = show;
  if (show) return tracked(updateUncovered());
  forgetUncovered();
  invalidate("masks");
}

/** Drop the uncovered area (and any computation of it still under way). */
export function forgetUncovered() {
  state.uncoveredSeq++;
  state.uncovered?.bitmap?.close();
  state.uncovered = null;
  $("uncovered").textContent = "";
}

/** Recompute the area no accepted mask covers (when shown): the hatch and "uncovered: NN %". */
export async function updateUncovered() {
  const image = state.image;
  if (!state.showUncovered || !image) return;
  const seq = ++state.uncoveredSeq;
  const signal = state.opened.signal;
  const rles = state.annotations.filter((a) => a.status === "accepted").map((a) => a.segmentation);
  let reply;
  try {
    reply = await decoder.request("uncovered", { hw: [image.height, image.width], rles });
  } catch (err) {
    showError(`the uncovered area was not computed: ${errorText(err)}`);
    return;
  }
  if (seq !== state.uncoveredSeq || signal.aborted) {
    reply.bitmap.close();
    return;
  }
  state.uncovered?.bitmap?.close();
  state.uncovered = { bitmap: reply.bitmap };
  const percent = reply.fraction * 100;
  $("uncovered").textContent =
    `uncovered: ${percent >= 10 || percent === 0 ? Math.round(percent) : percent.toFixed(1)} %`;
  $("uncovered").title =
    `${reply.uncoveredPixels} of ${reply.pixels} pixels are in no accepted mask`;
  invalidate("masks");
}
