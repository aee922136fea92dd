// Decoder graphs timed in turn in onnxruntime-web (WASM, 2 threads, as the page runs them): A, B,
// C, A, B, C... so that whatever else loads the machine weighs on each alike
// (bench/bench_decoder_graphs.py serves this page and the graphs under /bench/).
import * as ort from "/vendor/ort/ort.wasm.min.mjs";
const params = new URLSearchParams(location.search);
const names = params.get("models").split(",");
const runs = Number(params.get("runs") || 30);
ort.env.wasm.numThreads = Number(params.get("threads") || 2);
window.ab = { done: false };
try {
  const sessions = [];
  for (const n of names) {
    const bytes = new Uint8Array(
      await (await fetch(`/bench/models/${n}`)).arrayBuffer(),
    );
    sessions.push(
      await ort.InferenceSession.create(bytes, {
        executionProviders: ["wasm"],
        graphOptimizationLevel: "all",
        extra: {
          session: { intra_op: { allow_spinning: params.get("spin") || "0" } },
        },
      }),
    );
  }
  const emb = new Uint16Array(256 * 64 * 64);
  for (let i = 0; i < emb.length; i++) emb[i] = 0x2e66 + (i % 97);
  // Each graph's prefix (the `prefixes` list, aligned with `models`; empty: none) runs once.
  const prefixes = (params.get("prefixes") || "").split(",");
  const imageSides = [];
  const prefixMs = {};
  for (const [j, p] of names.map((_, j) => [j, prefixes[j] || ""])) {
    if (!p) {
      imageSides.push({});
      continue;
    }
    const bytes = new Uint8Array(
      await (await fetch(`/bench/models/${p}`)).arrayBuffer(),
    );
    const prefix = await ort.InferenceSession.create(bytes, {
      executionProviders: ["wasm"],
    });
    const input = new ort.Tensor("float16", emb, [1, 256, 64, 64]);
    await prefix.run({ image_embeddings: input }); // warm
    const t0 = performance.now();
    imageSides.push(await prefix.run({ image_embeddings: input }));
    prefixMs[names[j]] = performance.now() - t0;
  }
  const mask = new Float32Array(256 * 256);
  for (let i = 0; i < mask.length; i++) mask[i] = ((i * 7919) % 13) - 6;
  const feedsFor = (j, withMask) => {
    const s = sessions[j];
    const f = {
      image_embeddings: new ort.Tensor("float16", emb, [1, 256, 64, 64]),
      point_coords: new ort.Tensor(
        "float32",
        Float32Array.from([500, 400, 0, 0]),
        [1, 2, 2],
      ),
      point_labels: new ort.Tensor(
        "float32",
        Float32Array.from([1, -1]),
        [1, 2],
      ),
      mask_input: new ort.Tensor("float32", mask, [1, 1, 256, 256]),
      has_mask_input: new ort.Tensor(
        "float32",
        Float32Array.from([withMask ? 1 : 0]),
        [1],
      ),
      ...imageSides[j],
    };
    return Object.fromEntries(
      Object.entries(f).filter(([k]) => s.inputNames.includes(k)),
    );
  };
  const times = names.map(() => ({ nomask: [], mask: [] }));
  for (let k = 0; k < runs + 2; k++) {
    for (const withMask of [false, true]) {
      for (let j = 0; j < sessions.length; j++) {
        const t0 = performance.now();
        await sessions[j].run(feedsFor(j, withMask));
        if (k >= 2)
          times[j][withMask ? "mask" : "nomask"].push(performance.now() - t0);
      }
    }
  }
  window.ab = { done: true, names, times, prefixMs };
} catch (e) {
  window.ab = { done: true, error: String(e) };
}
