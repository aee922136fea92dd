// The server's image list in the store (state.images), and the open image's record kept in step
// with it. Below the modules that change images (sync, annotations, accept, proposals, team).
import { api, routes } from "./api.js";
import { errorText, showError } from "./status.js";
import { invalidate, mark, state } from "./store.js";

export async function refreshImages() {
  try {
    state.images = await api(routes.images);
    mark("images listed");
  } catch (err) {
    showError(`the image list did not load: ${errorText(err)}`);
    return;
  }
  const open = state.image;
  if (open) {
    const i = state.images.findIndex((im) => im.id === open.id);
    state.imageIndex = i;
    if (i >= 0) state.image = { ...state.image, ...state.images[i] };
  }
  invalidate("images", "team");
}
