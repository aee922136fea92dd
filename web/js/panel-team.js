// Team mode's DOM (accounts on): the account bar (who, role, Next image, Finish image, Log out)
// and the review section (images waiting for review, the image decision). What the buttons do
// comes from `connectTeamPanel` (app.js); this module changes no state itself.
import { canReview, waitingForReview } from "./selectors.js";
import { $ } from "./status.js";
import { state } from "./store.js";

const on = {
  next: () => {},
  finish: () => {},
  logout: () => {},
  openReview: (/** @type {number} */ imageId) => {},
  decideImage: (/** @type {string} */ decision, /** @type {string} */ reason) => {},
};

/** Set what the buttons do: handlers named as in `on` above. */
export function connectTeamPanel(/** @type {Partial<typeof on>} */ handlers) {
  Object.assign(on, handlers);
  $("next-button").onclick = () => on.next();
  $("finish-button").onclick = () => on.finish();
  $("logout-button").onclick = () => on.logout();
  $("review-accept").onclick = () => on.decideImage("accept", $("review-reason").value.trim());
  $("review-form").onsubmit = (/** @type {SubmitEvent} */ e) => {
    e.preventDefault(); // the form's submit button sends the image back; its reason is required
    on.decideImage("reject", $("review-reason").value.trim());
  };
}

/** Show the team bar and the review section as state.team says (nothing in single-user mode). */
export function renderTeam() {
  const team = state.team;
  $("team-bar").hidden = !team;
  if (!team) return;
  $("account").textContent = team.name;
  $("role").textContent = team.role;
  $("done-button").hidden = true; // finishing is "Finish image" (D)
  // What the role may not do is not offered (the server refuses it anyway: 403).
  $("category-form").hidden = team.role !== "admin";
  $("export-section").hidden = !canReview();
  $("stats-link").hidden = !canReview();
  const holding = team.held != null && team.held === state.image?.id;
  $("finish-button").disabled = !holding || team.reviewing;
  $("work-status").title = holding
    ? "handed to you: no one else gets it while this page is open"
    : "";
  $("work-status").textContent = team.left
    ? "none left"
    : team.reviewing && holding
      ? "reviewing"
      : holding
        ? "yours"
        : "";
  $("review-section").hidden = !canReview();
  if (canReview()) renderReviewList(holding && team.reviewing);
}

function renderReviewList(/** @type {boolean} */ reviewing) {
  const list = $("review-list");
  list.replaceChildren();
  const waiting = waitingForReview();
  $("review-count").textContent = waiting.length ? String(waiting.length) : "";
  if (!waiting.length) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = "none: finished images show here";
    list.append(li);
  }
  for (const im of waiting) {
    const li = document.createElement("li");
    li.dataset.imageId = String(im.id);
    li.className = im.id === state.image?.id && reviewing ? "current" : "";
    li.title = `review ${im.file_name}: its ${im.num_annotations} mask(s)`;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = im.file_name;
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = String(im.num_annotations ?? "");
    li.append(name, count);
    li.onclick = () => on.openReview(im.id);
    list.append(li);
  }
  $("review-form").hidden = !reviewing;
  if (!reviewing) $("review-reason").value = "";
}
