// Clean-ups of the current mask (issue 23): O fills holes smaller than the project's limit, I drops
// parts smaller than its limit, L keeps the largest part. The worker does it at full resolution
// (components.js) on the mask with its strokes and keeps the result; here it becomes one prompt
// step (Ctrl+Z undoes it) and one entry of the mask's edits (its provenance). The limits, and
// whether Enter applies the first two itself, are the project's (GET / PUT /api/settings/cleanup),
// set in the masks panel.
import { api, routes } from "./api.js";
import { decoder } from "./decoder.js";
import { adoptEdited, showState } from "./session.js";
import { $, errorText, showError, stageMessage } from "./status.js";
import { invalidate, state } from "./store.js";

/** @typedef {import('./components.js').CleanupOp} CleanupOp */
/** @typedef {import('./worker-protocol.js').Cleanup} Cleanup */
/** @typedef {{min_hole_px: number, min_island_px: number, on_accept: boolean}} CleanupSetting */

/** @type {CleanupSetting | null} */
let setting = null;

/** The project's clean-up setting (fetched once, then kept up to date by the panel). */
export async function cleanupSetting() {
  setting ??= /** @type {CleanupSetting} */ (await api(routes.cleanup));
  return setting;
}

/** @type {Record<CleanupOp, string>} */
const DONE = {
  fillHoles: "filled the holes",
  dropIslands: "dropped the islands",
  keepLargest: "kept the largest part",
};

/** The clean-ups Enter applies before saving (the project's `on_accept`), in order. */
export async function cleanupsOnAccept() {
  const s = await cleanupSetting();
  /** @type {Cleanup[]} */
  const cleanups = [];
  if (s.on_accept)
    cleanups.push(
      { op: "fillHoles", minArea: s.min_hole_px },
      { op: "dropIslands", minArea: s.min_island_px },
    );
  return cleanups;
}

/**
 * O / I / L: clean the current mask (with its strokes) at full resolution: a new step.
 * @param {CleanupOp} op
 */
export async function cleanCurrent(op) {
  let current = state.history.current;
  if ((!current?.done || current.resultId == null) && state.editing) current = await adoptEdited();
  if (!current?.done || current.resultId == null) {
    showError("clean-ups work on the current mask: click on an object first");
    return;
  }
  const s = await cleanupSetting();
  const minArea = op === "fillHoles" ? s.min_hole_px : op === "dropIslands" ? s.min_island_px : 0;
  const newResultId = decoder.reserveId();
  let changed;
  try {
    ({ changed } = await decoder.request("clean", {
      resultId: current.resultId,
      candidate: current.candidate ?? 0,
      strokes: current.strokes,
      op,
      minArea,
      newResultId,
    }));
  } catch (err) {
    showError(`the clean-up failed: ${errorText(err)}`);
    return;
  }
  if (state.history.current !== current) return; // the person moved on meanwhile
  const what = op === "keepLargest" ? DONE[op] : `${DONE[op]} under ${minArea} px`;
  if (!changed) {
    stageMessage(`nothing to clean: ${what} changes no pixel`);
    return;
  }
  state.history.push({
    ...current,
    resultId: newResultId,
    candidate: 0,
    autoCandidate: 0,
    iou: null,
    strokes: undefined, // now part of the kept mask
    edits: [...(current.edits ?? []), { mode: op, min_px: minArea }],
  });
  stageMessage(`${what}: ${changed} px changed (Ctrl+Z undoes it)`);
  invalidate("object", "candidates");
  await showState(state.history.current);
}

/** The masks panel's clean-up row: its buttons, the two limits and "on accept" (PUT on change). */
export function connectCleanupPanel() {
  for (const [id, op] of /** @type {[string, CleanupOp][]} */ ([
    ["clean-holes", "fillHoles"],
    ["clean-islands", "dropIslands"],
    ["clean-largest", "keepLargest"],
  ]))
    $(id).onclick = () => cleanCurrent(op);
  const holes = /** @type {HTMLInputElement} */ ($("min-hole-px"));
  const islands = /** @type {HTMLInputElement} */ ($("min-island-px"));
  const onAccept = /** @type {HTMLInputElement} */ ($("clean-on-accept"));
  cleanupSetting()
    .then((s) => {
      holes.value = String(s.min_hole_px);
      islands.value = String(s.min_island_px);
      onAccept.checked = s.on_accept;
    })
    .catch((err) => showError(`the clean-up setting did not load: ${errorText(err)}`));
  const save = async () => {
    const body = {
      min_hole_px: Math.max(0, Math.round(Number(holes.value) || 0)),
      min_island_px: Math.max(0, Math.round(Number(islands.value) || 0)),
      on_accept: onAccept.checked,
    };
    try {
      setting = await api(routes.cleanup, { method: "PUT", body });
    } catch (err) {
      showError(`the clean-up setting was not saved: ${errorText(err)}`);
    }
  };
  holes.onchange = islands.onchange = onAccept.onchange = save;
}
