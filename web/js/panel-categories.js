// The side panel's category list: DOM only. Choosing, renaming, recolouring, reordering and
// deleting go through the handlers of `connectCategoryPanel` (categories.js, category-manage.js).
import { $ } from "./status.js";
import { state } from "./store.js";

const on = {
  select: (/** @type {number} */ id) => {},
  update: (
    /** @type {import('./store.js').CategoryRecord} */ category,
    /** @type {{name?: string, color?: string}} */ fields,
  ) => {},
  move: (
    /** @type {import('./store.js').CategoryRecord} */ category,
    /** @type {number} */ delta,
  ) => {},
  /** @type {(category: import('./store.js').CategoryRecord, moveTo: number | null) => Promise<string>} */
  remove: async () => "failed",
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
    const up = button("▲", `move up (number key ${i})`, () => on.move(c, -1), i === 0);
    const down = button("▼", "move down", () => on.move(c, 1), i === state.categories.length - 1);
    const del = button("×", `delete "${c.name}"`, () => remove(c, li));
    del.className = "delete";
    li.append(key, color, name, count, up, down, del);
    li.onclick = () => on.select(c.id);
    list.append(li);
  });
}

/**
 * @param {string} text
 * @param {string} title
 * @param {() => unknown} action
 * @param {boolean} [disabled]
 */
function button(text, title, action, disabled = false) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.title = title;
  b.disabled = disabled;
  b.onclick = (e) => {
    e.stopPropagation();
    action();
  };
  return b;
}

/** Delete a category; if masks use it, ask in its row which category they move to first. */
async function remove(
  /** @type {import('./store.js').CategoryRecord} */ c,
  /** @type {HTMLElement} */ li,
) {
  if ((await on.remove(c, null)) !== "used") return;
  const others = state.categories.filter((o) => o.id !== c.id);
  if (!others.length) {
    li.title = "masks use it and there is no other category to move them to";
    return;
  }
  const form = document.createElement("form");
  form.className = "move-masks";
  const label = document.createElement("span");
  label.textContent = `masks of "${c.name}" move to`;
  const select = document.createElement("select");
  for (const o of others) select.append(new Option(o.name, String(o.id)));
  const ok = document.createElement("button");
  ok.type = "submit";
  ok.textContent = "move & delete";
  const cancel = button("cancel", "keep the category", () => form.remove());
  form.append(label, select, ok, cancel);
  form.onclick = (e) => e.stopPropagation();
  form.onsubmit = (e) => {
    e.preventDefault();
    on.remove(c, Number(select.value));
  };
  li.after(form);
  select.focus();
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
