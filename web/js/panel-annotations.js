// The side panel's lists of the current image's masks and proposals: DOM only. What the buttons
// do comes from `connectAnnotationPanel` (app.js), so this module changes no state itself.
import { proposalsInOrder, isProposal } from "./selectors.js";
import { $ } from "./status.js";
import { state } from "./store.js";

const on = {
  changeCategory: (annotation, categoryId) => {},
  toggleHidden: (annotation) => {},
  reopen: (annotation) => {},
  remove: (annotation) => {},
  acceptProposal: (annotation) => {},
  rejectProposal: (annotation) => {},
  refineProposal: (annotation) => {},
  pointProposal: (id) => {},
  highlight: (id) => {},
};

/** Set what the lists' buttons and rows do: handlers named as in `on` above. */
export function connectAnnotationPanel(handlers) {
  Object.assign(on, handlers);
}

export function renderAnnotationList() {
  renderMaskList();
  renderProposalList();
}

/** A greyed list item saying why a list is empty. */
function emptyItem(text) {
  const li = document.createElement("li");
  li.className = "empty";
  li.textContent = text;
  return li;
}

export function button(text, title, onclick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.title = title;
  b.onclick = onclick;
  return b;
}

function areaText(area) {
  return area >= 10000 ? `${Math.round(area / 1000)}k` : String(area);
}

function renderMaskList() {
  const list = $("annotation-list");
  list.replaceChildren();
  const masks = state.annotations.filter((a) => !isProposal(a));
  if (!masks.length) list.append(emptyItem("none yet: click an object, then Enter"));
  for (const a of masks) {
    const li = document.createElement("li");
    li.dataset.annotationId = a.id;
    li.classList.toggle("hidden", state.hidden.has(a.id));
    li.classList.toggle("editing", state.editing?.annotation.id === a.id);
    const category = state.categories.find((c) => c.id === a.category_id);
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = category?.color ?? "#888";
    const select = document.createElement("select");
    select.title = "category";
    for (const c of state.categories)
      select.add(new Option(c.name, c.id, false, c.id === a.category_id));
    select.onchange = () => on.changeCategory(a, Number(select.value));
    const area = document.createElement("span");
    area.className = "area";
    area.textContent = areaText(a.area);
    area.title = `${a.area} px · ${a.stage}`;
    const eye = button(state.hidden.has(a.id) ? "show" : "hide", "hide/show this mask", () =>
      on.toggleHidden(a),
    );
    const edit = button("edit", "re-open this mask to refine it with more points", () =>
      on.reopen(a),
    );
    const del = button("×", "delete this mask", () => on.remove(a));
    li.append(swatch, select, area, eye, edit, del);
    li.onmouseenter = () => on.highlight(a.id);
    li.onmouseleave = () => on.highlight(null);
    list.append(li);
  }
}

function renderProposalList() {
  const list = $("proposal-list");
  list.replaceChildren();
  const items = proposalsInOrder();
  $("proposal-count").textContent = items.length ? String(items.length) : "";
  $("accept-all-button").disabled = !items.length;
  if (!items.length) list.append(emptyItem("none: Propose (G) pre-fills confident masks"));
  for (const a of items) {
    const li = document.createElement("li");
    li.dataset.annotationId = a.id;
    li.classList.toggle("cursor", a.id === state.proposalCursor);
    li.classList.toggle("editing", state.editing?.annotation.id === a.id);
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = `IoU ${a.predicted_iou == null ? "–" : a.predicted_iou.toFixed(2)}`;
    score.title = `predicted IoU ${a.predicted_iou?.toFixed(3) ?? "unknown"}, stability ${a.stability_score?.toFixed(3) ?? "unknown"}`;
    const area = document.createElement("span");
    area.className = "area";
    area.textContent = areaText(a.area);
    area.title = `${a.area} px`;
    const yes = button("✓", "accept with the current category (A)", () => on.acceptProposal(a));
    yes.dataset.action = "accept";
    const no = button("✗", "reject: it is hidden and counts against the proposals (X)", () =>
      on.rejectProposal(a),
    );
    no.dataset.action = "reject";
    const refine = button("refine", "open it to add points; Enter saves it as accepted (R)", () =>
      on.refineProposal(a),
    );
    refine.dataset.action = "refine";
    li.append(swatch, score, area, yes, no, refine);
    li.onclick = (e) => !e.target.closest("button") && on.pointProposal(a.id);
    li.onmouseenter = () => on.highlight(a.id);
    li.onmouseleave = () => on.highlight(null);
    list.append(li);
  }
}

/** Move the cursor mark in the proposal list to `id` (the rows are not rebuilt). */
export function markProposalCursor(id) {
  for (const li of $("proposal-list").children) {
    li.classList.toggle("cursor", Number(li.dataset.annotationId) === id);
    if (Number(li.dataset.annotationId) === id) li.scrollIntoView({ block: "nearest" });
  }
}
