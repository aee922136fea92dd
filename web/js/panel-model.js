// The Model panel: the data engine's loop from the page. It lists the model versions with their
// gate tables (base beside every row, the verdict and the row that decided), which one is
// active and since when; starts a training run ("Train now") and cancels it, with a progress bar
// (step, elapsed, remaining, the best held-out score so far); activates or rolls back a version;
// sets the cadence (retrain after every N accepted masks, or off). Everything it shows comes
// from the server (GET /api/train, /api/models, /api/train/cadence), polled, so a reload or a
// second page shows a running job. The decoder switch itself is model-version.js's (it polls
// the active version).
import { api, routes } from "./api.js";
import { $, errorText } from "./status.js";
import { state } from "./store.js";

/** Poll GET /api/train this often while a run is going, and this often otherwise (ms). */
const FAST_MS = 700;
const SLOW_MS = 4000;

/** @type {{state?: string, phase?: string, message?: string, step?: number, steps?: number, elapsed_s?: number, eta_s?: number, best?: {step: number, score: number} | null, decision?: {version: string, verdict: string, reason: string}, error?: string, cancel_requested?: boolean, finished?: number}} */
let job = {};
/** @type {any} the last /api/models answer's mask ratings per stage and version (null: none yet) */
let ratings = null;
/** The last /api/models answer, and the job's `finished` time it was fetched for (null: refetch). */
let versions = /** @type {any[]} */ ([]);
let versionsFor = /** @type {number | undefined | null} */ (null);
let timer = 0;

/** Whether this page may start runs, cancel them and switch versions (accounts on: admins only). */
function mayDrive() {
  return !state.team || state.team.role === "admin";
}

/** Start the panel: wire the buttons, then poll the job (and the versions when it changes). */
export function startModelPanel() {
  $("train-button").onclick = () => act(() => api(routes.train, { method: "POST", body: {} }));
  $("train-cancel").onclick = () =>
    act(() => api(routes.trainCancel, { method: "POST", body: {} }));
  const every = /** @type {HTMLInputElement} */ ($("train-every"));
  every.onchange = () =>
    act(() =>
      api(routes.trainCadence, {
        method: "PUT",
        body: { retrain_every: every.value === "" ? null : Math.round(Number(every.value)) },
      }),
    );
  api(routes.trainCadence)
    .then((c) => (every.value = c.retrain_every == null ? "" : String(c.retrain_every)))
    .catch(() => {});
  poll();
}

/** Run a request of a button; its error shows in the panel's status line. */
async function act(/** @type {() => Promise<unknown>} */ request) {
  try {
    await request();
  } catch (err) {
    $("train-decision").textContent = errorText(err);
    $("train-decision").className = "bad";
  }
  clearTimeout(timer);
  versionsFor = null;
  poll();
}

async function poll() {
  try {
    job = await api(routes.train);
    // The versions change when a run ends or someone switches (here or on another page): they
    // are fetched then, and on every slow poll while no run is going.
    if (versionsFor !== (job.finished ?? 0) || job.state !== "running") {
      const answer = await api(routes.models);
      versions = answer.versions;
      ratings = answer.ratings ?? null;
      versionsFor = job.finished ?? 0;
    }
    render();
  } catch (err) {
    $("train-text").textContent = errorText(err);
  }
  timer = window.setTimeout(poll, job.state === "running" ? FAST_MS : SLOW_MS);
}

/** Seconds as "1 min 05 s" or "42 s". */
function duration(/** @type {number | undefined} */ s) {
  if (s == null) return "–";
  const whole = Math.round(s);
  return whole >= 60
    ? `${Math.floor(whole / 60)} min ${String(whole % 60).padStart(2, "0")} s`
    : `${whole} s`;
}

function render() {
  const running = job.state === "running";
  const drive = mayDrive();
  /** @type {HTMLButtonElement} */ ($("train-button")).disabled = running || !drive;
  $("train-cancel").hidden = !running || !drive;
  /** @type {HTMLInputElement} */ ($("train-every")).disabled = !drive;
  $("train-progress").hidden = !running;
  const bar = /** @type {HTMLProgressElement} */ ($("train-bar"));
  if (running) {
    bar.max = job.steps || 1;
    bar.value = job.step || 0;
    const best = job.best
      ? `; best held-out ${job.best.score.toFixed(3)} (step ${job.best.step})`
      : "";
    $("train-text").textContent = job.step
      ? `step ${job.step} of ${job.steps} · ${duration(job.elapsed_s)} · ${duration(job.eta_s)} left${best}`
      : job.message || job.phase || "starting";
    if (job.cancel_requested) $("train-text").textContent += " · cancelling…";
  }
  const decision = $("train-decision");
  decision.className = "";
  if (running) decision.textContent = "";
  else if (job.state === "done" && job.decision) {
    decision.textContent = `${job.decision.version}: ${job.decision.reason}`;
    decision.className = job.decision.verdict === "refused" ? "warn" : "ok";
  } else if (job.state === "cancelled") decision.textContent = "cancelled: nothing was written";
  else if (job.state === "failed") {
    decision.textContent = job.error || "failed";
    decision.className = "bad";
  } else decision.textContent = "";
  renderVersions(drive);
  renderStageRatings();
}

/**
 * "★ 7.8 (12)" with the median and the 1..10 histogram in its tooltip.
 * @param {{count: number, mean: number | null, median: number | null, histogram: number[]}} r
 * @param {string} what
 */
function ratingBadge(r, what) {
  const badge = document.createElement("span");
  badge.className = "rating-badge";
  badge.textContent = `★ ${r.mean} (${r.count})`;
  badge.title = `mask ratings of ${what}: mean ${r.mean}, median ${r.median}, ${r.count} rating(s)\nhow many rated 1 … 10: ${r.histogram.join(" ")}`;
  return badge;
}

/** The ratings of the masks each stage made (manual, semi-automatic, automatic): the paper's comparison. */
function renderStageRatings() {
  const line = $("stage-ratings");
  line.replaceChildren();
  const stages = Object.entries(ratings?.stages ?? {}).filter(([, r]) => r.count);
  line.hidden = !stages.length;
  if (!stages.length) return;
  line.append("rated masks by stage:");
  for (const [stage, r] of stages) {
    line.append(" ", stage, " ");
    line.append(ratingBadge(r, `the ${stage} stage`));
  }
}

function renderVersions(/** @type {boolean} */ drive) {
  const list = $("version-list");
  list.replaceChildren();
  const active = versions.find((v) => v.active);
  $("model-active").textContent = active ? active.version : "";
  for (const v of versions) {
    const li = document.createElement("li");
    li.dataset.version = v.version;
    li.className = v.active ? "current" : "";
    const head = document.createElement("div");
    head.className = "version-head";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = v.version;
    const badge = document.createElement("span");
    const verdict =
      v.version === "base" ? "" : (v.gate?.verdict ?? (v.activated ? "activated" : "refused"));
    badge.className = `badge ${v.active ? "done" : verdict === "refused" ? "rejected" : ""}`;
    badge.textContent = v.active ? "active" : verdict;
    if (v.active && v.active_since) badge.title = `active since ${v.active_since}`;
    head.append(name, badge);
    if (!v.active && drive) {
      const button = document.createElement("button");
      button.type = "button";
      const older = active && versionNumber(v.version) < versionNumber(active.version);
      button.textContent = older ? "Roll back" : "Activate";
      button.title = `make ${v.version} the model every page and proposal uses`;
      button.onclick = () =>
        act(() => api(routes.activeModel, { method: "POST", body: { version: v.version } }));
      head.append(button);
    }
    const rated = ratings?.versions?.[v.version];
    if (rated?.count) head.append(ratingBadge(rated, `masks made with ${v.version}`));
    li.append(head);
    if (v.version !== "base") li.append(gateDetails(v));
    list.append(li);
  }
}

/** "v0003" -> 3, "base" -> 0. */
function versionNumber(/** @type {string} */ name) {
  return name === "base" ? 0 : Number(name.slice(1));
}

/** The version's reason and its gate table (base, compared, new, limit, ok per row). */
function gateDetails(/** @type {any} */ v) {
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = v.note || "";
  summary.className = "reason";
  details.append(summary);
  const rows = v.gate?.rows ?? [];
  if (!rows.length) return details;
  const table = document.createElement("table");
  table.className = "gate-table";
  // "before" (the version the run compared with) only when it is not the base model
  const before = rows.some((/** @type {any} */ r) => r.compared !== r.base);
  const header = table.insertRow();
  for (const h of ["", "base", ...(before ? ["before"] : []), "new", "limit", ""]) {
    const th = document.createElement("th");
    th.textContent = h;
    header.append(th);
  }
  for (const r of rows) {
    const tr = table.insertRow();
    tr.className = r.metric === v.gate.decided_by ? "decided" : "";
    const limit = String(r.limit).replace(">=", "≥").replace("<=", "≤").replace("base ", "base");
    const cells = [
      r.label,
      r.base,
      ...(before ? [r.compared] : []),
      r.new,
      limit,
      r.ok ? "✔" : "✘",
    ];
    for (const cell of cells) tr.insertCell().textContent = cell == null ? "–" : String(cell);
  }
  details.append(table);
  return details;
}
