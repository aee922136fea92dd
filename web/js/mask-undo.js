// Undo and redo of what was done to the current image's stored masks: an accept (Enter), a
// deletion, a category change, a re-opened mask saved again. Ctrl+Z first steps back through the
// object in progress's prompts (session.js); with none left it undoes the last stored change
// (an accept: DELETE; a deletion: POST of the same content; a change: PATCH back). Ctrl+Shift+Z
// does the same forwards. The list belongs to the open image and is dropped when another opens.
import { api, routes } from "./api.js";
import {
  changeCategory,
  deleteAnnotation,
  dropAnnotation,
  updateUncovered,
} from "./annotations.js";
import { refreshCategories } from "./categories.js";
import { refreshImages } from "./image-list.js";
import { drawAnnotations } from "./mask-bitmaps.js";
import { redo, undo } from "./session.js";
import { errorText, showError } from "./status.js";
import { reportSave } from "./status-line.js";
import { invalidate, state, tracked } from "./store.js";

/** @typedef {import('./store.js').AnnotationRecord} Annotation */
/** One stored mask, followed through its re-creations (a POST gives it a new id). */
/** @typedef {{record: Annotation}} MaskRef */
/**
 * @typedef {{kind: "add" | "delete", ref: MaskRef}
 *   | {kind: "update", ref: MaskRef, before: Record<string, any>, after: Record<string, any>}} MaskAction
 */

/** What a stored mask is made of: the fields a POST or PATCH takes (server/http/annotations.py). */
const CONTENT = [
  "category_id",
  "segmentation",
  "stage",
  "status",
  "clicks",
  "seconds",
  "prompts",
  "model",
  "model_version",
  "predicted_iou",
  "stability_score",
];

const list = {
  /** @type {number | null} */ imageId: null,
  /** @type {MaskAction[]} */ actions: [],
  index: 0, // actions[0 .. index) are done
  busy: false,
};
/** @type {Map<number, MaskRef>} stored mask id -> its ref */
const refs = new Map();

function here() {
  const id = state.image?.id ?? null;
  if (list.imageId !== id) {
    list.imageId = id;
    list.actions = [];
    list.index = 0;
    refs.clear();
  }
  return list;
}

function refFor(/** @type {Annotation} */ record) {
  let ref = refs.get(record.id);
  if (!ref) refs.set(record.id, (ref = { record }));
  ref.record = record;
  return ref;
}

/** A record's content, as a POST or PATCH takes it. */
export function contentOf(/** @type {Record<string, any>} */ record, fields = CONTENT) {
  return Object.fromEntries(fields.filter((k) => k in record).map((k) => [k, record[k]]));
}

/** Keep a change to the stored masks for undo (a new change drops what could be redone). */
function record(/** @type {MaskAction} */ action) {
  const l = here();
  l.actions.splice(l.index);
  l.actions.push(action);
  l.index = l.actions.length;
  invalidate("stageBar");
}

/** An accept saved `saved`: a new mask, or (`before` given) a stored one changed. */
export function recordAccepted(
  /** @type {Annotation} */ saved,
  /** @type {Annotation | null} */ before = null,
) {
  if (!before) return record({ kind: "add", ref: refFor(saved) });
  const fields = CONTENT.filter((k) => JSON.stringify(before[k]) !== JSON.stringify(saved[k]));
  record({
    kind: "update",
    ref: refFor(saved),
    before: contentOf(before, fields),
    after: contentOf(saved, fields),
  });
}

/** Delete a stored mask (the masks panel's button), undoably. */
export async function deleteMask(/** @type {Annotation} */ annotation) {
  const ref = refFor(annotation);
  if (await deleteAnnotation(annotation)) record({ kind: "delete", ref });
}

/** Move a stored mask to another category (the masks panel's menu), undoably. */
export async function recategorise(/** @type {Annotation} */ annotation, /** @type {number} */ id) {
  const from = annotation.category_id;
  if (from === id) return;
  await changeCategory(annotation, id);
  if (annotation.category_id === id)
    record({
      kind: "update",
      ref: refFor(annotation),
      before: { category_id: from },
      after: { category_id: id },
    });
}

export function canUndoMask() {
  return here().index > 0;
}

export function canRedoMask() {
  const l = here();
  return l.index < l.actions.length;
}

/** Ctrl+Z: the object's last prompt step, else the last change to the stored masks. */
export function undoAny() {
  if (state.history.canUndo) return undo();
  const l = here();
  if (!l.index || l.busy) return;
  const action = l.actions[l.index - 1];
  return tracked(
    run(action, "back").then((ok) => {
      if (ok) l.index--;
    }),
  );
}

/** Ctrl+Shift+Z: the object's next prompt step, else the next change to the stored masks. */
export function redoAny() {
  if (state.history.canRedo) return redo();
  const l = here();
  if (l.index >= l.actions.length || l.busy) return;
  const action = l.actions[l.index];
  return tracked(
    run(action, "forth").then((ok) => {
      if (ok) l.index++;
    }),
  );
}

/** Do (`forth`) or undo (`back`) one change on the server and on the page. */
async function run(/** @type {MaskAction} */ action, /** @type {"back" | "forth"} */ way) {
  const l = list;
  l.busy = true;
  try {
    const ref = action.ref;
    if (action.kind === "update") {
      await patch(ref, way === "back" ? action.before : action.after);
      reportSave(way === "back" ? "removed" : "restored");
      return true;
    }
    const remove = (action.kind === "add") === (way === "back");
    if (remove) {
      if (!(await deleteAnnotation(ref.record))) return false;
      reportSave("removed");
    } else {
      await storeAgain(ref);
      reportSave("restored");
    }
    return true;
  } catch (err) {
    showError(`the change was not ${way === "back" ? "undone" : "redone"}: ${errorText(err)}`);
    return false;
  } finally {
    l.busy = false;
    invalidate("stageBar");
  }
}

/** POST a deleted mask again, with the same content; it comes back with a new id. */
async function storeAgain(/** @type {MaskRef} */ ref) {
  const imageId = /** @type {number} */ (list.imageId);
  const saved = await api(routes.annotations(imageId), {
    method: "POST",
    body: contentOf(ref.record),
  });
  refs.set(saved.id, ref);
  ref.record = saved;
  if (state.image?.id !== imageId) return;
  state.annotations = state.annotations.filter((a) => a.id !== saved.id).concat([saved]);
  state.annotations.sort((a, b) => a.id - b.id);
  await drawAnnotations([saved]);
  changed();
}

async function patch(/** @type {MaskRef} */ ref, /** @type {Record<string, any>} */ fields) {
  const saved = await api(routes.annotation(ref.record.id), { method: "PATCH", body: fields });
  Object.assign(ref.record, saved);
  const shown = state.annotations.find((a) => a.id === saved.id);
  if (shown && shown !== ref.record) Object.assign(shown, saved);
  if (shown) await drawAnnotations([shown]);
  if (fields.status && fields.status !== "accepted" && fields.status !== "proposed")
    dropAnnotation(saved.id);
  changed();
}

function changed() {
  invalidate("annotations");
  invalidate("masks");
  refreshImages();
  refreshCategories();
  tracked(updateUncovered());
}
