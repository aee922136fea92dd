// The side panel's lists of the current image's masks and proposals: DOM only. What the buttons
// do comes from `connectAnnotationPanel` (app.js), so this module changes no state itself.
import { proposalsInOrder, isProposal } from "./selectors.js";
import { scaleText } from "./ratings.js";
import { $ } from "./status.js";
import { state } from "./store.js";

/** @typedef {import('./store.js').AnnotationRecord} AnnotationRecord */
/** @typedef {(annotation: AnnotationRecord) => unknown} OnAnnotation */

const on = {
  changeCategory: /** @type {(annotation: AnnotationRecord, categoryId: number) => unknown} */ (
    () => {}
  ),
  toggleHidden: /** @type {OnAnnotation} */ (() => {}),
  reopen: /** @type {OnAnnotation} */ (() => {}),
  polygon: /** @type {OnAnnotation} */ (() => {}),
  remove: /** @type {OnAnnotation} */ (() => {}),
  acceptProposal: /** @type {OnAnnotation} */ (() => {}),
  rejectProposal: /** @type {OnAnnotation} */ (() => {}),
  refineProposal: /** @type {OnAnnotation} */ (() => {}),
  pointProposal: /** @type {(id: number) => unknown} */ (() => {}),
  highlight: /** @type {(id: number | null) => unknown} */ (() => {}),
  rate: /** @type {(annotation: AnnotationRecord, rating: number) => unknown} */ (() => {}),
  decideMask:
    /** @type {(annotation: AnnotationRecord, decision: string, reason?: string) => unknown} */ (
      () => {}
    ),
};
/** @type {number | null} the mask whose reject reason is being typed (review) */
let rejecting = null;

/** Set what the lists' buttons and rows do: handlers named as in `on` above. */
export function connectAnnotationPanel(/** @type {Partial<typeof on>} */ handlers) {
  Object.assign(on, handlers);
}

export function renderAnnotationList() {
  renderMaskList();
  renderProposalList();
}

/** A greyed list item saying why a list is empty. */
function emptyItem(/** @type {string} */ text) {
  const li = document.createElement("li");
  li.className = "empty";
  li.textContent = text;
  return li;
}

/**
 * @param {string} text
 * @param {string} title
 * @param {(event: MouseEvent) => unknown} onclick
 */
export function button(text, title, onclick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.title = title;
  b.onclick = onclick;
  return b;
}

function areaText(/** @type {number} */ area) {
  return area >= 10000 ? `${Math.round(area / 1000)}k` : String(area);
}

/** The image open now was taken for review (accounts on): masks get accept / reject buttons. */
function reviewing() {
  return !!state.team?.reviewing && state.team.held === state.image?.id;
}

/** Who made the mask (and who last changed it, if someone else), with which model, and the
 * review's decision (accounts on); while
 * reviewing, the mask's accept / reject buttons. */
function provenance(/** @type {AnnotationRecord} */ a, /** @type {boolean} */ review) {
  const meta = document.createElement("div");
  meta.className = "meta";
  const parts = [`by ${a.author ?? "–"}`, `model ${a.model_version ?? "–"}`];
  if (a.reviewer && !a.review) parts.push(`corrected by ${a.reviewer}`);
  else if (a.editor && a.editor !== a.author) parts.push(`edited by ${a.editor}`);
  const who = document.createElement("span");
  who.textContent = parts.join(" · ");
  meta.append(who);
  if (a.review) {
    const badge = document.createElement("span");
    badge.className = `badge ${a.review}`;
    badge.dataset.review = a.review;
    badge.textContent = a.review;
    badge.title = `${a.review} by ${a.reviewer ?? "–"}${a.review_reason ? `: ${a.review_reason}` : ""}`;
    meta.append(badge);
    if (a.review_reason) {
      const reason = document.createElement("span");
      reason.className = "reason";
      reason.textContent = a.review_reason;
      meta.append(reason);
    }
  }
  if (review) {
    const buttons = document.createElement("span");
    buttons.className = "review-buttons";
    buttons.append(...reviewButtons(a));
    meta.append(buttons);
  }
  return meta;
}

/** The reject reason form of one mask: a required text field. */
function rejectForm(/** @type {AnnotationRecord} */ a) {
  const form = document.createElement("form");
  form.className = "reject-form";
  const reason = document.createElement("input");
  reason.required = true;
  reason.maxLength = 2000;
  reason.placeholder = "why is it rejected?";
  reason.setAttribute("aria-label", "reason");
  const send = document.createElement("button");
  send.type = "submit";
  send.textContent = "Reject";
  const cancel = button("cancel", "keep it undecided", () => {
    rejecting = null;
    renderMaskList();
  });
  form.append(reason, send, cancel);
  form.onsubmit = (e) => {
    e.preventDefault();
    rejecting = null;
    on.decideMask(a, "reject", reason.value.trim());
  };
  queueMicrotask(() => reason.focus());
  return form;
}

/** An accepted mask's 1–10 rating menu: this person's rating, the scale on hover. */
function ratingMenu(/** @type {AnnotationRecord} */ a) {
  const menu = document.createElement("select");
  menu.className = "rating";
  const r = a.rating ?? { count: 0, mean: null, mine: null };
  const others = r.count ? ` · ${r.count} rating(s), mean ${r.mean}` : "";
  menu.title = `rate this mask 1–10 (with the pointer on its row: keys 1–9, 0 for 10)${others}\n${scaleText()}`;
  menu.add(new Option("rate", "", false, r.mine == null));
  for (let n = 1; n <= 10; n++) menu.add(new Option(`★ ${n}`, String(n), false, r.mine === n));
  menu.onchange = () => menu.value && on.rate(a, Number(menu.value));
  return menu;
}

function reviewButtons(/** @type {AnnotationRecord} */ a) {
  const yes = button("✓", "accept this mask", () => on.decideMask(a, "accept"));
  yes.dataset.action = "review-accept";
  const no = button("✗", "reject this mask, with a reason", () => {
    rejecting = a.id;
    renderMaskList();
  });
  no.dataset.action = "review-reject";
  return [yes, no];
}

function renderMaskList() {
  const list = $("annotation-list");
  list.replaceChildren();
  const review = reviewing();
  if (!review) rejecting = null;
  const masks = state.annotations.filter((a) => !isProposal(a));
  if (!masks.length) list.append(emptyItem("none yet: click an object, then Enter"));
  for (const a of masks) {
    const li = document.createElement("li");
    li.dataset.annotationId = String(a.id);
    li.classList.toggle("hidden", state.hidden.has(a.id));
    li.classList.toggle("editing", state.editing?.annotation.id === a.id);
    const category = state.categories.find((c) => c.id === a.category_id);
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = category?.color ?? "#888";
    const select = document.createElement("select");
    select.title = "category";
    for (const c of state.categories)
      select.add(new Option(c.name, String(c.id), false, c.id === a.category_id));
    select.onchange = () => on.changeCategory(a, Number(select.value));
    const area = document.createElement("span");
    area.className = "area";
    area.textContent = `${areaText(a.area)} px`;
    area.title = `area: ${a.area} pixels · made ${a.stage}`;
    const eye = button(state.hidden.has(a.id) ? "show" : "hide", "hide/show this mask", () =>
      on.toggleHidden(a),
    );
    const edit = review
      ? button("correct", "re-open this mask and refine it; Enter saves your correction", () =>
          on.reopen(a),
        )
      : button("edit", "re-open this mask to refine it with more points", () => on.reopen(a));
    edit.dataset.action = "edit";
    const shape = button("polygon", "edit this mask's outline as polygons (vertices)", () =>
      on.polygon(a),
    );
    shape.dataset.action = "polygon";
    const rate = ratingMenu(a);
    const del = button("Delete", "Delete this mask from the project (Ctrl+Z brings it back)", () =>
      on.remove(a),
    );
    del.className = "delete";
    li.append(swatch, select, area, eye, edit, shape, rate, del);
    if (state.team || a.review) li.append(provenance(a, review));
    if (rejecting === a.id) li.append(rejectForm(a));
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
    li.dataset.annotationId = String(a.id);
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
    li.onclick = (e) =>
      !(/** @type {Element} */ (e.target).closest("button")) && on.pointProposal(a.id);
    li.onmouseenter = () => on.highlight(a.id);
    li.onmouseleave = () => on.highlight(null);
    list.append(li);
  }
}

/** Move the cursor mark in the proposal list to `id` (the rows are not rebuilt). */
export function markProposalCursor(/** @type {number | null} */ id) {
  for (const li of $("proposal-list").children) {
    li.classList.toggle("cursor", Number(li.dataset.annotationId) === id);
    if (Number(li.dataset.annotationId) === id) li.scrollIntoView({ block: "nearest" });
  }
}
