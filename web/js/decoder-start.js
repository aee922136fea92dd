/**
 * Starting the page's decoder (onnxruntime-web in its worker, decoder-worker.js): which export and
 * how many threads, and when, so that a large image's first view does not wait for it.
 */
import { decoder } from "./decoder.js";
import { reportDecoder } from "./status-line.js";
import { $, setStatus, showError } from "./status.js";
import { mark, marked, state } from "./store.js";

const ORT_URL = "/vendor/ort/ort.wasm.min.mjs"; // unversioned: for a server that does not name one
/** The longest a large image's first view holds back the decoder's start, ms. */
const FIRST_VIEW_WAIT_MS = 4000;

/**
 * Start the decoder now, or, when the page opens on a large image (a tile pyramid), once its
 * first view shows (at most FIRST_VIEW_WAIT_MS later). That view is cut on the server from a
 * ~1 s decode of the file; compiling the decoder beside it on the same two cores made it ~0.3 s
 * slower (bench/RESULTS.md, issue 24, 2026-12-05). Clicks wait for the decoder either way.
 */
export function startDecoderFor(/** @type {import('./store.js').ImageRecord | undefined} */ image) {
  if (!image?.pyramid) return startDecoder();
  const shown = Promise.race([
    marked("picture shown"),
    new Promise((resolve) => setTimeout(resolve, FIRST_VIEW_WAIT_MS)),
  ]);
  return shown.then(startDecoder);
}

export async function startDecoder() {
  mark("decoder started");
  const isolated = window.crossOriginIsolated;
  // ?threads=N and ?warm=N (tier-up runs, decoder-worker.js) are for benchmarks' A/B runs.
  const params = new URLSearchParams(location.search);
  const asked = Number(params.get("threads")) || 0;
  const threads = isolated ? asked || navigator.hardwareConcurrency || 1 : 1;
  setStatus(
    "st-isolation",
    isolated ? `isolated · ${threads} threads` : "not isolated · 1 thread",
    isolated ? "ok" : "bad",
  );
  if (!isolated)
    showError(
      "the page is not cross-origin isolated (COOP/COEP headers missing), so the decoder runs on one thread only",
    );
  const wanted = params.get("decoder");
  const decoders = state.manifest.decoders;
  // fp32 unless asked: the int8 export quantises only the small token MLPs, so in WASM it is
  // not measurably faster (bench/RESULTS.md), and it is less exact (the manifest's verify figures).
  const precision =
    wanted && decoders[wanted] ? wanted : decoders.fp32 ? "fp32" : Object.keys(decoders)[0];
  state.decoderPrecision = precision;
  // The fp32 decoder split in a per-image prefix and a per-prompt graph (exporter/decoder_prefix.py)
  // when the export has it, unless ?prefix=0.
  const split = precision === "fp32" && params.get("prefix") !== "0" ? state.manifest.prefix : null;
  const url = split?.prompt.url ?? decoders[precision].url ?? state.manifest.decoder_url;
  setStatus("st-decoder", `decoder ${precision}: loading…`, "warn");
  reportDecoder("loading");
  const info = await decoder.request("init", {
    ortUrl: state.manifest.ort_url ?? ORT_URL,
    decoderUrl: url,
    prefixUrl: split?.prefix.url ?? null,
    manifest: state.manifest,
    numThreads: threads,
    spinning: params.get("spin") === "1", // onnxruntime's threads spin between ops (bench knob)
    tierUpRuns: params.has("warm") ? Number(params.get("warm")) : null,
  });
  state.decoderReady = true;
  mark("decoder ready");
  state.decoderInfo = info;
  setStatus("st-decoder", `decoder ${precision} ready`, "ok");
  reportDecoder("ready");
  $("st-decoder").title = `loaded in ${Math.round(info.loadMs)} ms`;
  setStatus(
    "st-version",
    `model ${state.manifest.model_version}`,
    state.manifest.model_version === "base" ? "" : "ok",
  );
}
