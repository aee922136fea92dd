// The first accept on a project without categories asks for the category's name, inline over the
// stage's corner ("Name this kind of object", `object` pre-filled): Enter confirms, Esc cancels
// the accept. Once the project has a category it is never asked again. DOM only.
import { $ } from "./status.js";

/** @type {((name: string | null) => void) | null} */
let answer = null;

/** Whether the prompt is open (window.maskloop.askingCategory). */
export function askingCategory() {
  return answer !== null;
}

/** Ask for the first category's name: the name given, or null when cancelled. */
export function askCategoryName(/** @type {string} */ suggested) {
  const form = $("first-category");
  const input = /** @type {HTMLInputElement} */ ($("first-category-name"));
  answer?.(null);
  input.value = suggested;
  form.hidden = false;
  input.focus();
  input.select();
  return new Promise((resolve) => {
    answer = (/** @type {string | null} */ name) => {
      answer = null;
      form.hidden = true;
      $("stage").focus();
      resolve(name);
    };
  });
}

/** The prompt's keys and buttons. */
export function connectFirstCategory() {
  const input = /** @type {HTMLInputElement} */ ($("first-category-name"));
  $("first-category").onsubmit = (/** @type {Event} */ e) => {
    e.preventDefault();
    const name = input.value.trim();
    if (name) answer?.(name);
  };
  input.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    e.stopPropagation(); // the page's Esc would only leave the field
    answer?.(null);
  });
  $("first-category-cancel").onclick = () => answer?.(null);
  // A press on the card is not a click on the image under it.
  $("first-category").addEventListener("pointerdown", (/** @type {Event} */ e) =>
    e.stopPropagation(),
  );
}
