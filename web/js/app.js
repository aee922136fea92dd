// The annotation page: wires the modules together. The decoder and all per-pixel work run in
// the worker (decoder-worker.js); this thread turns clicks into prompts and draws what comes back.
//   store.js       the state and the redraw schedule       actions.js   every command, its keys and help
//   stage.js       canvases and the view transform          input.js     pointer and key handlers
//   layer-*.js     the static and interactive layers        session.js   prompt -> decode -> candidates
//   accept.js      saving the current object                proposals.js stage 2: proposals
//   annotations.js the image's stored masks                 categories.js categories
//   sync.js        opening images, server state             panel-*.js, status.js: DOM only
//   team.js        accounts on: next / finish image, logout  review.js    reviewing finished images
//   hook.js        window.maskloop, what tests and benchmarks read
//   status-line.js the top bar's line for people           stage-bar.js undo/zoom/prev/next buttons
//   mask-undo.js   undo / redo of accepted, deleted masks   first-category.js the first accept's name
import { accept } from "./accept.js";
import { api, routes } from "./api.js";
import { deleteMask, recategorise, redoAny, undoAny } from "./mask-undo.js";
import { reopen, setHighlight, toggleHidden, toggleUncovered } from "./annotations.js";
import {
  createCategory,
  nextColor,
  refreshCategories,
  selectCategory,
  selectCategoryKey,
  updateCategory,
} from "./categories.js";
import { decoder } from "./decoder.js";
import { startDecoder, startDecoderFor } from "./decoder-start.js";
import {
  cancelPress,
  keyHandler,
  onKeyUp,
  onPointerCancel,
  onPointerDown,
  onPointerLeave,
  onPointerMove,
  onPointerUp,
  onWheel,
  startPanKey,
} from "./input.js";
import { forgetGuesses, STORED_PREVIEW } from "./guess.js";
import { buildHelp, toggleAnnotations, toggleHelp, toggleHoverPreview } from "./toggles.js";
import { reportDecoder } from "./status-line.js";
import { connectFirstCategory } from "./first-category.js";
import { connectStageBar, renderStageBar } from "./stage-bar.js";
import { drawObjectLayer } from "./layer-interactive.js";
import { connectBrushButtons, leaveBrush, resizeBrush, setTool } from "./brush.js";
import { cleanCurrent, connectCleanupPanel } from "./cleanup.js";
import { closePolygon, connectPolygonBar, openPolygon, savePolygon } from "./polygon-edit.js";
import { drawImageLayer, drawMaskLayer } from "./layer-static.js";
import { installTestHook } from "./hook.js";
import { refreshImages } from "./image-list.js";
import { watchModelVersion } from "./model-version.js";
import { keepLease } from "./work.js";
import {
  connectAnnotationPanel,
  markProposalCursor,
  renderAnnotationList,
} from "./panel-annotations.js";
import { candidatesShown, connectCandidatePanel, renderCandidates } from "./panel-candidates.js";
import { deleteCategory, moveCategory } from "./category-manage.js";
import { connectCategoryPanel, markCurrentCategory, renderCategories } from "./panel-categories.js";
import { connectImagePanel, renderImages } from "./panel-images.js";
import { startModelPanel } from "./panel-model.js";
import { connectTeamPanel, renderTeam } from "./panel-team.js";
import {
  acceptProposals,
  moveProposalCursor,
  propose,
  refineProposal,
  rejectProposal,
  setProposalCursor,
  targetProposal,
} from "./proposals.js";
import { rateMask, ratingTarget } from "./ratings.js";
import { decideImage, decideMask, openForReview } from "./review.js";
import { proposalsInOrder } from "./selectors.js";
import {
  clearObject,
  cycleCandidate,
  decodeEntry,
  pickCandidate,
  pickCandidateKey,
  refreshMask,
} from "./session.js";
import { viewOps } from "./minimap.js";
import { onViewSettled, resizeCanvases, stage } from "./stage.js";
import { $, errorText, setStatus, showError, stageMessage } from "./status.js";
import { invalidate, mark, setPainter, state, tracked } from "./store.js";
import { openImage, openImageById, showProgress, STORED_IMAGE, toggleDone } from "./sync.js";
import { prefetchWhenRested } from "./tile-prefetch.js";
import { browseTo, finishImage, loadAccount, logout, nextImage } from "./team.js";

// ---------------------------------------------------------------------------------- operations
/** What the actions table's `perform`s call. */
const ops = {
  accept: () => tracked(state.polygon ? savePolygon() : accept()),
  escape: () => closePolygon() || leaveBrush() || cancelPress() || clearObject(),
  setTool,
  resizeBrush,
  clean: (/** @type {import('./components.js').CleanupOp} */ op) => tracked(cleanCurrent(op)),
  undo: undoAny,
  redo: redoAny,
  cycleCandidate,
  pickCandidateKey,
  selectCategoryKey,
  rateHovered: (/** @type {number} */ n) => {
    const target = ratingTarget();
    return target && tracked(rateMask(target, n));
  },
  startPanKey,
  ...viewOps,
  step: (/** @type {number} */ n) => browseTo(state.imageIndex + n),
  toggleDone: () => tracked(toggleDone()),
  nextWork: () => tracked(nextImage()),
  finish: () => tracked(finishImage()),
  toggleAnnotations,
  toggleHoverPreview: () => toggleHoverPreview(),
  propose: () => tracked(propose()),
  moveProposalCursor,
  acceptTarget() {
    const target = targetProposal();
    // While it is open for refining, A is Enter: the points added are not thrown away.
    if (target && state.editing?.annotation.id === target.id) return tracked(accept());
    return target && tracked(acceptProposals([target]));
  },
  rejectTarget() {
    const target = targetProposal();
    return target && tracked(rejectProposal(target));
  },
  refineTarget() {
    const target = targetProposal();
    return target && tracked(refineProposal(target));
  },
  toggleUncovered: () => toggleUncovered(),
  toggleHelp,
};

/**
 * A new model version became active on the server: load its decoder (the worker keeps the
 * embeddings; requests wait in its queue meanwhile) and decode the current prompts again, so the
 * object in progress shows the new model's mask and no prompt is lost.
 */
async function switchModelVersion(/** @type {import('./store.js').PageManifest} */ manifest) {
  const previous = state.manifest.model_version;
  state.manifest = manifest;
  forgetGuesses(); // decoded by the version before
  await startDecoder();
  state.versionSwitches.push({ from: previous, to: manifest.model_version, at: performance.now() });
  const entry = state.history.current;
  if (entry?.done && state.image) {
    entry.done = false;
    await decodeEntry(entry, performance.now());
  } else if (state.image) {
    // The new decoder's prefix for the open image, and its warm-up run, before the next click.
    await decoder
      .request("prepare", { imageId: state.image.id, url: routes.embedding(state.image.id) })
      .catch(() => {});
  }
}

// ----------------------------------------------------------------------------------------- start
function connectPanels() {
  connectAnnotationPanel({
    changeCategory: (a, categoryId) => tracked(recategorise(a, categoryId)),
    toggleHidden,
    reopen: (a) => tracked(reopen(a)),
    polygon: (a) => tracked(openPolygon(a)),
    remove: (a) => tracked(deleteMask(a)),
    acceptProposal: (a) => tracked(acceptProposals([a])),
    rejectProposal: (a) => tracked(rejectProposal(a)),
    refineProposal: (a) => tracked(refineProposal(a)),
    pointProposal: setProposalCursor,
    highlight: setHighlight,
    decideMask: (a, decision, reason) => tracked(decideMask(a, decision, reason)),
    rate: (a, n) => tracked(rateMask(a, n)),
  });
  connectTeamPanel({
    next: () => tracked(nextImage()),
    finish: () => tracked(finishImage()),
    logout: () => tracked(logout()),
    openReview: (id) => tracked(openForReview(id)),
    decideImage: (decision, reason) => tracked(decideImage(decision, reason)),
  });
  connectCategoryPanel({
    select: selectCategory,
    update: (c, fields) => tracked(updateCategory(c, fields)),
    move: (c, delta) => tracked(moveCategory(c, delta)),
    remove: (c, moveTo) => tracked(deleteCategory(c, moveTo)),
  });
  connectImagePanel({ open: browseTo });
  connectCandidatePanel({ pick: pickCandidate });
  connectCleanupPanel();
  connectBrushButtons();
  connectPolygonBar(ops.accept);
  connectFirstCategory();
  connectStageBar(ops);
}

function listen() {
  decoder.onfatal = (err) => showError(err.message);
  window.addEventListener("error", (e) => showError(`page error: ${e.message}`));
  window.addEventListener("unhandledrejection", (e) =>
    showError(`page error: ${errorText(e.reason)}`),
  );
  new ResizeObserver(resizeCanvases).observe(stage);
  stage.addEventListener("pointerdown", onPointerDown);
  stage.addEventListener("pointermove", onPointerMove);
  stage.addEventListener("pointerup", onPointerUp);
  stage.addEventListener("pointercancel", onPointerCancel);
  stage.addEventListener("pointerleave", onPointerLeave);
  stage.addEventListener("contextmenu", (/** @type {Event} */ e) => e.preventDefault());
  stage.addEventListener(
    "mousedown",
    (/** @type {MouseEvent} */ e) => e.button === 1 && e.preventDefault(),
  ); // no autoscroll
  // Buttons do not take the focus from a mouse click, so Enter/Space keep meaning accept/pan.
  document.addEventListener(
    "mousedown",
    (e) => /** @type {Element} */ (e.target).closest?.("button, a.button") && e.preventDefault(),
  );
  stage.addEventListener("wheel", onWheel, { passive: false });
  window.addEventListener(
    "keydown",
    keyHandler(ops, () => ({
      candidatesShown: candidatesShown(),
      helpShown: !$("help").hidden,
      team: !!state.team,
      ratingTarget: !!ratingTarget(),
    })),
  );
  window.addEventListener("keyup", onKeyUp);
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) state.hiddenSince = performance.now();
    else if (state.hiddenSince != null) state.hiddenMs += performance.now() - state.hiddenSince;
  });
  $("help-button").onclick = () => toggleHelp();
  $("help").onclick = (/** @type {Event} */ e) => e.target === $("help") && toggleHelp(false);
  $("category-form").onsubmit = (/** @type {Event} */ e) => tracked(createCategory(e));
  $("accept-button").onclick = () => ops.accept();
  $("done-button").onclick = () => tracked(toggleDone());
  $("show-annotations").onchange = (/** @type {Event} */ e) => {
    state.showAnnotations = /** @type {HTMLInputElement} */ (e.target).checked;
    invalidate("masks");
  };
  $("show-proposals").onchange = (/** @type {Event} */ e) => {
    state.showProposals = /** @type {HTMLInputElement} */ (e.target).checked;
    invalidate("masks");
  };
  $("show-uncovered").onchange = (/** @type {Event} */ e) =>
    toggleUncovered(/** @type {HTMLInputElement} */ (e.target).checked);
  $("hover-preview").onchange = (/** @type {Event} */ e) =>
    toggleHoverPreview(/** @type {HTMLInputElement} */ (e.target).checked);
  $("propose-button").onclick = () => tracked(propose());
  $("accept-all-button").onclick = () => tracked(acceptProposals(proposalsInOrder()));
  window.addEventListener("beforeunload", (e) => {
    if (state.saving) e.preventDefault(); // a mask is on its way to the server
  });
  window.addEventListener("hashchange", () =>
    openImageById(Number(/image=(\d+)/.exec(location.hash)?.[1])),
  );
}

async function start() {
  mark("app started");
  setPainter("image", drawImageLayer);
  setPainter("masks", drawMaskLayer);
  setPainter("object", () => {
    drawObjectLayer();
    renderStageBar(); // the prompts or the view changed: undo / redo and the zoom level follow
  });
  setPainter("images", () => {
    renderImages();
    renderStageBar();
  });
  setPainter("team", renderTeam);
  setPainter("categories", renderCategories);
  setPainter("currentCategory", markCurrentCategory);
  setPainter("annotations", renderAnnotationList);
  setPainter("proposalCursor", () => markProposalCursor(state.proposalCursor));
  setPainter("candidates", renderCandidates);
  setPainter("stageBar", renderStageBar);
  onViewSettled(refreshMask);
  onViewSettled(prefetchWhenRested);
  connectPanels();
  buildHelp();
  for (const f of ["rle", "polygon"]) $(`export-${f}`).href = routes.exportCoco(f);
  for (const f of /** @type {const} */ (["yolo-seg", "voc"]))
    $(`export-${f}`).href = routes.exportDataset(f);
  listen();
  toggleHoverPreview(localStorage.getItem(STORED_PREVIEW) === "1");
  state.pressGuess = new URLSearchParams(location.search).get("guess") !== "0";
  const proposeParam = new URLSearchParams(location.search).get("propose_points");
  if (proposeParam) $("propose-points").value = proposeParam;

  // The image list, the account and the categories load beside the manifest.
  const listed = refreshImages();
  const lists = Promise.all([loadAccount(), refreshCategories(), listed]);
  try {
    state.manifest = await api(routes.model);
    mark("manifest");
  } catch (err) {
    setStatus("st-decoder", "decoder: unavailable", "bad");
    reportDecoder("failed");
    showError(errorText(err));
    return;
  }
  await listed; // (it reports its own failure)
  const wanted = Number(
    /image=(\d+)/.exec(location.hash)?.[1] ?? localStorage.getItem(STORED_IMAGE),
  );
  const decoderReady = tracked(
    startDecoderFor(state.images.find((im) => im.id === wanted)).catch((err) => {
      setStatus("st-decoder", "decoder: failed", "bad");
      reportDecoder("failed");
      showError(`the decoder did not start: ${errorText(err)}`);
    }),
  );
  const [team] = await lists;
  if (team) {
    buildHelp(); // team mode's shortcuts
    invalidate("team");
  }
  $("category-color").value = nextColor();
  let index = state.images.findIndex((im) => im.id === wanted);
  if (index < 0) index = state.images.findIndex((im) => !im.error);
  if (index < 0) stageMessage("no images in the data folder: add some and reload");
  // The picture and the embedding load while the decoder does (the worker queues clicks behind it).
  // An annotator of a team starts on the image the server hands out.
  if (team?.role === "annotator") await Promise.all([nextImage(), decoderReady]);
  else if (index >= 0) await Promise.all([openImage(index), decoderReady]);
  else await decoderReady;
  showProgress();
  setInterval(() => showProgress(), 5000);
  watchModelVersion({
    current: () => state.manifest.model_version,
    onChange: (manifest) => tracked(switchModelVersion(manifest)),
    onError: (err) =>
      setStatus("st-version", `model ${state.manifest.model_version} (${errorText(err)})`, "warn"),
  });
  startModelPanel();
  keepLease({
    currentImageId: () => state.team?.held ?? null,
    onLost: (message) => showError(message),
  });
}

installTestHook();
start();
