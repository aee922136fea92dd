// Accepting the current object: its mask is encoded to RLE in the worker and saved with the
// current category, its prompts, clicks and seconds (a re-opened mask or proposal is updated).
import { api, routes } from "./api.js";
import { updateUncovered } from "./annotations.js";
import { DEFAULT_CATEGORY, refreshCategories, selectDefaultCategory } from "./categories.js";
import { askCategoryName } from "./first-category.js";
import { recordAccepted } from "./mask-undo.js";
import { decoder } from "./decoder.js";
import { refreshImages } from "./image-list.js";
import { promptToJson } from "./prompts.js";
import { acceptProposals } from "./proposals.js";
import { categoryColor, cursorAfter, cursorProposal } from "./selectors.js";
import { clearObject, setMask, startObjectClock } from "./session.js";
import { cleanupsOnAccept } from "./cleanup.js";
import { strokeToJson } from "./strokes.js";
import { $, errorText, setStatus, showError, stageMessage } from "./status.js";
import { reportSave } from "./status-line.js";
import { invalidate, state, tracked } from "./store.js";

const PROMPTS_BUDGET = 60_000; // characters of prompts JSON sent (the server's limit: 64 KiB)

/** Enter: save the current object's mask (the first accept with no category asks its name). */
export async function accept() {
  const current = state.history.current;
  if (state.saving) return;
  if (
    state.editing?.proposal &&
    (!current?.resultId || (current.seed && current.candidate === current.seedCandidate))
  ) {
    const proposal = state.editing.annotation; // opened to refine, but taken as it was proposed
    clearObject();
    await acceptProposals([proposal]);
    return;
  }
  if (state.editing && !current?.resultId) {
    clearObject(); // re-opened and left unchanged
    return;
  }
  if (!current?.done) {
    showError(
      cursorProposal()
        ? "nothing to accept yet: click on an object first (A accepts the highlighted proposal)"
        : "nothing to accept yet: click on an object first (or wait for its mask)",
    );
    return;
  }
  const image = /** @type {import('./store.js').ImageRecord} */ (state.image); // a mask is shown: an image is open
  const signal = state.opened.signal;
  const editing = state.editing;
  const nextCursor = editing?.proposal ? cursorAfter([editing.annotation.id]) : null;
  // The first accept on a project without categories asks for the category's name.
  let named = state.categoryId == null ? DEFAULT_CATEGORY : null;
  if (named && !state.categories.length) {
    named = await askCategoryName(DEFAULT_CATEGORY);
    if (named === null || signal.aborted || state.saving) return; // Esc: nothing is saved
  }
  const seconds = Math.max(0, (performance.now() - state.since - state.hiddenMs) / 1000);
  state.saving = true;
  setStatus("st-saving", "saving…", "warn");
  reportSave("saving");
  try {
    if (state.categoryId == null) await selectDefaultCategory(named ?? DEFAULT_CATEGORY); // no trip to the panel
    const onAccept = await cleanupsOnAccept();
    const encoded = await decoder.request("encode", {
      resultId: /** @type {number} */ (current.resultId), // set once it is done
      candidate: /** @type {number} */ (current.candidate),
      color: categoryColor(),
      strokes: current.strokes,
      cleanups: onAccept,
    });
    if (!encoded.area)
      throw new Error("the mask is empty: add a foreground point inside the object");
    /** @type {Record<string, unknown>} */
    const prompts = {
      ...promptToJson(current.prompt),
      candidate: current.candidate,
      decoder: state.decoderPrecision,
      refined: !!current.maskFrom || state.history.index > 0,
    };
    // Provenance: the hand's part (strokes and clean-ups, in order) next to the model's prompts.
    const edits = [
      ...(current.edits ?? []),
      ...onAccept.map((c) => ({ mode: c.op, min_px: c.minArea })),
    ];
    if (edits.length) prompts.edits = edits.map((e) => ("points" in e ? strokeToJson(e) : e));
    // The server keeps at most 64 KiB of prompts: past that, strokes keep their mode and size only.
    if (JSON.stringify(prompts).length > PROMPTS_BUDGET)
      prompts.edits = /** @type {any[]} */ (prompts.edits).map((e) =>
        "points" in e ? { mode: e.mode, radius: e.radius, points: [] } : e,
      );
    const seed = state.history.states[0];
    if (editing?.proposal && seed?.seed) prompts.seed_candidate = seed.seedCandidate; // the grid point's mask
    /** @type {Record<string, any>} */
    const body = {
      category_id: state.categoryId,
      segmentation: encoded.rle,
      clicks: state.clicks,
      seconds: Math.round(seconds * 10) / 10,
      prompts,
      model_version: state.manifest.model_version,
    };
    let saved;
    if (editing) {
      body.clicks += editing.annotation.clicks ?? 0;
      body.seconds = Math.round((body.seconds + (editing.annotation.seconds ?? 0)) * 10) / 10;
      body.status = "accepted"; // a refined proposal is accepted by saving it
      saved = await api(routes.annotation(editing.annotation.id), { method: "PATCH", body });
    } else {
      saved = await api(routes.annotations(image.id), {
        method: "POST",
        body: { ...body, stage: "manual" },
      });
    }
    setStatus("st-saving", `saved #${saved.id}`, "ok");
    if (!signal.aborted) reportSave("saved");
    $("st-saving").title =
      `mask #${saved.id}: ${saved.area} px, ${body.clicks} clicks, ${body.seconds} s`;
    state.drafts.delete(image.id);
    if (!signal.aborted) recordAccepted(saved, editing?.annotation ?? null); // Ctrl+Z takes it back
    if (!signal.aborted) showSaved(saved, encoded, editing, nextCursor);
    refreshImages();
    refreshCategories();
  } catch (err) {
    setStatus("st-saving", "not saved", "bad");
    reportSave("unsaved");
    showError(
      `the mask was not saved (it is still here; press Enter to try again): ${errorText(err)}`,
    );
  } finally {
    state.saving = false;
  }
}

/** The saved mask joins the image's masks; the next object starts empty. */
/**
 * @param {import('./store.js').AnnotationRecord} saved
 * @param {import('./worker-protocol.js').EncodeReply} encoded
 * @param {typeof state.editing} editing
 * @param {number | null} nextCursor
 */
function showSaved(saved, encoded, editing, nextCursor) {
  state.drawn.get(saved.id)?.bitmap?.close();
  if (encoded.bitmap)
    state.drawn.set(saved.id, {
      bitmap: encoded.bitmap,
      box: /** @type {number[]} */ (encoded.drawBox),
    });
  state.annotations = state.annotations.filter((a) => a.id !== saved.id).concat([saved]);
  state.annotations.sort((a, b) => a.id - b.id);
  state.editing = null;
  if (editing?.proposal && state.proposalCursor === saved.id) state.proposalCursor = nextCursor;
  state.history.clear();
  setMask(null);
  state.clicks = 0;
  stageMessage("");
  startObjectClock();
  invalidate("annotations");
  invalidate("candidates");
  invalidate("masks", "object");
  tracked(updateUncovered());
}
