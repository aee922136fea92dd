// Pointer and keyboard input on the stage: a click adds a point, a drag a box, the wheel zooms,
// Space or the middle button pans; keys go through the actions table (actions.js).
import { actionForKey } from "./actions.js";
import { endStroke, extendStroke, startStroke } from "./brush.js";
import { polygonMove, polygonPress, polygonRelease } from "./polygon-edit.js";
import { normalizeBox, LABEL } from "./prompts.js";
import { clearPreview, dropGuess, pointerGone, pointerMoved, pressGuess } from "./guess.js";
import { addPrompt, maskFromNow } from "./session.js";
import { localDecoderReady } from "./server-decode.js";
import { setView, stage, stagePoint } from "./stage.js";
import { invalidate, openedImage, state } from "./store.js";

const DRAG_PX = 5; // a press that moves farther is a box drag, not a click

export function onPointerDown(/** @type {PointerEvent} */ event) {
  if (!state.image) return;
  stage.focus({ preventScroll: true });
  const [sx, sy] = stagePoint(event);
  if (event.button === 1 || (event.button === 0 && state.spaceDown)) {
    event.preventDefault();
    state.pan = { sx, sy, view: state.view };
    stage.setPointerCapture(event.pointerId);
    return;
  }
  if (event.button !== 0 && event.button !== 2) return;
  if (state.polygon) {
    if (polygonPress(event.button, sx, sy)) stage.setPointerCapture(event.pointerId);
    return;
  }
  if (state.tool !== "prompt") {
    // The brush or the eraser: a left drag paints (a right press does nothing here).
    if (event.button === 0 && startStroke(sx, sy)) stage.setPointerCapture(event.pointerId);
    return;
  }
  stage.setPointerCapture(event.pointerId);
  state.press = {
    sx,
    sy,
    lastX: sx,
    lastY: sy,
    button: event.button,
    shift: event.shiftKey,
    moved: false,
  };
  // Released here, the press adds this point: decode it while the button is down.
  const click = clickPrompt(state.press);
  // Not while the server decodes for a decoder not ready for this image (server-decode.js).
  if (click && localDecoderReady() && state.pressGuess) pressGuess(click, maskFromNow(true));
  else clearPreview();
}

/**
 * The prompt a press adds if it is released without moving (null: it is off the image).
 * @param {{sx: number, sy: number, button: number, shift: boolean}} press
 * @returns {import('./worker-protocol.js').Prompt | null}
 */
function clickPrompt(press) {
  const [x, y] = state.view.screenToImage(press.sx, press.sy);
  const image = openedImage();
  if (x < 0 || y < 0 || x >= image.width || y >= image.height) return null;
  const current = state.history.current?.prompt ?? { points: [], box: null };
  const label = press.button === 2 || press.shift ? LABEL.background : LABEL.foreground;
  return { points: [...current.points, { x, y, label }], box: current.box };
}

export function onPointerMove(/** @type {PointerEvent} */ event) {
  const [sx, sy] = stagePoint(event);
  state.pointer = [sx, sy];
  if (state.pan) {
    setView(state.pan.view.panned(sx - state.pan.sx, sy - state.pan.sy));
    return;
  }
  if (state.polygon) {
    polygonMove(sx, sy);
    return;
  }
  if (state.tool !== "prompt") {
    if (state.stroke) extendStroke(sx, sy);
    else invalidate("object"); // the brush's ring follows the pointer
    return;
  }
  const press = state.press;
  if (!press) {
    if (state.image) pointerMoved(sx, sy);
    return;
  }
  press.lastX = sx;
  press.lastY = sy;
  if (!press.moved && press.button === 0 && Math.hypot(sx - press.sx, sy - press.sy) > DRAG_PX) {
    press.moved = true;
    dropGuess(); // a drag: the click decoded at the press will not come
  }
  if (press.moved) invalidate("object");
}

export function onPointerUp(/** @type {PointerEvent} */ event) {
  const t0 = event.timeStamp; // same clock as performance.now(): the latency includes event handling
  if (state.pan) {
    state.pan = null;
    return;
  }
  if (polygonRelease() || state.polygon) return;
  if (state.stroke) {
    const [sx, sy] = stagePoint(event);
    extendStroke(sx, sy);
    endStroke();
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
    if (box.x1 - box.x0 < 1 || box.y1 - box.y0 < 1) {
      dropGuess();
      return invalidate("object");
    }
    addPrompt({ points: current.points, box }, { refine: false }, t0);
    return;
  }
  const click = clickPrompt(press);
  if (click) addPrompt(click, { refine: true }, t0);
  else dropGuess();
}

export function onPointerCancel() {
  state.press = null;
  state.pan = null;
  state.stroke = null;
  dropGuess();
  invalidate("object");
}

/** The pointer left the stage: no hover preview there. */
export function onPointerLeave() {
  state.pointer = null;
  if (state.tool !== "prompt") invalidate("object");
  pointerGone();
  clearPreview();
}

/** A box in image pixels, cut to the image. */
function clampBox(/** @type {import('./worker-protocol.js').Box} */ box) {
  const { width, height } = openedImage();
  const c = (/** @type {number} */ v, /** @type {number} */ hi) => Math.min(hi, Math.max(0, v));
  return {
    x0: c(box.x0, width),
    y0: c(box.y0, height),
    x1: c(box.x1, width),
    y1: c(box.y1, height),
  };
}

export function onWheel(/** @type {WheelEvent} */ event) {
  if (!state.image) return;
  event.preventDefault();
  const [sx, sy] = stagePoint(event);
  const delta = event.deltaMode === 1 ? event.deltaY * 16 : event.deltaY;
  setView(state.view.zoomedAt(sx, sy, Math.exp(-delta * 0.0015)));
}

/**
 * The keydown handler: keys typed into a field stay there (Esc leaves it); any other key runs
 * its action. `ops`: the page's operations; `context()`: {candidatesShown, helpShown} now.
 * @param {import('./actions.js').Ops} ops
 * @param {() => import('./actions.js').KeyContext} context
 */
export function keyHandler(ops, context) {
  return (/** @type {KeyboardEvent} */ event) => {
    const target = event.target;
    const typing =
      target instanceof HTMLInputElement ||
      target instanceof HTMLSelectElement ||
      target instanceof HTMLTextAreaElement;
    if (typing) {
      if (event.key === "Escape") target.blur();
      return;
    }
    const ctx = context();
    const action = actionForKey(event, ctx);
    if (!action) return;
    if (action.preventDefault) event.preventDefault();
    action.perform?.(event, ops, ctx);
  };
}

/** Esc on the stage: drop a drag in progress, else the current object. */
export function cancelPress() {
  if (!state.press) return false;
  state.press = null;
  dropGuess();
  invalidate("object");
  return true;
}

export function onKeyUp(/** @type {KeyboardEvent} */ event) {
  if (event.key === " ") {
    state.spaceDown = false;
    stage.classList.remove("panning");
  }
}

/** Space held: a left drag pans. */
export function startPanKey() {
  state.spaceDown = true;
  stage.classList.add("panning");
}
