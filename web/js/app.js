// The annotation page: state, input and drawing. The decoder and all per-pixel work run in the
// worker (decoder-worker.js); this thread turns clicks into prompts and draws what comes back.
import { api, routes } from "./api.js";
import { DecoderClient } from "./decoder-client.js";
import { PromptHistory } from "./history.js";
import { watchModelVersion } from "./model-version.js";
import { isAmbiguous, LABEL, normalizeBox, promptFromJson, promptToJson } from "./prompts.js";
import { SHORTCUTS } from "./shortcuts.js";
import { View } from "./view.js";

const $ = (id) => document.getElementById(id);
const ORT_URL = "/vendor/ort/ort.wasm.min.mjs";
const PREFETCH = 2; // embeddings of the next images loaded ahead
const DRAG_PX = 5; // a press that moves farther is a box drag, not a click
const STORE = { image: "maskloop.imageId", category: "maskloop.categoryId" };
// A proposal's stored grid point is run through the decoder again when it is refined; its
// candidate must match the stored mask this well, else the mask itself stands for the logits.
const SEED_MATCH_IOU = 0.75;
const LATENCIES_KEPT = 1000; // prompt -> mask timings kept for the status line's readers (tests, bench)
const DEFAULT_CATEGORY = "object"; // what a first accept takes when no category exists yet (as the engine's)

const ui = {
  stage: $("stage"),
  layers: { image: $("layer-image"), annotations: $("layer-annotations"), object: $("layer-object") },
};

const state = {
  manifest: null,
  decoderPrecision: null,
  decoderReady: false,
  images: [],
  imageIndex: -1,
  image: null, // the current image's API record
  picture: null, // its ImageBitmap
  openSeq: 0, // guards against answers for an image that is no longer open
  categories: [],
  categoryId: null,
  annotations: [],
  drawn: new Map(), // annotation id -> {bitmap, box}
  hidden: new Set(),
  highlightId: null,
  showAnnotations: true,
  showProposals: true,
  proposalCursor: null, // the proposal that A / X / R act on (J / K move it)
  proposing: null, // the image the server generates proposals for, while it does
  showUncovered: false,
  uncovered: null, // {bitmap}: the current image's area in no accepted mask
  uncoveredSeq: 0,
  view: new View(),
  viewFitted: false,
  history: new PromptHistory(),
  mask: null, // {bitmap, region, state}: what the object layer shows
  drafts: new Map(), // imageId -> unaccepted object {history, clicks, since}
  clicks: 0,
  since: performance.now(), // when work on the current object started
  hiddenMs: 0, // time the tab was hidden since then (not counted as work)
  hiddenSince: null,
  editing: null, // {annotation, lowRes, proposal} while a stored mask is re-opened (refined)
  press: null, // pointer press in progress
  pan: null,
  spaceDown: false,
  busy: 0,
  saving: false,
  latencies: [], // {total, decode, render, frame} per prompt, ms: the last LATENCIES_KEPT
  latencyCount: 0, // prompts timed since the page opened
  versionSwitches: [], // {from, to, at}: model versions the page switched to without a reload
  firstMaskMs: null, // opening the current image -> its first mask drawn
  firstMaskAt: null,
  openedAt: null,
};
const decoder = new DecoderClient(new URL("./decoder-worker.js", import.meta.url));

// ---------------------------------------------------------------------------------------- status
function setStatus(id, text, level = "") {
  const el = $(id);
  el.textContent = text;
  el.className = level;
}

function showError(message) {
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

function errorText(err) {
  return err?.message || String(err);
}

function stageMessage(text) {
  $("stage-message").hidden = !text;
  $("stage-message").textContent = text || "";
}

let idleWaiters = [];
async function tracked(promise) {
  state.busy++;
  try {
    return await promise;
  } finally {
    state.busy--;
    if (!state.busy) {
      idleWaiters.forEach((resolve) => resolve());
      idleWaiters = [];
    }
  }
}

// --------------------------------------------------------------------------------------- drawing
let dpr = window.devicePixelRatio || 1;
let cssW = 1;
let cssH = 1;

function resizeCanvases() {
  const rect = ui.stage.getBoundingClientRect();
  dpr = window.devicePixelRatio || 1;
  cssW = Math.max(1, rect.width);
  cssH = Math.max(1, rect.height);
  for (const canvas of Object.values(ui.layers)) {
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
  }
  if (state.image && !state.viewFitted) fitView();
  drawAll();
  scheduleMaskRefresh();
}

function withImageTransform(ctx) {
  const { scale, tx, ty } = state.view;
  ctx.setTransform(dpr * scale, 0, 0, dpr * scale, dpr * tx, dpr * ty);
}

function clear(ctx) {
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
}

function drawImageLayer() {
  const ctx = ui.layers.image.getContext("2d");
  clear(ctx);
  if (!state.picture) return;
  withImageTransform(ctx);
  // Zoomed in, show image pixels as squares: what you click is the pixel you see.
  ctx.imageSmoothingEnabled = state.view.scale * dpr < 1;
  ctx.imageSmoothingQuality = "medium";
  ctx.drawImage(state.picture, 0, 0);
}

/** Accepted masks, then proposals over them (dashed, neutral), then the proposal cursor's box. */
function drawAnnotationLayer() {
  const ctx = ui.layers.annotations.getContext("2d");
  clear(ctx);
  if (!state.image) return;
  if (state.showUncovered && state.uncovered) drawUncovered(ctx);
  withImageTransform(ctx);
  ctx.imageSmoothingEnabled = false;
  const highlight = state.highlightId;
  const cursor = cursorProposal();
  const draw = (a, shown) => {
    const drawn = state.drawn.get(a.id);
    if (!drawn?.bitmap || state.editing?.annotation.id === a.id) return;
    if (!(a.id === highlight || a.id === cursor?.id || (shown && !state.hidden.has(a.id)))) return;
    ctx.globalAlpha = highlight == null || a.id === highlight ? 1 : 0.35;
    const [x, y, w, h] = drawn.box;
    ctx.drawImage(drawn.bitmap, x, y, w, h);
  };
  for (const a of state.annotations) if (!isProposal(a)) draw(a, state.showAnnotations);
  for (const a of state.annotations) if (isProposal(a)) draw(a, state.showProposals);
  ctx.globalAlpha = 1;
  if (cursor && state.editing?.annotation.id !== cursor.id) {
    const [x, y, w, h] = cursor.bbox;
    const [ax, ay] = state.view.imageToScreen(x, y);
    const [bx, by] = state.view.imageToScreen(x + w, y + h);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.lineWidth = 1.5;
    ctx.setLineDash([6, 4]);
    ctx.strokeStyle = "#4da3ff";
    ctx.strokeRect(ax - 3, ay - 3, bx - ax + 6, by - ay + 6);
    ctx.setLineDash([]);
  }
}

let hatch = null; // {tile, scratch}: the uncovered area's pattern and a canvas to compose it on

/**
 * Hatch the image area that no accepted mask covers. The area is an image-frame bitmap; the
 * hatch is laid in screen pixels (source-in over the bitmap), so it stays fine at any zoom.
 */
function drawUncovered(ctx) {
  if (!hatch) {
    const tile = document.createElement("canvas");
    tile.width = tile.height = 8;
    const t = tile.getContext("2d");
    t.fillStyle = "rgba(8, 10, 14, 0.5)";
    t.fillRect(0, 0, 8, 8);
    t.strokeStyle = "rgba(255, 196, 0, 0.75)";
    t.lineWidth = 1.25;
    t.beginPath();
    for (const o of [-8, 0, 8]) {
      t.moveTo(o, 8);
      t.lineTo(o + 8, 0);
    }
    t.stroke();
    hatch = { tile, scratch: document.createElement("canvas") };
  }
  const { scratch } = hatch;
  if (scratch.width !== ctx.canvas.width || scratch.height !== ctx.canvas.height) {
    scratch.width = ctx.canvas.width;
    scratch.height = ctx.canvas.height;
  }
  const s = scratch.getContext("2d");
  clear(s);
  s.globalCompositeOperation = "source-over";
  withImageTransform(s);
  s.imageSmoothingEnabled = false;
  s.drawImage(state.uncovered.bitmap, 0, 0, state.image.width, state.image.height);
  s.setTransform(1, 0, 0, 1, 0, 0);
  s.globalCompositeOperation = "source-in";
  s.fillStyle = s.createPattern(hatch.tile, "repeat");
  s.fillRect(0, 0, scratch.width, scratch.height);
  s.globalCompositeOperation = "source-over";
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.drawImage(scratch, 0, 0);
}

function drawObjectLayer() {
  const ctx = ui.layers.object.getContext("2d");
  clear(ctx);
  if (!state.image) return;
  const current = state.history.current;
  ctx.imageSmoothingEnabled = false;
  withImageTransform(ctx);
  if (state.mask && current && state.mask.state === current) {
    const { x0, y0, x1, y1 } = state.mask.region;
    ctx.drawImage(state.mask.bitmap, x0, y0, x1 - x0, y1 - y0);
  } else if (state.editing && (!current || !current.resultId)) {
    const drawn = state.drawn.get(state.editing.annotation.id);
    if (drawn?.bitmap) ctx.drawImage(drawn.bitmap, ...drawn.box);
  }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const prompt = current?.prompt;
  if (prompt?.box) drawBox(ctx, prompt.box, false);
  if (state.press?.moved) {
    const [ax, ay] = state.view.screenToImage(state.press.sx, state.press.sy);
    const [bx, by] = state.view.screenToImage(state.press.lastX, state.press.lastY);
    drawBox(ctx, normalizeBox(ax, ay, bx, by), true);
  }
  for (const p of prompt?.points ?? []) {
    const [sx, sy] = state.view.imageToScreen(p.x, p.y);
    ctx.beginPath();
    ctx.arc(sx, sy, 5, 0, 2 * Math.PI);
    ctx.fillStyle = p.label === LABEL.foreground ? "#2ecc71" : "#ff4d4d";
    ctx.fill();
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = "#fff";
    ctx.stroke();
  }
}

function drawBox(ctx, box, rubber) {
  const [ax, ay] = state.view.imageToScreen(box.x0, box.y0);
  const [bx, by] = state.view.imageToScreen(box.x1, box.y1);
  ctx.lineWidth = 1.5;
  ctx.setLineDash(rubber ? [5, 4] : []);
  ctx.strokeStyle = "#ffd54a";
  ctx.strokeRect(ax, ay, bx - ax, by - ay);
  ctx.setLineDash([]);
}

function drawAll() {
  drawImageLayer();
  drawAnnotationLayer();
  drawObjectLayer();
}

// ------------------------------------------------------------------------------------------ view
function fitView() {
  if (!state.image) return;
  state.view = View.fit(state.image.width, state.image.height, cssW, cssH);
  state.viewFitted = true;
}

function setView(view) {
  state.view = view;
  drawAll();
  scheduleMaskRefresh();
}

function currentRegion() {
  return state.view.visibleRegion(state.image.width, state.image.height, cssW, cssH, dpr);
}

let refreshTimer = null;
/** After zoom/pan settles, draw the current mask again at the new on-screen resolution. */
function scheduleMaskRefresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    const current = state.history.current;
    if (current?.resultId && current.done) tracked(showState(current));
  }, 80);
}

// -------------------------------------------------------------------------------------- prompting
function categoryColor() {
  return state.categories.find((c) => c.id === state.categoryId)?.color ?? "#1e90ff";
}

function startObjectClock() {
  state.since = performance.now();
  state.hiddenMs = 0;
}

function addPrompt(prompt, { refine }, t0) {
  const prev = state.history.current;
  let maskFrom = null;
  if (refine && prev?.resultId) maskFrom = { resultId: prev.resultId, candidate: prev.candidate };
  else if (refine && !prev?.resultId && state.editing) maskFrom = { lowRes: state.editing.lowRes };
  const entry = { prompt, maskFrom, resultId: null, candidate: null, iou: null, done: false };
  if (state.history.states.length === 0 && !state.editing && state.clicks === 0) startObjectClock();
  state.history.push(entry);
  state.clicks++;
  drawObjectLayer();
  return tracked(decodeEntry(entry, t0));
}

/**
 * Run the decoder for a history entry and show its mask. `matchRle` (a stored mask): pick the
 * candidate most like it instead of the best-scored one. Resolves to the worker's reply (null
 * when the decoder failed).
 */
async function decodeEntry(entry, t0, matchRle = null) {
  const image = state.image;
  const seq = state.openSeq;
  const region = currentRegion();
  const id = decoder.reserveId();
  entry.resultId = id;
  let reply;
  try {
    reply = await decoder.request("decode", {
      imageId: image.id, embeddingUrl: routes.embedding(image.id), hw: [image.height, image.width],
      prompt: entry.prompt, maskInput: entry.maskFrom, candidate: entry.candidate, region, color: categoryColor(),
      matchRle,
    }, [], id);
  } catch (err) {
    entry.resultId = null;
    if (seq === state.openSeq) showError(`the decoder failed: ${errorText(err)}`);
    return null;
  }
  entry.iou = reply.iou;
  entry.candidate ??= reply.candidate;
  entry.done = true;
  if (seq !== state.openSeq || state.history.current !== entry) {
    reply.bitmap?.close();
    return reply;
  }
  setMask(reply.bitmap, reply.region, entry);
  drawObjectLayer();
  if (!entry.seed) recordLatency(t0, reply.decodeMs, reply.renderMs); // a seed is no person's prompt
  updateCandidates();
  return reply;
}

function setMask(bitmap, region, entry) {
  state.mask?.bitmap?.close();
  state.mask = bitmap ? { bitmap, region, state: entry } : null;
}

function recordLatency(t0, decodeMs, renderMs) {
  const total = performance.now() - t0;
  const entry = { total, decode: decodeMs, render: renderMs, frame: null };
  state.latencies.push(entry);
  if (state.latencies.length > LATENCIES_KEPT) state.latencies.splice(0, state.latencies.length - LATENCIES_KEPT);
  state.latencyCount++;
  requestAnimationFrame(() => {
    entry.frame = performance.now() - t0; // the frame that shows the mask is being produced
  });
  if (state.firstMaskMs == null && state.openedAt != null) state.firstMaskMs = performance.now() - state.openedAt;
  state.firstMaskAt ??= performance.now(); // since the page's navigation started
  setStatus("st-latency", `prompt → mask ${Math.round(total)} ms (decoder ${Math.round(decodeMs)})`,
    total <= 50 ? "ok" : total <= 150 ? "warn" : "bad");
}

/** Draw a history entry's mask (after undo/redo, a candidate switch, a zoom). */
async function showState(entry) {
  if (!entry?.resultId || !entry.done) {
    setMask(null);
    drawObjectLayer();
    updateCandidates();
    return;
  }
  const region = currentRegion();
  const seq = state.openSeq;
  try {
    const reply = await decoder.request("render", {
      resultId: entry.resultId, candidate: entry.candidate, region, color: categoryColor(),
    });
    if (seq !== state.openSeq || state.history.current !== entry) {
      reply.bitmap.close();
      return;
    }
    setMask(reply.bitmap, reply.region, entry);
  } catch {
    // The worker no longer keeps that result: run the decoder again for these prompts.
    entry.done = false;
    entry.maskFrom = null;
    await decodeEntry(entry, performance.now());
    return;
  }
  drawObjectLayer();
  updateCandidates();
}

function undo() {
  if (!state.history.canUndo) return;
  tracked(showState(state.history.undo()));
  drawObjectLayer();
}

function redo() {
  if (!state.history.canRedo) return;
  tracked(showState(state.history.redo()));
  drawObjectLayer();
}

function clearObject() {
  stageMessage("");
  state.history.clear();
  setMask(null);
  state.clicks = 0;
  if (state.editing) {
    state.editing = null;
    renderAnnotationList();
    drawAnnotationLayer();
  }
  updateCandidates();
  drawObjectLayer();
}

// ------------------------------------------------------------------------------------ candidates
function updateCandidates() {
  const box = $("candidates");
  const current = state.history.current;
  const show = current?.done && isAmbiguous(current.prompt) && current.iou;
  box.hidden = !show;
  box.querySelectorAll("button").forEach((b) => b.remove());
  if (!show) return;
  state.manifest.mask_candidates.multimask_indices.forEach((index, k) => {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.candidate = index;
    b.textContent = `${k + 1} · IoU ${current.iou[index].toFixed(2)}`;
    b.className = index === current.candidate ? "current" : "";
    b.title = `mask candidate ${k + 1} (key ${k + 1}); predicted IoU ${current.iou[index].toFixed(3)}`;
    b.onclick = () => pickCandidate(index);
    box.append(b);
  });
}

function candidatesShown() {
  return !$("candidates").hidden;
}

function pickCandidate(index) {
  const current = state.history.current;
  if (!current?.done || !isAmbiguous(current.prompt) || current.candidate === index) return;
  current.candidate = index;
  updateCandidates();
  tracked(showState(current));
}

function cycleCandidate(step) {
  const current = state.history.current;
  if (!current?.done || !isAmbiguous(current.prompt)) return;
  const order = state.manifest.mask_candidates.multimask_indices;
  const k = order.indexOf(current.candidate);
  pickCandidate(order[(k + step + order.length) % order.length]);
}

// ----------------------------------------------------------------------------------------- accept
async function accept() {
  const current = state.history.current;
  if (state.saving) return;
  if (state.editing?.proposal && (!current?.resultId || (current.seed && current.candidate === current.seedCandidate))) {
    const proposal = state.editing.annotation; // opened to refine, but taken as it was proposed
    clearObject();
    await acceptProposals([proposal]);
    return;
  }
  if (state.editing && !current?.resultId) {
    clearObject(); // re-opened and left unchanged
    return;
  }
  if (!current?.done) {
    showError(cursorProposal()
      ? "nothing to accept yet: click on an object first (A accepts the highlighted proposal)"
      : "nothing to accept yet: click on an object first (or wait for its mask)");
    return;
  }
  const image = state.image;
  const seq = state.openSeq;
  const editing = state.editing;
  const nextCursor = editing?.proposal ? cursorAfter([editing.annotation.id]) : null;
  const seconds = Math.max(0, (performance.now() - state.since - state.hiddenMs) / 1000);
  state.saving = true;
  setStatus("st-saving", "saving…", "warn");
  try {
    if (state.categoryId == null) await selectDefaultCategory(); // the first accept needs no trip to the panel
    const encoded = await decoder.request("encode", {
      resultId: current.resultId, candidate: current.candidate, color: categoryColor(),
    });
    if (!encoded.area) throw new Error("the mask is empty: add a foreground point inside the object");
    const prompts = {
      ...promptToJson(current.prompt), candidate: current.candidate, decoder: state.decoderPrecision,
      refined: !!current.maskFrom || state.history.index > 0,
    };
    const seed = state.history.states[0];
    if (editing?.proposal && seed?.seed) prompts.seed_candidate = seed.seedCandidate; // the grid point's mask
    const body = { category_id: state.categoryId, segmentation: encoded.rle, clicks: state.clicks,
      seconds: Math.round(seconds * 10) / 10, prompts, model_version: state.manifest.model_version };
    let saved;
    if (editing) {
      body.clicks += editing.annotation.clicks ?? 0;
      body.seconds = Math.round((body.seconds + (editing.annotation.seconds ?? 0)) * 10) / 10;
      body.status = "accepted"; // a refined proposal is accepted by saving it
      saved = await api(routes.annotation(editing.annotation.id), { method: "PATCH", body });
    } else {
      saved = await api(routes.annotations(image.id), { method: "POST", body: { ...body, stage: "manual" } });
    }
    setStatus("st-saving", `saved #${saved.id}`, "ok");
    $("st-saving").title = `mask #${saved.id}: ${saved.area} px, ${body.clicks} clicks, ${body.seconds} s`;
    state.drafts.delete(image.id);
    if (seq === state.openSeq) {
      state.drawn.get(saved.id)?.bitmap?.close();
      if (encoded.bitmap) state.drawn.set(saved.id, { bitmap: encoded.bitmap, box: encoded.drawBox });
      state.annotations = state.annotations.filter((a) => a.id !== saved.id).concat([saved]);
      state.annotations.sort((a, b) => a.id - b.id);
      state.editing = null;
      if (editing?.proposal && state.proposalCursor === saved.id) state.proposalCursor = nextCursor;
      state.history.clear();
      setMask(null);
      state.clicks = 0;
      stageMessage("");
      startObjectClock();
      renderAnnotationList();
      updateCandidates();
      drawAnnotationLayer();
      drawObjectLayer();
      tracked(updateUncovered());
    }
    refreshImages();
    refreshCategories();
  } catch (err) {
    setStatus("st-saving", "not saved", "bad");
    showError(`the mask was not saved (it is still here; press Enter to try again): ${errorText(err)}`);
  } finally {
    state.saving = false;
  }
}

/** Select the category DEFAULT_CATEGORY, creating it first when the store has none of that name. */
async function selectDefaultCategory() {
  const named = () => state.categories.find((c) => c.name === DEFAULT_CATEGORY);
  if (!named()) {
    try {
      await api(routes.categories, { method: "POST", body: { name: DEFAULT_CATEGORY, color: $("category-color").value } });
    } catch (err) {
      await refreshCategories(); // made elsewhere in the meantime?
      if (!named()) throw new Error(`the category "${DEFAULT_CATEGORY}" was not created: ${errorText(err)}`);
    }
    await refreshCategories();
    $("category-color").value = nextColor();
    if (!named()) throw new Error(`the category "${DEFAULT_CATEGORY}" was created but the list did not load`);
  }
  selectCategory(named().id);
}

// ------------------------------------------------------------------------------------ annotations
async function loadAnnotations(image, seq) {
  const list = await api(routes.annotations(image.id));
  if (seq !== state.openSeq) return;
  state.annotations = list.filter((a) => a.status !== "rejected");
  await drawAnnotations(state.annotations, seq);
  if (seq !== state.openSeq) return;
  if (!cursorProposal()) state.proposalCursor = proposalsInOrder()[0]?.id ?? null;
  renderAnnotationList();
  drawAnnotationLayer();
  await updateUncovered();
}

/** (Re)make the bitmaps of some annotations in their category colours. */
async function drawAnnotations(annotations, seq = state.openSeq) {
  if (!annotations.length) return;
  const colors = new Map(state.categories.map((c) => [c.id, c.color]));
  const reply = await decoder.request("annotationBitmaps", {
    annotations: annotations.map((a) => ({
      id: a.id, rle: a.segmentation, color: colors.get(a.category_id) ?? "#888888", style: isProposal(a) ? "proposal" : "accepted",
    })),
  });
  if (seq !== state.openSeq) {
    reply.bitmaps.forEach((b) => b.bitmap?.close());
    return;
  }
  for (const b of reply.bitmaps) {
    state.drawn.get(b.id)?.bitmap?.close();
    state.drawn.set(b.id, { bitmap: b.bitmap, box: b.box });
  }
  drawAnnotationLayer();
  drawObjectLayer();
}

function renderAnnotationList() {
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
    for (const c of state.categories) select.add(new Option(c.name, c.id, false, c.id === a.category_id));
    select.onchange = () => tracked(changeCategory(a, Number(select.value)));
    const area = document.createElement("span");
    area.className = "area";
    area.textContent = a.area >= 10000 ? `${Math.round(a.area / 1000)}k` : String(a.area);
    area.title = `${a.area} px · ${a.stage}`;
    const eye = button(state.hidden.has(a.id) ? "show" : "hide", "hide/show this mask", () => {
      if (state.hidden.has(a.id)) state.hidden.delete(a.id);
      else state.hidden.add(a.id);
      renderAnnotationList();
      drawAnnotationLayer();
    });
    const edit = button("edit", "re-open this mask to refine it with more points", () => tracked(reopen(a)));
    const del = button("×", "delete this mask", () => tracked(deleteAnnotation(a)));
    li.append(swatch, select, area, eye, edit, del);
    li.onmouseenter = () => setHighlight(a.id);
    li.onmouseleave = () => setHighlight(null);
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
    area.textContent = a.area >= 10000 ? `${Math.round(a.area / 1000)}k` : String(a.area);
    area.title = `${a.area} px`;
    const yes = button("✓", "accept with the current category (A)", () => tracked(acceptProposals([a])));
    yes.dataset.action = "accept";
    const no = button("✗", "reject: it is hidden and counts against the proposals (X)", () => tracked(rejectProposal(a)));
    no.dataset.action = "reject";
    const refine = button("refine", "open it to add points; Enter saves it as accepted (R)", () => tracked(refineProposal(a)));
    refine.dataset.action = "refine";
    li.append(swatch, score, area, yes, no, refine);
    li.onclick = (e) => !e.target.closest("button") && setProposalCursor(a.id);
    li.onmouseenter = () => setHighlight(a.id);
    li.onmouseleave = () => setHighlight(null);
    list.append(li);
  }
}

function button(text, title, onclick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.title = title;
  b.onclick = onclick;
  return b;
}

function setHighlight(id) {
  if (state.highlightId === id) return;
  state.highlightId = id;
  drawAnnotationLayer();
}

async function changeCategory(annotation, categoryId) {
  try {
    const saved = await api(routes.annotation(annotation.id), { method: "PATCH", body: { category_id: categoryId } });
    Object.assign(annotation, saved);
    await drawAnnotations([annotation]);
    renderAnnotationList();
    refreshCategories();
  } catch (err) {
    showError(`the category was not changed: ${errorText(err)}`);
    renderAnnotationList();
  }
}

async function deleteAnnotation(annotation) {
  try {
    await api(routes.annotation(annotation.id), { method: "DELETE" });
  } catch (err) {
    showError(`the mask was not deleted: ${errorText(err)}`);
    return;
  }
  state.annotations = state.annotations.filter((a) => a.id !== annotation.id);
  state.drawn.get(annotation.id)?.bitmap?.close();
  state.drawn.delete(annotation.id);
  if (state.highlightId === annotation.id) state.highlightId = null;
  if (state.editing?.annotation.id === annotation.id) clearObject();
  renderAnnotationList();
  drawAnnotationLayer();
  refreshImages();
  refreshCategories();
  await updateUncovered();
}

/** Re-open an accepted mask: its prompts come back; new points refine it (mask fed back). */
async function reopen(annotation) {
  clearObject();
  let lowRes;
  try {
    ({ lowRes } = await decoder.request("maskLogits", { rle: annotation.segmentation }));
  } catch (err) {
    showError(`cannot re-open mask #${annotation.id}: ${errorText(err)}`);
    return;
  }
  state.editing = { annotation, lowRes };
  state.categoryId = annotation.category_id;
  markCurrentCategory();
  const prompt = promptFromJson(annotation.prompts);
  if (prompt.points.length || prompt.box) {
    state.history.push({ prompt, maskFrom: null, resultId: null, candidate: null, iou: null, done: false });
  }
  startObjectClock();
  renderAnnotationList();
  drawAnnotationLayer();
  drawObjectLayer();
  stageMessage(`editing mask #${annotation.id}: add points to refine, Enter saves, Esc leaves it as it was`);
}

// ------------------------------------------------------------------------------------ proposals
function isProposal(annotation) {
  return annotation.status === "proposed";
}

/** The current image's proposals, most confident first (the list's order; J / K walk it). */
function proposalsInOrder() {
  return state.annotations.filter(isProposal)
    .sort((a, b) => (b.predicted_iou ?? -1) - (a.predicted_iou ?? -1) || a.id - b.id);
}

function cursorProposal() {
  return state.annotations.find((a) => a.id === state.proposalCursor && isProposal(a)) ?? null;
}

/** What A / X / R act on: the proposal under the mouse in the list, else the cursor. */
function targetProposal() {
  const hovered = state.annotations.find((a) => a.id === state.highlightId && isProposal(a));
  const target = hovered ?? cursorProposal();
  if (!target) setProposeStatus("no proposal to act on: Propose (G) makes some", "warn");
  return target;
}

/** The proposal the cursor goes to once `ids` are decided: the next in the list, else the one before. */
function cursorAfter(ids) {
  const order = proposalsInOrder().map((a) => a.id);
  const gone = new Set(ids);
  const last = Math.max(...ids.map((id) => order.indexOf(id)));
  if (last < 0) return state.proposalCursor;
  return order.slice(last + 1).find((id) => !gone.has(id))
    ?? order.slice(0, last).reverse().find((id) => !gone.has(id)) ?? null;
}

function setProposalCursor(id) {
  state.proposalCursor = id;
  for (const li of $("proposal-list").children) {
    li.classList.toggle("cursor", Number(li.dataset.annotationId) === id);
    if (Number(li.dataset.annotationId) === id) li.scrollIntoView({ block: "nearest" });
  }
  drawAnnotationLayer();
}

function moveProposalCursor(step) {
  const order = proposalsInOrder();
  if (!order.length) return targetProposal();
  const i = order.findIndex((a) => a.id === state.proposalCursor);
  setProposalCursor(order[i < 0 ? 0 : (i + step + order.length) % order.length].id);
}

function setProposeStatus(text, level = "") {
  const el = $("propose-status");
  el.textContent = text;
  el.className = level;
}

/** The grid size asked for (points per side), or null for the server's default. */
function proposePoints() {
  const raw = $("propose-points").value.trim();
  if (!raw) return null;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new Error(`the grid must be a whole number of points per side from 1 to 64, not "${raw}"`);
  return n;
}

/** Ask the server for automatic masks of the current image; they come back as proposals. */
async function propose() {
  const image = state.image;
  if (!image || state.proposing) return;
  let points;
  try {
    points = proposePoints();
  } catch (err) {
    setProposeStatus("not proposed: see the message above", "bad");
    showError(errorText(err));
    return;
  }
  const grid = points ? `${points}×${points} grid` : "the server's default grid";
  const since = performance.now();
  state.proposing = image;
  $("propose-button").disabled = true;
  const progress = () => setProposeStatus(`proposing… ${Math.round((performance.now() - since) / 1000)} s (${grid})`, "warn");
  progress();
  const timer = setInterval(progress, 1000);
  try {
    const reply = await api(routes.propose(image.id), { method: "POST", body: points ? { points_per_side: points } : {} });
    clearInterval(timer);
    const secs = Math.round((performance.now() - since) / 100) / 10;
    const where = state.image?.id === image.id ? "" : ` on ${image.file_name}`;
    const repeats = reply.generated - reply.created;
    const text = reply.created
      ? `${reply.created} new proposal${reply.created === 1 ? "" : "s"}${where} · ${secs} s`
      : `no new proposals${where}${reply.generated ? ` (${repeats} already on the image)` : ": no confident masks found"} · ${secs} s`;
    setProposeStatus(text, reply.created ? "ok" : "");
    $("propose-status").title = `${reply.generated} masks generated (${grid}); ${repeats} overlapped a mask already on the image`;
    await refreshCategories(); // proposals come with the category "object", made if missing
    if (state.image?.id === image.id) {
      const fresh = new Set(reply.ids);
      await loadAnnotations(state.image, state.openSeq);
      const first = proposalsInOrder().find((a) => fresh.has(a.id));
      if (first && !cursorProposal()) setProposalCursor(first.id);
    }
    refreshImages();
  } catch (err) {
    clearInterval(timer);
    setProposeStatus("proposing failed: see the message above", "bad");
    showError(`no proposals for ${image.file_name}: ${errorText(err)}`);
  } finally {
    clearInterval(timer);
    state.proposing = null;
    $("propose-button").disabled = false;
  }
}

/** Accept proposals as they are, with the current category. */
async function acceptProposals(list) {
  if (!list.length) return;
  if (state.categoryId == null) {
    showError("choose a category first: create one on the right (name, then Add) or press its number key");
    return;
  }
  const categoryId = state.categoryId;
  const seq = state.openSeq;
  const next = cursorAfter(list.map((a) => a.id));
  const saved = [];
  for (const a of list) {
    try {
      saved.push(await api(routes.annotation(a.id), { method: "PATCH", body: { status: "accepted", category_id: categoryId } }));
    } catch (err) {
      showError(`proposal #${a.id} was not accepted: ${errorText(err)}`);
      break;
    }
  }
  if (seq === state.openSeq && saved.length) {
    const byId = new Map(saved.map((a) => [a.id, a]));
    state.annotations = state.annotations.map((a) => byId.get(a.id) ?? a);
    if (byId.has(state.proposalCursor)) state.proposalCursor = saved.length === list.length ? next : cursorAfter([...byId.keys()]);
    if (byId.has(state.highlightId)) state.highlightId = null; // its row is rebuilt: no mouseleave will come
    if (state.editing && byId.has(state.editing.annotation.id)) clearObject();
    await drawAnnotations(saved, seq);
    renderAnnotationList();
    drawAnnotationLayer();
    await updateUncovered();
  }
  if (saved.length) {
    refreshImages();
    refreshCategories();
  }
}

/** Reject a proposal: it stays in the store (the acceptance rate counts it) but is no longer shown. */
async function rejectProposal(annotation) {
  const seq = state.openSeq;
  const next = cursorAfter([annotation.id]);
  try {
    await api(routes.annotation(annotation.id), { method: "PATCH", body: { status: "rejected" } });
  } catch (err) {
    showError(`proposal #${annotation.id} was not rejected: ${errorText(err)}`);
    return;
  }
  if (seq !== state.openSeq) return;
  if (state.editing?.annotation.id === annotation.id) clearObject();
  state.annotations = state.annotations.filter((a) => a.id !== annotation.id);
  state.drawn.get(annotation.id)?.bitmap?.close();
  state.drawn.delete(annotation.id);
  if (state.highlightId === annotation.id) state.highlightId = null;
  if (state.proposalCursor === annotation.id) state.proposalCursor = next;
  renderAnnotationList();
  drawAnnotationLayer();
}

/**
 * Open a proposal as the current object, to add points to it. The automatic generator made it
 * from one grid point, so that point is run through the decoder again (the candidate most like
 * the stored mask is kept): the person's points then refine it with the decoder's own logits fed
 * back, as for any mask. Without a stored point, the mask itself stands for the logits.
 */
async function refineProposal(annotation) {
  clearObject();
  const seq = state.openSeq;
  state.editing = { annotation, lowRes: null, proposal: true };
  state.proposalCursor = annotation.id;
  startObjectClock();
  renderAnnotationList();
  drawAnnotationLayer();
  drawObjectLayer();
  stageMessage(`refining proposal #${annotation.id}: add points, Enter accepts it, Esc leaves it proposed`);
  const point = annotation.prompts?.point;
  if (Array.isArray(point) && point.length === 2) {
    const entry = {
      prompt: { points: [{ x: point[0], y: point[1], label: LABEL.foreground }], box: null },
      maskFrom: null, resultId: null, candidate: null, iou: null, done: false, seed: true,
    };
    state.history.push(entry);
    const reply = await decodeEntry(entry, performance.now(), annotation.segmentation);
    if (seq !== state.openSeq || state.editing?.annotation !== annotation) return;
    if (reply && reply.matchIou >= SEED_MATCH_IOU) {
      entry.seedCandidate = reply.candidate;
      return;
    }
    if (state.history.states.length > 1) return; // points were added meanwhile: keep them
    state.history.clear();
    setMask(null);
    updateCandidates();
    drawObjectLayer();
  }
  try {
    ({ lowRes: state.editing.lowRes } = await decoder.request("maskLogits", { rle: annotation.segmentation }));
  } catch (err) {
    showError(`cannot refine proposal #${annotation.id}: ${errorText(err)}`);
    clearObject();
  }
}

function toggleUncovered(show = !state.showUncovered) {
  state.showUncovered = show;
  $("show-uncovered").checked = show;
  if (show) return tracked(updateUncovered());
  state.uncoveredSeq++;
  state.uncovered?.bitmap?.close();
  state.uncovered = null;
  $("uncovered").textContent = "";
  drawAnnotationLayer();
}

/** Recompute the area no accepted mask covers (when shown): the hatch and "uncovered: NN %". */
async function updateUncovered() {
  const image = state.image;
  if (!state.showUncovered || !image) return;
  const seq = ++state.uncoveredSeq;
  const openSeq = state.openSeq;
  const rles = state.annotations.filter((a) => a.status === "accepted").map((a) => a.segmentation);
  let reply;
  try {
    reply = await decoder.request("uncovered", { hw: [image.height, image.width], rles });
  } catch (err) {
    showError(`the uncovered area was not computed: ${errorText(err)}`);
    return;
  }
  if (seq !== state.uncoveredSeq || openSeq !== state.openSeq) {
    reply.bitmap.close();
    return;
  }
  state.uncovered?.bitmap?.close();
  state.uncovered = { bitmap: reply.bitmap };
  const percent = reply.fraction * 100;
  $("uncovered").textContent = `uncovered: ${percent >= 10 || percent === 0 ? Math.round(percent) : percent.toFixed(1)} %`;
  $("uncovered").title = `${reply.uncoveredPixels} of ${reply.pixels} pixels are in no accepted mask`;
  drawAnnotationLayer();
}

// ----------------------------------------------------------------------------------- categories
async function refreshCategories() {
  try {
    state.categories = await api(routes.categories);
  } catch (err) {
    showError(`the categories did not load: ${errorText(err)}`);
    return;
  }
  const stored = Number(localStorage.getItem(STORE.category));
  if (state.categoryId == null || !state.categories.some((c) => c.id === state.categoryId)) {
    state.categoryId = state.categories.some((c) => c.id === stored) ? stored : state.categories[0]?.id ?? null;
  }
  renderCategories();
}

function selectCategory(id) {
  state.categoryId = id;
  localStorage.setItem(STORE.category, String(id));
  markCurrentCategory();
  const current = state.history.current;
  if (current?.done) tracked(showState(current)); // the mask takes the category's colour
}

/** Only the highlight moves: rebuilding the rows would break a double-click (rename) on them. */
function markCurrentCategory() {
  for (const li of $("category-list").children) li.classList.toggle("current", Number(li.dataset.categoryId) === state.categoryId);
}

function renderCategories() {
  const list = $("category-list");
  list.replaceChildren();
  state.categories.forEach((c, i) => {
    const li = document.createElement("li");
    li.dataset.categoryId = c.id;
    li.className = c.id === state.categoryId ? "current" : "";
    const key = document.createElement("span");
    key.className = "key";
    key.textContent = i < 9 ? String(i + 1) : "";
    const color = document.createElement("input");
    color.type = "color";
    color.value = c.color;
    color.title = "colour";
    color.onclick = (e) => e.stopPropagation();
    color.onchange = () => tracked(updateCategory(c, { color: color.value }));
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
    count.textContent = c.num_annotations ?? "";
    li.append(key, color, name, count);
    li.onclick = () => selectCategory(c.id);
    list.append(li);
  });
  renderAnnotationList();
}

function renameInline(category, nameEl) {
  const input = document.createElement("input");
  input.value = category.name;
  input.maxLength = 80;
  nameEl.replaceChildren(input);
  input.focus();
  input.select();
  let done = false;
  const finish = (commit) => {
    if (done) return;
    done = true;
    const value = input.value.trim();
    if (commit && value && value !== category.name) tracked(updateCategory(category, { name: value }));
    else renderCategories();
  };
  input.onkeydown = (e) => {
    if (e.key === "Enter") finish(true);
    if (e.key === "Escape") finish(false);
    e.stopPropagation();
  };
  input.onblur = () => finish(true);
}

async function updateCategory(category, fields) {
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

async function createCategory(event) {
  event.preventDefault();
  const name = $("category-name").value.trim();
  if (!name) return;
  try {
    const created = await api(routes.categories, { method: "POST", body: { name, color: $("category-color").value } });
    $("category-name").value = "";
    await refreshCategories();
    selectCategory(created.id);
    $("category-color").value = nextColor();
  } catch (err) {
    showError(`the category was not created: ${errorText(err)}`);
  }
  ui.stage.focus();
}

function nextColor() {
  const palette = ["#1e90ff", "#ff6b6b", "#2ecc71", "#f5b041", "#af7ac5", "#48c9b0", "#ec7063", "#5dade2", "#f4d03f"];
  return palette[state.categories.length % palette.length];
}

// --------------------------------------------------------------------------------------- images
async function refreshImages() {
  try {
    state.images = await api(routes.images);
  } catch (err) {
    showError(`the image list did not load: ${errorText(err)}`);
    return;
  }
  if (state.image) {
    const i = state.images.findIndex((im) => im.id === state.image.id);
    state.imageIndex = i;
    if (i >= 0) state.image = { ...state.image, ...state.images[i] };
  }
  renderImages();
}

const STATUS_WORDS = { not_started: "not started", in_progress: "in progress", done: "done", error: "error" };

function renderImages() {
  const list = $("image-list");
  list.replaceChildren();
  state.images.forEach((im, i) => {
    const li = document.createElement("li");
    li.dataset.imageId = im.id;
    li.className = i === state.imageIndex ? "current" : "";
    li.title = im.error ? `${im.file_name}: ${im.error}` : `${im.file_name} (${im.width}×${im.height})${im.note ? `: ${im.note}` : ""}`;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = im.animated ? `${im.file_name} (frame 1)` : im.file_name;
    const badge = document.createElement("span");
    badge.className = `badge ${im.status}`;
    badge.textContent = STATUS_WORDS[im.status] ?? im.status;
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = im.num_annotations;
    li.append(name, badge, count);
    li.onclick = () => openImage(i);
    list.append(li);
  });
  $("done-button").textContent = state.image?.status === "done" ? "Mark not done" : "Mark image done";
}

function saveDraft() {
  if (!state.image) return;
  if (state.history.states.length && !state.editing) {
    state.drafts.set(state.image.id, { history: state.history, clicks: state.clicks, since: state.since });
  } else {
    state.drafts.delete(state.image.id);
  }
}

async function openImage(index) {
  const image = state.images[index];
  if (!image) return;
  if (image.error) {
    showError(`${image.file_name} cannot be annotated: ${image.error}`);
    return;
  }
  saveDraft();
  const seq = ++state.openSeq;
  state.openedAt = performance.now();
  state.firstMaskMs = null;
  state.imageIndex = index;
  state.image = image;
  state.picture?.close?.();
  state.picture = null;
  state.annotations = [];
  state.drawn.forEach((d) => d.bitmap?.close());
  state.drawn.clear();
  state.hidden.clear();
  state.highlightId = null;
  state.proposalCursor = null;
  state.uncoveredSeq++;
  state.uncovered?.bitmap?.close();
  state.uncovered = null;
  $("uncovered").textContent = "";
  if (!state.proposing) setProposeStatus("");
  state.editing = null;
  setMask(null);
  stageMessage("");
  const draft = state.drafts.get(image.id);
  state.history = draft?.history ?? new PromptHistory();
  state.clicks = draft?.clicks ?? 0;
  if (draft) state.since = draft.since;
  else startObjectClock();
  state.viewFitted = false;
  fitView();
  localStorage.setItem(STORE.image, String(image.id));
  history.replaceState(null, "", `#image=${image.id}`);
  $("image-title").textContent = `${image.file_name} · ${image.width}×${image.height}`;
  document.title = `${image.file_name} · maskloop`;
  renderImages();
  document.querySelector("#image-list li.current")?.scrollIntoView({ block: "nearest" });
  renderAnnotationList();
  updateCandidates();
  drawAll();

  const embedding = loadEmbedding(image, seq);
  const picture = loadPicture(image, seq);
  const annotations = loadAnnotations(image, seq).catch((err) => showError(`the masks of ${image.file_name} did not load: ${errorText(err)}`));
  await tracked(Promise.allSettled([embedding, picture, annotations]));
  if (seq !== state.openSeq) return;
  if (state.history.current?.done) await tracked(showState(state.history.current));
  prefetch(index);
}

async function loadPicture(image, seq) {
  const img = new Image();
  img.src = routes.imageFile(image.id);
  try {
    await img.decode();
  } catch {
    if (seq === state.openSeq) showError(`the image ${image.file_name} did not load`);
    return;
  }
  const bitmap = await createImageBitmap(img);
  if (seq !== state.openSeq) {
    bitmap.close();
    return;
  }
  if (bitmap.width !== image.width || bitmap.height !== image.height) {
    showError(`${image.file_name} is ${bitmap.width}×${bitmap.height} in the browser but ${image.width}×${image.height} on the server: masks would not line up`);
  }
  state.picture = bitmap;
  drawImageLayer();
}

async function loadEmbedding(image, seq) {
  const ready = image.embedding_ready;
  setStatus("st-embedding", ready ? "embedding: loading…" : "embedding: computing on the server…", "warn");
  const poll = ready ? null : setInterval(() => showProgress(seq), 1000);
  try {
    const reply = await decoder.request("embedding", { imageId: image.id, url: routes.embedding(image.id) });
    if (seq === state.openSeq) {
      const size = reply.bytes ? `${(reply.bytes / 2 ** 20).toFixed(1)} MiB` : "cached";
      setStatus("st-embedding", `embedding ${size} · ${Math.round(reply.ms ?? 0)} ms`, "ok");
    }
  } catch (err) {
    if (seq === state.openSeq) {
      setStatus("st-embedding", "embedding: failed", "bad");
      showError(errorText(err));
    }
  } finally {
    if (poll) clearInterval(poll);
  }
}

async function showProgress(seq) {
  try {
    const p = await api(routes.progress);
    $("progress").textContent = p.running || p.done < p.total ? `embeddings ${p.done}/${p.total}` : "";
    if (seq === state.openSeq && $("st-embedding").textContent.startsWith("embedding: computing")) {
      setStatus("st-embedding", `embedding: computing on the server… (${p.done}/${p.total} images done)`, "warn");
    }
  } catch {
    // progress is informative only; the embedding request itself reports failures
  }
}

function prefetch(index) {
  for (let k = 1; k <= PREFETCH; k++) {
    const next = state.images[index + k];
    if (next && !next.error) decoder.request("embedding", { imageId: next.id, url: routes.embedding(next.id) }).catch(() => {});
  }
}

function step(delta) {
  const i = state.imageIndex + delta;
  if (i >= 0 && i < state.images.length) openImage(i);
}

async function toggleDone() {
  if (!state.image) return;
  const status = state.image.status === "done" ? "in_progress" : "done";
  try {
    const saved = await api(routes.image(state.image.id), { method: "PATCH", body: { status } });
    state.image = { ...state.image, ...saved };
  } catch (err) {
    showError(`the image status was not changed: ${errorText(err)}`);
  }
  await refreshImages();
}

// ---------------------------------------------------------------------------------------- input
function stagePoint(event) {
  const rect = ui.stage.getBoundingClientRect();
  return [event.clientX - rect.left, event.clientY - rect.top];
}

function onPointerDown(event) {
  if (!state.image) return;
  ui.stage.focus({ preventScroll: true });
  const [sx, sy] = stagePoint(event);
  if (event.button === 1 || (event.button === 0 && state.spaceDown)) {
    event.preventDefault();
    state.pan = { sx, sy, view: state.view };
    ui.stage.setPointerCapture(event.pointerId);
    return;
  }
  if (event.button !== 0 && event.button !== 2) return;
  ui.stage.setPointerCapture(event.pointerId);
  state.press = { sx, sy, lastX: sx, lastY: sy, button: event.button, shift: event.shiftKey, moved: false };
}

function onPointerMove(event) {
  const [sx, sy] = stagePoint(event);
  if (state.pan) {
    setView(state.pan.view.panned(sx - state.pan.sx, sy - state.pan.sy));
    return;
  }
  const press = state.press;
  if (!press) return;
  press.lastX = sx;
  press.lastY = sy;
  if (press.button === 0 && Math.hypot(sx - press.sx, sy - press.sy) > DRAG_PX) press.moved = true;
  if (press.moved) drawObjectLayer();
}

function onPointerUp(event) {
  const t0 = event.timeStamp; // same clock as performance.now(): the latency includes event handling
  if (state.pan) {
    state.pan = null;
    return;
  }
  const press = state.press;
  if (!press) return;
  state.press = null;
  const [sx, sy] = stagePoint(event);
  const current = state.history.current?.prompt ?? { points: [], box: null };
  if (press.moved) {
    const [ax, ay] = state.view.screenToImage(press.sx, press.sy);
    const [bx, by] = state.view.screenToImage(sx, sy);
    const box = clampBox(normalizeBox(ax, ay, bx, by));
    if (box.x1 - box.x0 < 1 || box.y1 - box.y0 < 1) return drawObjectLayer();
    addPrompt({ points: current.points, box }, { refine: false }, t0);
    return;
  }
  const [x, y] = state.view.screenToImage(press.sx, press.sy);
  if (x < 0 || y < 0 || x >= state.image.width || y >= state.image.height) return;
  const label = press.button === 2 || press.shift ? LABEL.background : LABEL.foreground;
  addPrompt({ points: [...current.points, { x, y, label }], box: current.box }, { refine: true }, t0);
}

function clampBox(box) {
  const { width, height } = state.image;
  const c = (v, hi) => Math.min(hi, Math.max(0, v));
  return { x0: c(box.x0, width), y0: c(box.y0, height), x1: c(box.x1, width), y1: c(box.y1, height) };
}

function onWheel(event) {
  if (!state.image) return;
  event.preventDefault();
  const [sx, sy] = stagePoint(event);
  const delta = event.deltaMode === 1 ? event.deltaY * 16 : event.deltaY;
  setView(state.view.zoomedAt(sx, sy, Math.exp(-delta * 0.0015)));
}

function zoomBy(factor) {
  setView(state.view.zoomedAt(cssW / 2, cssH / 2, factor));
}

function onKeyDown(event) {
  const target = event.target;
  const typing = target instanceof HTMLInputElement || target instanceof HTMLSelectElement || target instanceof HTMLTextAreaElement;
  if (typing) {
    if (event.key === "Escape") target.blur();
    return;
  }
  const ctrl = event.ctrlKey || event.metaKey;
  const key = event.key;
  if (key === "?") return toggleHelp();
  if (!$("help").hidden && key === "Escape") return toggleHelp(false);
  if (ctrl && (key === "z" || key === "Z")) {
    event.preventDefault();
    return event.shiftKey ? redo() : undo();
  }
  if (ctrl && (key === "y" || key === "Y")) {
    event.preventDefault();
    return redo();
  }
  if (ctrl || event.altKey) return;
  const digit = /^Digit([1-9])$/.exec(event.code)?.[1];
  if (digit) {
    const n = Number(digit);
    if (!event.shiftKey && candidatesShown() && n <= 3) return pickCandidate(state.manifest.mask_candidates.multimask_indices[n - 1]);
    const category = state.categories[n - 1];
    if (category) selectCategory(category.id);
    return;
  }
  switch (key) {
    case "Enter":
      event.preventDefault();
      return tracked(accept());
    case "Escape":
      if (state.press) {
        state.press = null;
        return drawObjectLayer();
      }
      return clearObject();
    case "Tab":
      if (!candidatesShown()) return; // ordinary focus navigation
      event.preventDefault();
      return cycleCandidate(event.shiftKey ? -1 : 1);
    case " ":
      event.preventDefault();
      state.spaceDown = true;
      ui.stage.classList.add("panning");
      return;
    case "n": case "N": case "PageDown":
      event.preventDefault();
      return step(1);
    case "p": case "P": case "PageUp":
      event.preventDefault();
      return step(-1);
    case "d": case "D":
      return tracked(toggleDone());
    case "h": case "H":
      $("show-annotations").checked = !$("show-annotations").checked;
      state.showAnnotations = $("show-annotations").checked;
      return drawAnnotationLayer();
    case "g": case "G":
      return tracked(propose());
    case "j": case "J":
      return moveProposalCursor(1);
    case "k": case "K":
      return moveProposalCursor(-1);
    case "a": case "A": {
      const target = targetProposal();
      // While it is open for refining, A is Enter: the points added are not thrown away.
      if (target && state.editing?.annotation.id === target.id) return tracked(accept());
      return target && tracked(acceptProposals([target]));
    }
    case "x": case "X": {
      const target = targetProposal();
      return target && tracked(rejectProposal(target));
    }
    case "r": case "R": {
      const target = targetProposal();
      return target && tracked(refineProposal(target));
    }
    case "u": case "U":
      return toggleUncovered();
    case "f": case "F": case "0":
      fitView();
      drawAll();
      return scheduleMaskRefresh();
    case "+": case "=":
      return zoomBy(1.25);
    case "-": case "_":
      return zoomBy(0.8);
    default:
  }
}

function onKeyUp(event) {
  if (event.key === " ") {
    state.spaceDown = false;
    ui.stage.classList.remove("panning");
  }
}

function toggleHelp(show = $("help").hidden) {
  $("help").hidden = !show;
}

function buildHelp() {
  const table = $("help-table");
  for (const [keys, what] of SHORTCUTS) {
    const row = table.insertRow();
    row.insertCell().textContent = keys;
    row.insertCell().textContent = what;
  }
}

// ----------------------------------------------------------------------------------------- start
async function startDecoder() {
  const isolated = window.crossOriginIsolated;
  const threads = isolated ? navigator.hardwareConcurrency || 1 : 1;
  setStatus("st-isolation", isolated ? `isolated · ${threads} threads` : "not isolated · 1 thread", isolated ? "ok" : "bad");
  if (!isolated) showError("the page is not cross-origin isolated (COOP/COEP headers missing), so the decoder runs on one thread only");
  const params = new URLSearchParams(location.search);
  const wanted = params.get("decoder");
  const decoders = state.manifest.decoders;
  // fp32 unless asked: the int8 export quantises only the small token MLPs, so in WASM it is
  // not measurably faster (bench/RESULTS.md), and it is less exact (the manifest's verify figures).
  const precision = wanted && decoders[wanted] ? wanted : decoders.fp32 ? "fp32" : Object.keys(decoders)[0];
  state.decoderPrecision = precision;
  const url = decoders[precision].url ?? state.manifest.decoder_url;
  setStatus("st-decoder", `decoder ${precision}: loading…`, "warn");
  const info = await decoder.request("init", { ortUrl: ORT_URL, decoderUrl: url, manifest: state.manifest, numThreads: threads });
  state.decoderReady = true;
  state.decoderInfo = info;
  setStatus("st-decoder", `decoder ${precision} ready`, "ok");
  $("st-decoder").title = `loaded in ${Math.round(info.loadMs)} ms (warm-up run ${Math.round(info.warmMs)} ms)`;
  setStatus("st-version", `model ${state.manifest.model_version}`, state.manifest.model_version === "base" ? "" : "ok");
}

/**
 * A new model version became active on the server: load its decoder (the worker keeps the
 * embeddings; requests wait in its queue meanwhile) and decode the current prompts again, so the
 * object in progress shows the new model's mask and no prompt is lost.
 */
async function switchModelVersion(manifest) {
  const previous = state.manifest.model_version;
  state.manifest = manifest;
  await startDecoder();
  state.versionSwitches.push({ from: previous, to: manifest.model_version, at: performance.now() });
  const entry = state.history.current;
  if (entry?.done && state.image) {
    entry.done = false;
    await decodeEntry(entry, performance.now());
  }
}

async function start() {
  buildHelp();
  $("export-rle").href = routes.exportCoco("rle");
  $("export-polygon").href = routes.exportCoco("polygon");
  decoder.onfatal = (err) => showError(err.message);
  window.addEventListener("error", (e) => showError(`page error: ${e.message}`));
  window.addEventListener("unhandledrejection", (e) => showError(`page error: ${errorText(e.reason)}`));
  new ResizeObserver(resizeCanvases).observe(ui.stage);
  ui.stage.addEventListener("pointerdown", onPointerDown);
  ui.stage.addEventListener("pointermove", onPointerMove);
  ui.stage.addEventListener("pointerup", onPointerUp);
  ui.stage.addEventListener("pointercancel", () => { state.press = null; state.pan = null; drawObjectLayer(); });
  ui.stage.addEventListener("contextmenu", (e) => e.preventDefault());
  ui.stage.addEventListener("mousedown", (e) => e.button === 1 && e.preventDefault()); // no autoscroll
  // Buttons do not take the focus from a mouse click, so Enter/Space keep meaning accept/pan.
  document.addEventListener("mousedown", (e) => e.target.closest?.("button, a.button") && e.preventDefault());
  ui.stage.addEventListener("wheel", onWheel, { passive: false });
  window.addEventListener("keydown", onKeyDown);
  window.addEventListener("keyup", onKeyUp);
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) state.hiddenSince = performance.now();
    else if (state.hiddenSince != null) state.hiddenMs += performance.now() - state.hiddenSince;
  });
  $("help-button").onclick = () => toggleHelp();
  $("help").onclick = (e) => e.target === $("help") && toggleHelp(false);
  $("category-form").onsubmit = (e) => tracked(createCategory(e));
  $("accept-button").onclick = () => tracked(accept());
  $("done-button").onclick = () => tracked(toggleDone());
  $("show-annotations").onchange = (e) => {
    state.showAnnotations = e.target.checked;
    drawAnnotationLayer();
  };
  $("show-proposals").onchange = (e) => {
    state.showProposals = e.target.checked;
    drawAnnotationLayer();
  };
  $("show-uncovered").onchange = (e) => toggleUncovered(e.target.checked);
  $("propose-button").onclick = () => tracked(propose());
  $("accept-all-button").onclick = () => tracked(acceptProposals(proposalsInOrder()));
  const proposeParam = new URLSearchParams(location.search).get("propose_points");
  if (proposeParam) $("propose-points").value = proposeParam;
  window.addEventListener("beforeunload", (e) => {
    if (state.saving) e.preventDefault(); // a mask is on its way to the server
  });

  try {
    state.manifest = await api(routes.model);
  } catch (err) {
    setStatus("st-decoder", "decoder: unavailable", "bad");
    showError(errorText(err));
    return;
  }
  const decoderReady = tracked(startDecoder().catch((err) => {
    setStatus("st-decoder", "decoder: failed", "bad");
    showError(`the decoder did not start: ${errorText(err)}`);
  }));
  await Promise.all([refreshCategories(), refreshImages()]);
  $("category-color").value = nextColor();
  const wanted = Number(/image=(\d+)/.exec(location.hash)?.[1] ?? localStorage.getItem(STORE.image));
  let index = state.images.findIndex((im) => im.id === wanted);
  if (index < 0) index = state.images.findIndex((im) => !im.error);
  if (index < 0) stageMessage("no images in the data folder: add some and reload");
  await decoderReady;
  if (index >= 0) await openImage(index);
  showProgress(state.openSeq);
  setInterval(() => showProgress(state.openSeq), 5000);
  watchModelVersion({
    current: () => state.manifest.model_version,
    onChange: (manifest) => tracked(switchModelVersion(manifest)),
    onError: (err) => setStatus("st-version", `model ${state.manifest.model_version} (${errorText(err)})`, "warn"),
  });
}

// The hook tests and the benchmark use: they read the state and wait for idle, and
// openImage lets them open an image as the image list would.
window.maskloop = {
  state,
  get view() {
    return state.view;
  },
  get ready() {
    return state.decoderReady && !!state.picture && state.busy === 0;
  },
  idle() {
    return state.busy === 0 ? Promise.resolve() : new Promise((resolve) => idleWaiters.push(resolve));
  },
  openImage: (index) => openImage(index),
  imageToClient(x, y) {
    const rect = ui.stage.getBoundingClientRect();
    const [sx, sy] = state.view.imageToScreen(x, y);
    return [rect.left + sx, rect.top + sy];
  },
};

window.addEventListener("hashchange", () => {
  const id = Number(/image=(\d+)/.exec(location.hash)?.[1]);
  const i = state.images.findIndex((im) => im.id === id);
  if (i >= 0 && i !== state.imageIndex) openImage(i);
});

start();
