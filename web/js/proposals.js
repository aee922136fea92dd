// Stage 2 of the data engine in the page: the server proposes masks for the image; the person
// accepts (A), rejects (X) or refines (R) them, walking the list with J / K.
import { api, routes } from "./api.js";
import { dropAnnotation, loadAnnotations, updateUncovered } from "./annotations.js";
import { refreshCategories } from "./categories.js";
import { decoder } from "./decoder.js";
import { refreshImages } from "./image-list.js";
import { drawAnnotations } from "./mask-bitmaps.js";
import { LABEL } from "./prompts.js";
import { cursorAfter, cursorProposal, isProposal, proposalsInOrder } from "./selectors.js";
import { clearObject, decodeEntry, setMask, startObjectClock } from "./session.js";
import { $, errorText, setProposeStatus, showError, stageMessage } from "./status.js";
import { invalidate, state } from "./store.js";

// A proposal's stored grid point is run through the decoder again when it is refined; its
// candidate must match the stored mask this well, else the mask itself stands for the logits.
const SEED_MATCH_IOU = 0.75;

/** What A / X / R act on: the proposal under the mouse in the list, else the cursor. */
export function targetProposal() {
  const hovered = state.annotations.find((a) => a.id === state.highlightId && isProposal(a));
  const target = hovered ?? cursorProposal();
  if (!target) setProposeStatus("no proposal to act on: Propose (G) makes some", "warn");
  return target;
}

export function setProposalCursor(/** @type {number | null} */ id) {
  state.proposalCursor = id;
  invalidate("proposalCursor");
  invalidate("masks");
}

/** Move the cursor `n` proposals on in the list (J: 1, K: -1), round it. */
export function moveProposalCursor(/** @type {number} */ n) {
  const order = proposalsInOrder();
  if (!order.length) return targetProposal();
  const i = order.findIndex((a) => a.id === state.proposalCursor);
  setProposalCursor(order[i < 0 ? 0 : (i + n + order.length) % order.length].id);
}

/** The grid size asked for (points per side), or null for the server's default. */
function proposePoints() {
  const raw = $("propose-points").value.trim();
  if (!raw) return null;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 64)
    throw new Error(
      `the grid must be a whole number of points per side from 1 to 64, not "${raw}"`,
    );
  return n;
}

/** Ask the server for automatic masks of the current image; they come back as proposals. */
export async function propose() {
  const image = state.image;
  if (!image || state.proposing) return;
  let points;
  try {
    points = proposePoints();
  } catch (err) {
    setProposeStatus("not proposed: see the message above", "bad");
    showError(errorText(err));
    return;
  }
  const grid = points ? `${points}×${points} grid` : "the server's default grid";
  const since = performance.now();
  state.proposing = image;
  $("propose-button").disabled = true;
  const progress = () =>
    setProposeStatus(
      `proposing… ${Math.round((performance.now() - since) / 1000)} s (${grid})`,
      "warn",
    );
  progress();
  const timer = setInterval(progress, 1000);
  try {
    const reply = await api(routes.propose(image.id), {
      method: "POST",
      body: points ? { points_per_side: points } : {},
    });
    clearInterval(timer);
    const secs = Math.round((performance.now() - since) / 100) / 10;
    const where = state.image?.id === image.id ? "" : ` on ${image.file_name}`;
    const repeats = reply.generated - reply.created;
    const text = reply.created
      ? `${reply.created} new proposal${reply.created === 1 ? "" : "s"}${where} · ${secs} s`
      : `no new proposals${where}${reply.generated ? ` (${repeats} already on the image)` : ": no confident masks found"} · ${secs} s`;
    setProposeStatus(text, reply.created ? "ok" : "");
    $("propose-status").title =
      `${reply.generated} masks generated (${grid}); ${repeats} overlapped a mask already on the image`;
    await refreshCategories(); // proposals come with the category "object", made if missing
    if (state.image?.id === image.id) {
      const fresh = new Set(reply.ids);
      await loadAnnotations(state.image, state.opened.signal);
      const first = proposalsInOrder().find((a) => fresh.has(a.id));
      if (first && !cursorProposal()) setProposalCursor(first.id);
    }
    refreshImages();
  } catch (err) {
    clearInterval(timer);
    setProposeStatus("proposing failed: see the message above", "bad");
    showError(`no proposals for ${image.file_name}: ${errorText(err)}`);
  } finally {
    clearInterval(timer);
    state.proposing = null;
    $("propose-button").disabled = false;
  }
}

/** Accept proposals as they are, with the current category. */
export async function acceptProposals(/** @type {import('./store.js').AnnotationRecord[]} */ list) {
  if (!list.length) return;
  if (state.categoryId == null) {
    showError(
      "choose a category first: create one on the right (name, then Add) or press its number key",
    );
    return;
  }
  const categoryId = state.categoryId;
  const signal = state.opened.signal;
  const next = cursorAfter(list.map((a) => a.id));
  const saved = [];
  for (const a of list) {
    try {
      saved.push(
        await api(routes.annotation(a.id), {
          method: "PATCH",
          body: { status: "accepted", category_id: categoryId },
        }),
      );
    } catch (err) {
      showError(`proposal #${a.id} was not accepted: ${errorText(err)}`);
      break;
    }
  }
  if (!signal.aborted && saved.length) {
    const byId = new Map(saved.map((a) => [a.id, a]));
    state.annotations = state.annotations.map((a) => byId.get(a.id) ?? a);
    if (byId.has(state.proposalCursor))
      state.proposalCursor = saved.length === list.length ? next : cursorAfter([...byId.keys()]);
    if (byId.has(state.highlightId)) state.highlightId = null; // its row is rebuilt: no mouseleave will come
    if (state.editing && byId.has(state.editing.annotation.id)) clearObject();
    await drawAnnotations(saved, signal);
    invalidate("annotations");
    invalidate("masks");
    await updateUncovered();
  }
  if (saved.length) {
    refreshImages();
    refreshCategories();
  }
}

/** Reject a proposal: it stays in the store (the acceptance rate counts it) but is no longer shown. */
export async function rejectProposal(
  /** @type {import('./store.js').AnnotationRecord} */ annotation,
) {
  const signal = state.opened.signal;
  const next = cursorAfter([annotation.id]);
  try {
    await api(routes.annotation(annotation.id), { method: "PATCH", body: { status: "rejected" } });
  } catch (err) {
    showError(`proposal #${annotation.id} was not rejected: ${errorText(err)}`);
    return;
  }
  if (signal.aborted) return;
  if (state.editing?.annotation.id === annotation.id) clearObject();
  dropAnnotation(annotation.id);
  if (state.proposalCursor === annotation.id) state.proposalCursor = next;
  invalidate("annotations");
  invalidate("masks");
}

/**
 * Open a proposal as the current object, to add points to it. The automatic generator made it
 * from one grid point, so that point is run through the decoder again (the candidate most like
 * the stored mask is kept): the person's points then refine it with the decoder's own logits fed
 * back, as for any mask. Without a stored point, the mask itself stands for the logits.
 */
export async function refineProposal(
  /** @type {import('./store.js').AnnotationRecord} */ annotation,
) {
  clearObject();
  const signal = state.opened.signal;
  state.editing = { annotation, lowRes: null, proposal: true };
  state.proposalCursor = annotation.id;
  startObjectClock();
  invalidate("annotations");
  invalidate("masks", "object");
  stageMessage(
    `refining proposal #${annotation.id}: add points, Enter accepts it, Esc leaves it proposed`,
  );
  const point = annotation.prompts?.point;
  if (Array.isArray(point) && point.length === 2) {
    /** @type {import('./history.js').PromptStep} */
    const entry = {
      prompt: { points: [{ x: point[0], y: point[1], label: LABEL.foreground }], box: null },
      maskFrom: null,
      resultId: null,
      candidate: null,
      iou: null,
      done: false,
      seed: true,
    };
    state.history.push(entry);
    const reply = await decodeEntry(entry, performance.now(), annotation.segmentation);
    if (signal.aborted || state.editing?.annotation !== annotation) return;
    if (reply && (reply.matchIou ?? -1) >= SEED_MATCH_IOU) {
      entry.seedCandidate = reply.candidate;
      return;
    }
    if (state.history.states.length > 1) return; // points were added meanwhile: keep them
    state.history.clear();
    setMask(null);
    invalidate("candidates");
    invalidate("object");
  }
  try {
    ({ lowRes: state.editing.lowRes } = await decoder.request("maskLogits", {
      rle: annotation.segmentation,
    }));
  } catch (err) {
    showError(`cannot refine proposal #${annotation.id}: ${errorText(err)}`);
    clearObject();
  }
}
