// Team mode (accounts on): who is logged in, the images the server hands out, and moving on.
// "Next image" asks POST /api/work/next for an image no one else holds (or the one this person
// holds already) and opens it; "Finish image" marks it done, which releases its lease, and takes
// the next. Opening another image or logging out gives the held one back (work.js renews it while
// it is open). In single-user mode /api/me says {accounts: false} and none of this shows.
import { api, routes } from "./api.js";
import { refreshImages } from "./image-list.js";
import { errorText, showError, stageMessage } from "./status.js";
import { invalidate, state } from "./store.js";
import { openImage } from "./sync.js";

/** The account, in team mode (loadAccount set it; the functions below run only then). */
function team() {
  return /** @type {import('./store.js').Team} */ (state.team);
}

export const NONE_LEFT =
  "No image left to annotate: every image is finished or held by someone else.";

/** Ask who is logged in; sets state.team when accounts are on. Resolves to it (or null). */
export async function loadAccount() {
  const me = await api(routes.me).catch(() => ({ accounts: false }));
  if (!me?.accounts) return null;
  state.team = { name: me.name, role: me.role, held: null, reviewing: false, left: false };
  invalidate("team");
  return state.team;
}

/** Open an image the server has just leased to this person (`reviewing`: for review). */
export async function openHeld(
  /** @type {import('./store.js').ImageRecord} */ image,
  /** @type {boolean} */ reviewing,
) {
  if (team().held != null && team().held !== image.id) await releaseHeld();
  team().held = image.id;
  team().reviewing = reviewing;
  team().left = false;
  let index = state.images.findIndex((im) => im.id === image.id);
  if (index < 0) {
    await refreshImages(); // added to the folder since the list was loaded
    index = state.images.findIndex((im) => im.id === image.id);
  }
  invalidate("team");
  await openImage(index);
}

/** W: the next image handed out (the one held, if any), or a message that none is left. */
export async function nextImage() {
  if (!state.team) return;
  let answer;
  try {
    answer = await api(routes.workNext, { method: "POST" });
  } catch (err) {
    showError(`no image was handed out: ${errorText(err)}`);
    return;
  }
  if (!answer.image) {
    await releaseHeld();
    state.team.left = true;
    invalidate("team");
    stageMessage(NONE_LEFT);
    return;
  }
  await openHeld(answer.image, false);
  if (answer.image.review === "rejected")
    stageMessage(`sent back by the reviewer: ${answer.image.review_reason}`);
}

/** D (accounts on): mark the held image done (the server releases it) and take the next one. */
export async function finishImage() {
  const id = state.team?.held;
  if (id == null || team().reviewing || id !== state.image?.id) {
    showError("this image is not handed to you: take one with Next image (W)");
    return;
  }
  try {
    await api(routes.image(id), { method: "PATCH", body: { status: "done" } });
  } catch (err) {
    showError(`the image was not finished: ${errorText(err)}`);
    return;
  }
  team().held = null;
  await refreshImages();
  await nextImage();
}

/** Give the held image back (moving on without finishing it). */
export async function releaseHeld() {
  const id = state.team?.held;
  if (id == null) return;
  team().held = null;
  team().reviewing = false;
  invalidate("team");
  await api(routes.workRelease(id), { method: "POST" }).catch(() => {}); // it expires anyway
}

/** Open image `index` of the list by hand (a click, N / P): a held image other than it is given back. */
export async function browseTo(/** @type {number} */ index) {
  const image = state.images[index];
  if (!image) return;
  if (state.team && image.id !== state.team.held) await releaseHeld();
  await openImage(index);
}

export async function logout() {
  await releaseHeld();
  try {
    await api(routes.logout, { method: "POST" });
  } catch (err) {
    showError(`not logged out: ${errorText(err)}`);
    return;
  }
  window.location.assign("/login");
}
