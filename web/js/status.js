// The status bar, the error lines and the stage's message: DOM only.
/**
 * The page's element with this id (index.html has it: inputs, buttons, canvases, lists...).
 * @type {(id: string) => any}
 */
export const $ = (id) => document.getElementById(id);

export function setStatus(/** @type {string} */ id, /** @type {string} */ text, level = "") {
  const el = $(id);
  el.textContent = text;
  el.className = level;
}

/** The propose section's status line. */
export function setProposeStatus(/** @type {string} */ text, level = "") {
  setStatus("propose-status", text, level);
}

/** A dismissable error line (the last four are kept), also on the console. */
export function showError(/** @type {string} */ message) {
  const line = document.createElement("div");
  const text = document.createElement("span");
  text.textContent = message;
  const close = document.createElement("button");
  close.type = "button";
  close.textContent = "×";
  close.title = "dismiss";
  close.onclick = () => line.remove();
  line.append(text, close);
  $("errors").append(line);
  while ($("errors").children.length > 4) $("errors").firstChild.remove();
  console.error(message);
}

/** An error's message (or the thing thrown, in words). */
export function errorText(/** @type {any} */ err) {
  return err?.message || String(err);
}

export function stageMessage(/** @type {string | null | undefined} */ text) {
  $("stage-message").hidden = !text;
  $("stage-message").textContent = text || "";
}
