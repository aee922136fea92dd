// The side panel's category list: DOM only. Choosing, renaming and recolouring go through the
// handlers of `connectCategoryPanel` (categories.js).
import { $ } from "./status.js";
import { state } from "./store.js";

const on = {
  select: (/** @type {number} */ id) => {},
  update: (
    /** @type {import('./store.js').CategoryRecord} */ category,
    /** @type {{name?: string, color?: string}} */ fields,
  ) => {},
};

export function connectCategoryPanel(/** @type {Partial<typeof on>} */ handlers) {
  Object.assign(on, handlers);
}

export function renderCategories() {
  const list = $("category-list");
  list.replaceChildren();
  state.categories.forEach((c, i) => {
    const li = document.createElement("li");
    li.dataset.categoryId = String(c.id);
    li.className = c.id === state.categoryId ? "current" : "";
    const key = document.createElement("span");
    key.className = "key";
    key.textContent = i < 9 ? String(i + 1) : "";
    const color = document.createElement("input");
    color.type = "color";
    color.value = c.color;
    color.title = "colour";
    color.onclick = (e) => e.stopPropagation();
    color.onchange = () => on.update(c, { color: color.value });
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = c.name;
    name.title = "double-click to rename";
    name.ondblclick = (e) => {
      e.stopPropagation();
      renameInline(c, name);
    };
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = String(c.num_annotations ?? "");
    li.append(key, color, name, count);
    li.onclick = () => on.select(c.id);
    list.append(li);
  });
}

/** Only the highlight moves: rebuilding the rows would break a double-click (rename) on them. */
export function markCurrentCategory() {
  for (const li of $("category-list").children)
    li.classList.toggle("current", Number(li.dataset.categoryId) === state.categoryId);
}

function renameInline(
  /** @type {import('./store.js').CategoryRecord} */ category,
  /** @type {HTMLElement} */ nameEl,
) {
  const input = document.createElement("input");
  input.value = category.name;
  input.maxLength = 80;
  nameEl.replaceChildren(input);
  input.focus();
  input.select();
  let done = false;
  const finish = (/** @type {boolean} */ commit) => {
    if (done) return;
    done = true;
    const value = input.value.trim();
    if (commit && value && value !== category.name) on.update(category, { name: value });
    else renderCategories();
  };
  input.onkeydown = (e) => {
    if (e.key === "Enter") finish(true);
    if (e.key === "Escape") finish(false);
    e.stopPropagation();
  };
  input.onblur = () => finish(true);
}
