// Categories managed in the side panel: reorder (the number keys follow the list) and delete —
// straight away when no mask uses the category, else after choosing the category its masks move
// to (one request: DELETE /api/categories/<id>?move_to=<other>).
import { api, ApiError, routes } from "./api.js";
import { loadAnnotations } from "./annotations.js";
import { refreshCategories, selectCategory } from "./categories.js";
import { errorText, showError } from "./status.js";
import { state } from "./store.js";

/** @typedef {import('./store.js').CategoryRecord} CategoryRecord */

/** Move `category` one place up (`delta` -1) or down (+1) in the list. */
export async function moveCategory(
  /** @type {CategoryRecord} */ category,
  /** @type {number} */ delta,
) {
  const ids = state.categories.map((c) => c.id);
  const from = ids.indexOf(category.id);
  const to = from + delta;
  if (from < 0 || to < 0 || to >= ids.length) return;
  [ids[from], ids[to]] = [ids[to], ids[from]];
  try {
    await api(routes.categoryOrder, { method: "PUT", body: { ids } });
  } catch (err) {
    showError(`the categories were not reordered: ${errorText(err)}`);
  }
  await refreshCategories();
}

/**
 * Delete `category`; when masks use it they first move to category `moveTo` (an id), else the
 * server refuses and the caller asks where they should go.
 * @returns {Promise<"deleted" | "used" | "failed">}
 */
export async function deleteCategory(
  /** @type {CategoryRecord} */ category,
  /** @type {number | null} */ moveTo = null,
) {
  const url = routes.category(category.id) + (moveTo != null ? `?move_to=${moveTo}` : "");
  try {
    await api(url, { method: "DELETE" });
  } catch (err) {
    if (err instanceof ApiError && err.status === 409 && moveTo == null) return "used";
    showError(`the category "${category.name}" was not deleted: ${errorText(err)}`);
    return "failed";
  }
  await refreshCategories();
  if (state.categoryId === category.id && state.categories[0])
    selectCategory(state.categories[0].id);
  if (moveTo != null && state.image) await loadAnnotations(state.image, state.opened.signal);
  return "deleted";
}
