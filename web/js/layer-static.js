// The layers that change rarely: the image, and over it the accepted masks, the proposals
// (dashed, neutral), the proposal cursor's box and the hatch of the area no mask covers.
import { drawMinimap } from "./minimap.js";
import {
  clear,
  canvases,
  smoothImage,
  stage,
  stageSize,
  withImageTransform,
  withScreenTransform,
} from "./stage.js";
import { cursorProposal, isProposal } from "./selectors.js";
import { openedImage, state } from "./store.js";

export function drawImageLayer() {
  const ctx = canvases.image.getContext("2d");
  clear(ctx);
  if (!state.picture) return drawMinimap();
  withImageTransform(ctx);
  ctx.imageSmoothingEnabled = smoothImage();
  ctx.imageSmoothingQuality = "medium";
  if (state.pyramid) drawPyramid(ctx, state.pyramid, state.picture);
  else ctx.drawImage(state.picture, 0, 0);
}

/**
 * A large image: its overview stretched over the image frame, then the pyramid's tiles in view
 * (coarse under fine). The stage's data-tile-level / data-tiles-drawn say what is shown.
 * @param {CanvasRenderingContext2D} ctx set to the image frame
 * @param {import('./pyramid.js').TilePyramid} pyramid
 * @param {ImageBitmap} overview
 */
function drawPyramid(ctx, pyramid, overview) {
  const image = openedImage();
  ctx.imageSmoothingEnabled = true; // tiles are at most one device pixel per level pixel
  ctx.drawImage(overview, 0, 0, image.width, image.height);
  const { width, height, dpr } = stageSize();
  const [ax, ay] = state.view.screenToImage(0, 0);
  const [bx, by] = state.view.screenToImage(width, height);
  pyramid.draw(ctx, [ax, ay, bx, by], state.view.scale, dpr);
  if (!pyramid.firstViewAt && pyramid.drawnAtLevel > 0) {
    pyramid.firstViewAt = performance.now(); // the first view: from opening the image to tiles drawn
    stage.dataset.firstViewMs = String(Math.round(pyramid.firstViewAt - (state.openedAt ?? 0)));
  }
  stage.dataset.tileLevel = String(pyramid.level);
  stage.dataset.tilesDrawn = String(pyramid.drawnAtLevel);
  drawMinimap();
}

/** Accepted masks, then proposals over them (dashed, neutral), then the proposal cursor's box. */
export function drawMaskLayer() {
  const ctx = canvases.masks.getContext("2d");
  clear(ctx);
  if (!state.image) return;
  if (state.showUncovered && state.uncovered) drawUncovered(ctx);
  withImageTransform(ctx);
  ctx.imageSmoothingEnabled = false;
  const highlight = state.highlightId;
  const cursor = cursorProposal();
  const draw = (
    /** @type {import('./store.js').AnnotationRecord} */ a,
    /** @type {boolean} */ shown,
  ) => {
    const drawn = state.drawn.get(a.id);
    if (!drawn?.bitmap || state.editing?.annotation.id === a.id) return;
    if (state.polygon?.annotation.id === a.id) return; // drawn as polygons on the object layer
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
    withScreenTransform(ctx);
    ctx.lineWidth = 1.5;
    ctx.setLineDash([6, 4]);
    ctx.strokeStyle = "#4da3ff";
    ctx.strokeRect(ax - 3, ay - 3, bx - ax + 6, by - ay + 6);
    ctx.setLineDash([]);
  }
}

/** @type {{tile: HTMLCanvasElement, scratch: HTMLCanvasElement} | null} the uncovered area's pattern and a canvas to compose it on */
let hatch = null;

/**
 * Hatch the image area that no accepted mask covers. The area is an image-frame bitmap; the
 * hatch is laid in screen pixels (source-in over the bitmap), so it stays fine at any zoom.
 */
function drawUncovered(/** @type {CanvasRenderingContext2D} */ ctx) {
  if (!hatch) {
    const tile = document.createElement("canvas");
    tile.width = tile.height = 8;
    const t = /** @type {CanvasRenderingContext2D} */ (tile.getContext("2d"));
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
  const s = /** @type {CanvasRenderingContext2D} */ (scratch.getContext("2d"));
  clear(s);
  s.globalCompositeOperation = "source-over";
  withImageTransform(s);
  s.imageSmoothingEnabled = false;
  const image = openedImage();
  s.drawImage(
    /** @type {{bitmap: ImageBitmap}} */ (state.uncovered).bitmap,
    0,
    0,
    image.width,
    image.height,
  );
  s.setTransform(1, 0, 0, 1, 0, 0);
  s.globalCompositeOperation = "source-in";
  s.fillStyle = /** @type {CanvasPattern} */ (s.createPattern(hatch.tile, "repeat"));
  s.fillRect(0, 0, scratch.width, scratch.height);
  s.globalCompositeOperation = "source-over";
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.drawImage(scratch, 0, 0);
}
