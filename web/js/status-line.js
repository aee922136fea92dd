// The top bar's status line, for people: one short sentence ("Ready", "Computing this image…",
// "Mask in 45 ms", "Saved"), red only when something is wrong or a mask took much longer than
// this machine's own usual (SLOW_FACTOR × the median of this session's masks). The engineering
// figures (isolation, decoder, embedding size, latency split) stay in the diagnostics popover.
// Per-image values (the last mask's time, "Saved") reset when another image opens.
import { $ } from "./status.js";

/** A mask this many times slower than the session's median is shown in red. */
export const SLOW_FACTOR = 3;
/** Masks needed before "slower than usual" means anything. */
const MIN_SAMPLES = 5;
/** Below this a mask is never called slow, whatever the median (ms). */
const SLOW_FLOOR_MS = 150;
const KEPT = 200;

/**
 * @typedef {{
 *   decoder: "loading" | "ready" | "failed",
 *   image: "none" | "loading" | "computing" | "ready" | "failed",
 *   progress: number | null,
 *   last: "mask" | "saving" | "saved" | "unsaved" | "removed" | "restored" | null,
 *   maskMs: number | null,
 *   slow: boolean,
 *   text: string,
 *   level: string,
 * }} StatusLine
 */

/** @type {StatusLine} */
const line = {
  decoder: "loading",
  image: "none",
  progress: null,
  last: null,
  maskMs: null,
  slow: false,
  text: "Starting…",
  level: "",
};
/** @type {number[]} this session's mask times (ms), the last KEPT */
const session = [];

/** The median of `values` (not empty). */
export function median(/** @type {number[]} */ values) {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Whether `ms` is much slower than the `usual` mask times (the ones before it). */
export function isSlow(/** @type {number} */ ms, /** @type {number[]} */ usual) {
  if (usual.length < MIN_SAMPLES || ms < SLOW_FLOOR_MS) return false;
  return ms > SLOW_FACTOR * median(usual);
}

/** The sentence and its level for a status. */
export function describe(/** @type {StatusLine} */ s) {
  if (s.decoder === "failed") return ["The mask model did not load (details: i)", "bad"];
  if (s.image === "failed") return ["This image could not be prepared (details: i)", "bad"];
  if (s.last === "unsaved") return ["Mask not saved: press Enter to try again", "bad"];
  if (s.image === "computing") {
    const pct = s.progress == null ? "" : ` ${Math.round(s.progress * 100)}%`;
    return [`Computing this image…${pct}`, "busy"];
  }
  if (s.image === "loading") return ["Loading this image…", "busy"];
  if (s.decoder === "loading") return ["Loading the mask model…", "busy"];
  if (s.last === "saving") return ["Saving…", "busy"];
  if (s.last === "saved") return ["Saved", "ok"];
  if (s.last === "removed") return ["Mask removed (Ctrl+Shift+Z brings it back)", ""];
  if (s.last === "restored") return ["Mask restored", "ok"];
  if (s.last === "mask" && s.maskMs != null) {
    const ms = Math.round(s.maskMs);
    return s.slow ? [`Mask in ${ms} ms: slower than usual`, "bad"] : [`Mask in ${ms} ms`, ""];
  }
  if (s.image === "none") return ["No image open", ""];
  return ["Ready", ""];
}

function render() {
  [line.text, line.level] = describe(line);
  const el = $("st-line");
  if (!el) return;
  el.textContent = line.text;
  el.className = line.level;
}

/** The decoder's state. */
export function reportDecoder(/** @type {StatusLine["decoder"]} */ status) {
  line.decoder = status;
  render();
}

/** The open image's state; `progress` in [0, 1] when known. */
export function reportImage(
  /** @type {StatusLine["image"]} */ status,
  /** @type {number | null} */ progress = null,
) {
  line.image = status;
  line.progress = progress;
  render();
}

/** A mask was drawn `ms` after its prompt. */
export function reportMask(/** @type {number} */ ms) {
  line.slow = isSlow(ms, session);
  session.push(ms);
  if (session.length > KEPT) session.shift();
  line.maskMs = ms;
  line.last = "mask";
  render();
}

/** What became of the current mask: "saving", "saved", "unsaved", "removed", "restored". */
export function reportSave(/** @type {StatusLine["last"]} */ what) {
  line.last = what;
  render();
}

/** Another image opened: its own values start empty. */
export function resetImageStatus() {
  line.last = null;
  line.maskMs = null;
  line.slow = false;
  line.progress = null;
  render();
}

/** What the line says now, and why: for window.maskloop. */
export function statusLine() {
  return { ...line, usualMs: session.length ? median(session) : null };
}
