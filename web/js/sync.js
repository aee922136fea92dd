// Opening an image and keeping the page in step with the server: the image list, the picture,
// the embedding (loaded into the worker), the image's masks, and the next images' embeddings
// ahead. Each opened image has an AbortController (state.opened); opening another aborts it, so
// answers for an image that is no longer open are dropped (and its masks' request cancelled).
import { api, routes } from "./api.js";
import { forgetUncovered, loadAnnotations } from "./annotations.js";
import { decoder } from "./decoder.js";
import { forgetGuesses } from "./guess.js";
import { PromptHistory } from "./history.js";
import { openPyramid } from "./pyramid.js";
import { refreshImages } from "./image-list.js";
import { setMask, showState, startObjectClock } from "./session.js";
import { revealCurrentImage } from "./panel-images.js";
import { fitView } from "./stage.js";
import { $, errorText, setProposeStatus, setStatus, showError, stageMessage } from "./status.js";
import { reportImage, resetImageStatus } from "./status-line.js";
import { invalidate, mark, state, tracked } from "./store.js";

const PREFETCH = 2; // embeddings of the next images loaded ahead
const PREFETCH_DELAY_MS = 600; // ... this long after the open image is ready
export const STORED_IMAGE = "maskloop.imageId"; // localStorage: the image open last

/** Keep the current image's unaccepted object, to come back to it. */
function saveDraft() {
  if (!state.image) return;
  if (state.history.states.length && !state.editing) {
    state.drafts.set(state.image.id, {
      history: state.history,
      clicks: state.clicks,
      since: state.since,
    });
  } else {
    state.drafts.delete(state.image.id);
  }
}

/** Forget what is shown of the image open until now. */
function closeImage() {
  forgetGuesses();
  state.opened.abort();
  state.opened = new AbortController();
  state.picture?.close?.();
  state.picture = null;
  state.pyramid?.close();
  state.pyramid = null;
  state.annotations = [];
  state.drawn.forEach((d) => d.bitmap?.close());
  state.drawn.clear();
  state.hidden.clear();
  state.highlightId = null;
  state.proposalCursor = null;
  forgetUncovered();
  if (!state.proposing) setProposeStatus("");
  state.editing = null;
  setMask(null);
  stageMessage("");
  // The previous image's figures do not describe this one.
  setStatus("st-latency", "prompt → mask –");
  setStatus("st-saving", "");
  resetImageStatus();
}

/** Open image `index` of the list: its picture, embedding and masks load side by side. */
export async function openImage(/** @type {number} */ index) {
  const image = state.images[index];
  if (!image) return;
  if (image.error) {
    showError(`${image.file_name} cannot be annotated: ${image.error}`);
    return;
  }
  saveDraft();
  closeImage();
  const signal = state.opened.signal;
  state.openedAt = performance.now();
  state.firstMaskMs = null;
  state.imageIndex = index;
  state.image = image;
  const draft = state.drafts.get(image.id);
  state.history = draft?.history ?? new PromptHistory();
  state.clicks = draft?.clicks ?? 0;
  if (draft) state.since = draft.since;
  else startObjectClock();
  state.viewFitted = false;
  fitView();
  localStorage.setItem(STORED_IMAGE, String(image.id));
  history.replaceState(null, "", `#image=${image.id}`);
  $("image-title").textContent = `${image.file_name} · ${image.width}×${image.height}`;
  document.title = `${image.file_name} · maskloop`;
  invalidate("images", "team");
  revealCurrentImage(); // once the list is painted
  invalidate("annotations");
  invalidate("candidates");
  invalidate();

  const picture = loadPicture(image, signal);
  // A large image's embedding is asked for once its first view shows: the server would compute
  // it beside cutting that view, on the same cores (bench/RESULTS.md, issue 24, 2026-12-05).
  const embedding = image.pyramid
    ? picture.then(() => (signal.aborted ? undefined : loadEmbedding(image, signal)))
    : loadEmbedding(image, signal);
  const annotations = loadAnnotations(image, signal).catch((err) =>
    showError(`the masks of ${image.file_name} did not load: ${errorText(err)}`),
  );
  await tracked(Promise.allSettled([embedding, picture, annotations]));
  if (signal.aborted) return;
  if (state.history.current?.done) await tracked(showState(state.history.current));
  // The next images' embeddings load a little later, so that a click made as soon as the image
  // is ready does not share the worker and the CPU with their download and decoding.
  setTimeout(() => signal.aborted || prefetch(index), PREFETCH_DELAY_MS);
}

/** Open the image with this id, if it is in the list and not open already (the URL's #image=). */
export function openImageById(/** @type {number} */ id) {
  const i = state.images.findIndex((im) => im.id === id);
  if (i >= 0 && i !== state.imageIndex) openImage(i);
}

async function loadPicture(
  /** @type {import('./store.js').ImageRecord} */ image,
  /** @type {AbortSignal} */ signal,
) {
  if (image.pyramid) return loadPyramid(image, signal);
  const img = new Image();
  img.src = routes.imageFile(image.id);
  try {
    await img.decode();
  } catch {
    if (!signal.aborted) showError(`the image ${image.file_name} did not load`);
    return;
  }
  const bitmap = await createImageBitmap(img);
  if (signal.aborted) {
    bitmap.close();
    return;
  }
  if (bitmap.width !== image.width || bitmap.height !== image.height) {
    showError(
      `${image.file_name} is ${bitmap.width}×${bitmap.height} in the browser but ${image.width}×${image.height} on the server: masks would not line up`,
    );
  }
  state.picture = bitmap;
  mark("picture shown");
  invalidate("image");
}

/** A large image: its tile pyramid; the overview shows at once, the tiles in view as they come. */
async function loadPyramid(
  /** @type {import('./store.js').ImageRecord} */ image,
  /** @type {AbortSignal} */ signal,
) {
  try {
    const { pyramid, overview } = await openPyramid(image.id, () => invalidate("image"));
    if (signal.aborted || !overview) {
      pyramid.close();
      overview?.close();
      if (!signal.aborted) showError(`the image ${image.file_name} did not load`);
      return;
    }
    state.pyramid = pyramid;
    state.picture = overview;
  } catch (err) {
    if (!signal.aborted) showError(`the image ${image.file_name} did not load: ${errorText(err)}`);
    return;
  }
  mark("picture shown");
  invalidate("image");
}

async function loadEmbedding(
  /** @type {import('./store.js').ImageRecord} */ image,
  /** @type {AbortSignal} */ signal,
) {
  const ready = image.embedding_ready;
  setStatus(
    "st-embedding",
    ready ? "embedding: loading…" : "embedding: computing on the server…",
    "warn",
  );
  reportImage(ready ? "loading" : "computing");
  const poll = ready ? null : setInterval(() => showProgress(signal), 1000);
  try {
    const reply = await decoder.request("embedding", {
      imageId: image.id,
      url: routes.embedding(image.id),
    });
    if (!signal.aborted) {
      mark("embedding loaded");
      const size = reply.bytes ? `${(reply.bytes / 2 ** 20).toFixed(1)} MiB` : "cached";
      setStatus("st-embedding", `embedding ${size} · ${Math.round(reply.ms ?? 0)} ms`, "ok");
      reportImage("ready");
      // The decoder's per-image part runs now (queued behind the decoder's loading), not at the
      // first click; the opening counts as work in progress until it is done (and the next
      // images' prefetch waits for it), so that the first click finds the decoder idle.
      const source = { imageId: image.id, url: routes.embedding(image.id) };
      const prepared = await decoder.request("prepare", source).catch(() => null);
      // A fresh decoder then runs until V8 has optimised its wasm (decoder-worker.js: tierUp),
      // letting other requests through between runs; the image counts as prepared after that,
      // so its clicks until then go to the server's native decoder (server-decode.js).
      const tierUpMs = [];
      let left = prepared?.tierUpLeft ?? 0;
      while (left > 0 && !signal.aborted) {
        const reply = await decoder.request("tierUp", source).catch(() => null);
        if (!reply) break;
        tierUpMs.push(...reply.ms);
        left = reply.left;
      }
      if (prepared && !signal.aborted) mark("image prepared");
      if (prepared && !signal.aborted)
        state.prepared = {
          imageId: image.id,
          ms: prepared.ms,
          warmMs: prepared.warmMs,
          tierUpMs,
          aheadMs: prepared.aheadMs,
        };
    }
  } catch (err) {
    if (!signal.aborted) {
      setStatus("st-embedding", "embedding: failed", "bad");
      reportImage("failed");
      showError(errorText(err));
    }
  } finally {
    if (poll) clearInterval(poll);
  }
}

/** The server's embedding progress, in the image panel's title (and the embedding status while waiting). */
export async function showProgress(signal = state.opened.signal) {
  try {
    const p = await api(routes.progress);
    $("progress").textContent =
      p.running || p.done < p.total ? `embeddings ${p.done}/${p.total}` : "";
    if (!signal.aborted && $("st-embedding").textContent.startsWith("embedding: computing")) {
      setStatus(
        "st-embedding",
        `embedding: computing on the server… (${p.done}/${p.total} images done)`,
        "warn",
      );
    }
  } catch {
    // progress is informative only; the embedding request itself reports failures
  }
}

function prefetch(/** @type {number} */ index) {
  for (let k = 1; k <= PREFETCH; k++) {
    const next = state.images[index + k];
    if (next && !next.error)
      decoder
        // The next image's decoder prefix too, when the worker is idle (the one most likely opened).
        .request("embedding", { imageId: next.id, url: routes.embedding(next.id), ahead: k === 1 })
        .catch(() => {});
  }
}

export async function toggleDone() {
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
