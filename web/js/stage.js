// The stage: its canvases' size, the view transform (image frame -> CSS pixels of the stage)
// and where a pointer event falls on it.
import { $ } from "./status.js";
import { invalidate, openedImage, state } from "./store.js";
import { View } from "./view.js";

export const stage = $("stage");
export const canvases = {
  image: $("layer-image"),
  masks: $("layer-annotations"),
  object: $("layer-object"),
};

let dpr = window.devicePixelRatio || 1;
let cssW = 1;
let cssH = 1;
/** @type {(() => void)[]} */
const onSettled = [];
/** @type {ReturnType<typeof setTimeout> | undefined} */
let settleTimer;

/** `fn` runs each time zoom/pan settle (the current mask is drawn again at the new resolution, a
 * large image's tile prefetched). */
export function onViewSettled(/** @type {() => void} */ fn) {
  onSettled.push(fn);
}

/** Size the canvases to the stage (device pixels) and redraw everything. */
export function resizeCanvases() {
  const rect = stage.getBoundingClientRect();
  dpr = window.devicePixelRatio || 1;
  cssW = Math.max(1, rect.width);
  cssH = Math.max(1, rect.height);
  for (const canvas of Object.values(canvases)) {
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
  }
  if (state.image && !state.viewFitted) fitView();
  invalidate();
  scheduleViewSettled();
}

/** Set ctx to draw in image pixels. */
export function withImageTransform(/** @type {CanvasRenderingContext2D} */ ctx) {
  const { scale, tx, ty } = state.view;
  ctx.setTransform(dpr * scale, 0, 0, dpr * scale, dpr * tx, dpr * ty);
}

/** Set ctx to draw in the stage's CSS pixels. */
export function withScreenTransform(/** @type {CanvasRenderingContext2D} */ ctx) {
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
}

export function clear(/** @type {CanvasRenderingContext2D} */ ctx) {
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
}

/** Zoomed in, image pixels show as squares: what you click is the pixel you see. */
export function smoothImage() {
  return state.view.scale * dpr < 1;
}

/** Fit the current image into the stage. */
export function fitView() {
  if (!state.image) return;
  state.view = View.fit(state.image.width, state.image.height, cssW, cssH);
  state.viewFitted = true;
}

export function setView(/** @type {View} */ view) {
  state.view = view;
  invalidate();
  scheduleViewSettled();
}

export function fitAndRedraw() {
  fitView();
  invalidate();
  scheduleViewSettled();
}

/** Zoom about the stage's centre. */
export function zoomBy(/** @type {number} */ factor) {
  setView(state.view.zoomedAt(cssW / 2, cssH / 2, factor));
}

/** 1:1: one image pixel per device pixel, about the stage's centre. */
export function zoomToActual() {
  zoomBy(1 / dpr / state.view.scale);
}

/** The stage's size in CSS pixels and its device pixel ratio. */
export function stageSize() {
  return { width: cssW, height: cssH, dpr };
}

/** The part of the image on screen, at the resolution it is shown (the decoder renders only that). */
export function currentRegion() {
  const image = openedImage();
  return state.view.visibleRegion(image.width, image.height, cssW, cssH, dpr);
}

function scheduleViewSettled() {
  clearTimeout(settleTimer);
  settleTimer = setTimeout(() => onSettled.forEach((fn) => fn()), 80);
}

/** A pointer event's position in the stage's CSS pixels. */
export function stagePoint(/** @type {MouseEvent} */ event) {
  const rect = stage.getBoundingClientRect();
  return [event.clientX - rect.left, event.clientY - rect.top];
}

/** Image pixel (x, y) -> the page's client coordinates (for tests and the benchmark). */
export function imageToClient(/** @type {number} */ x, /** @type {number} */ y) {
  const rect = stage.getBoundingClientRect();
  const [sx, sy] = state.view.imageToScreen(x, y);
  return [rect.left + sx, rect.top + sy];
}
