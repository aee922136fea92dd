// Pure readers of the store: what the panels, layers and actions ask of the state.
import { state } from "./store.js";

/** @typedef {import('./store.js').AnnotationRecord} AnnotationRecord */

export function isProposal(/** @type {AnnotationRecord} */ annotation) {
  return annotation.status === "proposed";
}

/** The current image's proposals, most confident first (the list's order; J / K walk it). */
export function proposalsInOrder() {
  return state.annotations
    .filter(isProposal)
    .sort((a, b) => (b.predicted_iou ?? -1) - (a.predicted_iou ?? -1) || a.id - b.id);
}

/** The proposal the cursor is on, or null. */
export function cursorProposal() {
  return state.annotations.find((a) => a.id === state.proposalCursor && isProposal(a)) ?? null;
}

/** The proposal the cursor goes to once `ids` are decided: the next in the list, else the one before. */
export function cursorAfter(/** @type {number[]} */ ids) {
  const order = proposalsInOrder().map((a) => a.id);
  const gone = new Set(ids);
  const last = Math.max(...ids.map((id) => order.indexOf(id)));
  if (last < 0) return state.proposalCursor;
  return (
    order.slice(last + 1).find((id) => !gone.has(id)) ??
    order
      .slice(0, last)
      .reverse()
      .find((id) => !gone.has(id)) ??
    null
  );
}

export function categoryColor() {
  return state.categories.find((c) => c.id === state.categoryId)?.color ?? "#1e90ff";
}

/** The images of the list that are finished and not reviewed yet (accounts on: the review list). */
export function waitingForReview() {
  return state.images.filter((im) => im.status === "done" && !im.review && !im.error);
}

/** The logged-in person may review (reviewer or admin; accounts on). */
export function canReview() {
  return ["reviewer", "admin"].includes(state.team?.role ?? "");
}
