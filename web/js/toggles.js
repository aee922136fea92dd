// The page's on/off switches (help sheet, hover preview, accepted masks) and the help sheet's
// table of shortcuts: DOM and store only.
import { actionsFor } from "./actions.js";
import { setHoverPreview } from "./guess.js";
import { $ } from "./status.js";
import { invalidate, state } from "./store.js";

export function toggleHelp(show = $("help").hidden) {
  $("help").hidden = !show;
}

export function toggleHoverPreview(on = !state.hoverPreview) {
  $("hover-preview").checked = on;
  setHoverPreview(on);
}

export function toggleAnnotations() {
  $("show-annotations").checked = !$("show-annotations").checked;
  state.showAnnotations = $("show-annotations").checked;
  invalidate("masks");
}

/** The shortcuts of the page's mode (team mode when accounts are on). */
export function buildHelp() {
  const table = $("help-table");
  table.replaceChildren();
  for (const { keys, help } of actionsFor(state.team)) {
    const row = table.insertRow();
    row.insertCell().textContent = keys;
    row.insertCell().textContent = help;
  }
}
