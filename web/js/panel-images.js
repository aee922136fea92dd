// The image list: DOM only; a click on a row calls the handler of `connectImagePanel`.
import { routes } from "./api.js";
import { $ } from "./status.js";
import { state } from "./store.js";

/** @type {Record<string, string>} */
const STATUS_WORDS = {
  not_started: "not started",
  in_progress: "in progress",
  done: "done",
  error: "error",
};
const on = { open: (/** @type {number} */ index) => {} };
let reveal = false; // scroll the current image's row into view at the next paint

export function connectImagePanel(/** @type {Partial<typeof on>} */ handlers) {
  Object.assign(on, handlers);
}

/** The next paint scrolls the list to the current image (it was just opened). */
export function revealCurrentImage() {
  reveal = true;
}

export function renderImages() {
  const list = $("image-list");
  list.replaceChildren();
  state.images.forEach((im, i) => {
    const li = document.createElement("li");
    li.dataset.imageId = String(im.id);
    li.className = i === state.imageIndex ? "current" : "";
    li.title = im.error
      ? `${im.file_name}: ${im.error}`
      : `${im.file_name} (${im.width}×${im.height})${im.note ? `: ${im.note}` : ""}`;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = im.animated ? `${im.file_name} (frame 1)` : im.file_name; // only frame 0 of an animation is annotated
    const badge = document.createElement("span");
    badge.className = `badge ${im.status}`;
    badge.textContent = STATUS_WORDS[im.status] ?? im.status;
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = String(im.num_annotations ?? "");
    count.title = `${im.num_annotations ?? 0} accepted mask(s)`;
    li.append(thumbnail(im), name, badge, count);
    li.onclick = () => on.open(i);
    list.append(li);
  });
  renderDone();
  if (reveal) list.querySelector("li.current")?.scrollIntoView({ block: "nearest" });
  reveal = false;
  $("done-button").textContent =
    state.image?.status === "done" ? "Mark not done" : "Mark image done";
}

/** @type {Map<number, HTMLElement>} one thumbnail element per image, kept across repaints (no refetch) */
const thumbnails = new Map();

/** The image's thumbnail (made once by the server, 128 px), or an empty box for an unusable image. */
function thumbnail(/** @type {import('./store.js').ImageRecord} */ im) {
  const kept = thumbnails.get(im.id);
  if (kept && kept.dataset.key === `${im.error ?? ""}`) return kept;
  let el;
  if (im.error) el = document.createElement("span");
  else {
    const img = document.createElement("img");
    img.loading = "lazy";
    img.decoding = "async";
    img.alt = "";
    img.src = routes.thumbnail(im.id);
    el = img;
  }
  el.className = "thumb";
  el.dataset.key = `${im.error ?? ""}`;
  thumbnails.set(im.id, el);
  return el;
}

/** "n of N done" and its bar, in the list's header (images that cannot be annotated do not count). */
export function doneCount(/** @type {import('./store.js').ImageRecord[]} */ images) {
  const usable = images.filter((im) => !im.error);
  return { done: usable.filter((im) => im.status === "done").length, total: usable.length };
}

function renderDone() {
  const { done, total } = doneCount(state.images);
  $("done-text").textContent = `${done} of ${total} done`;
  const bar = $("done-bar");
  bar.max = Math.max(1, total);
  bar.value = done;
  $("done-progress").title = `${done} of ${total} images are marked done (D marks the open one)`;
}
