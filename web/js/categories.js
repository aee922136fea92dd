// Categories: loading, choosing (also by number key), creating, renaming and recolouring.
import { api, routes } from "./api.js";
import { drawAnnotations } from "./mask-bitmaps.js";
import { showState } from "./session.js";
import { $, errorText, showError } from "./status.js";
import { invalidate, state, tracked } from "./store.js";

const STORED_CATEGORY = "maskloop.categoryId"; // localStorage: the category chosen last
export const DEFAULT_CATEGORY = "object"; // what a first accept takes when no category exists yet (as the engine's)

export async function refreshCategories() {
  try {
    state.categories = await api(routes.categories);
  } catch (err) {
    showError(`the categories did not load: ${errorText(err)}`);
    return;
  }
  const stored = Number(localStorage.getItem(STORED_CATEGORY));
  if (state.categoryId == null || !state.categories.some((c) => c.id === state.categoryId)) {
    state.categoryId = state.categories.some((c) => c.id === stored)
      ? stored
      : (state.categories[0]?.id ?? null);
  }
  invalidate("categories", "annotations"); // the masks' rows offer the categories
}

export function selectCategory(/** @type {number} */ id) {
  state.categoryId = id;
  localStorage.setItem(STORED_CATEGORY, String(id));
  invalidate("currentCategory");
  const current = state.history.current;
  if (current?.done) tracked(showState(current)); // the mask takes the category's colour
}

/** Choose the category of number key `n` (1..9), if there is one. */
export function selectCategoryKey(/** @type {number} */ n) {
  const category = state.categories[n - 1];
  if (category) selectCategory(category.id);
}

/** Select the category `name`, creating it first when the store has none of that name. */
export async function selectDefaultCategory(name = DEFAULT_CATEGORY) {
  const named = () => state.categories.find((c) => c.name === name);
  if (!named()) {
    try {
      await api(routes.categories, {
        method: "POST",
        body: { name, color: $("category-color").value },
      });
    } catch (err) {
      await refreshCategories(); // made elsewhere in the meantime?
      if (!named())
        throw new Error(`the category "${name}" was not created: ${errorText(err)}`, {
          cause: err,
        });
    }
    await refreshCategories();
    $("category-color").value = nextColor();
    if (!named()) throw new Error(`the category "${name}" was created but the list did not load`);
  }
  selectCategory(/** @type {import('./store.js').CategoryRecord} */ (named()).id);
}

export async function updateCategory(
  /** @type {import('./store.js').CategoryRecord} */ category,
  /** @type {{name?: string, color?: string}} */ fields,
) {
  try {
    await api(routes.category(category.id), { method: "PATCH", body: fields });
  } catch (err) {
    showError(`the category was not changed: ${errorText(err)}`);
  }
  await refreshCategories();
  if (fields.color) {
    await drawAnnotations(state.annotations.filter((a) => a.category_id === category.id));
    const current = state.history.current;
    if (current?.done && state.categoryId === category.id) await showState(current);
  }
}

/** The category form's submit: create the category and choose it. */
export async function createCategory(/** @type {Event} */ event) {
  event.preventDefault();
  const name = $("category-name").value.trim();
  if (!name) return;
  try {
    const created = await api(routes.categories, {
      method: "POST",
      body: { name, color: $("category-color").value },
    });
    $("category-name").value = "";
    await refreshCategories();
    selectCategory(created.id);
    $("category-color").value = nextColor();
  } catch (err) {
    showError(`the category was not created: ${errorText(err)}`);
  }
  $("stage").focus();
}

/** The colour the form offers for the next new category: the one the server would give it. */
export function nextColor() {
  const palette = state.manifest.category_palette; // the server's, in the order it assigns them
  return palette[state.categories.length % palette.length];
}
