// The baseline of bench_web.py, configured like Segment Anything's web demo
// (facebookresearch/segment-anything, demo/src): onnxruntime-web on the main thread with one
// thread, the float32 decoder exported with full-resolution mask outputs, a float32 embedding,
// and the mask turned into an image on the main thread (ImageData -> canvas -> data URL ->
// <img>), as the demo's onnxMaskToImage does. Timing: click -> mask drawn.
import * as ort from "/vendor/ort/ort.wasm.min.mjs";

const params = new URLSearchParams(location.search);
const imageId = Number(params.get("image"));
const state = { clicks: [], latencies: [], ready: false, error: null };
window.baseline = state;

function parseNpyFloat32(buffer) {
  const view = new DataView(buffer);
  const headerLen = view.getUint16(8, true);
  const header = new TextDecoder().decode(new Uint8Array(buffer, 10, headerLen));
  if (!header.includes("'<f4'")) throw new Error(`expected a float32 .npy, got ${header}`);
  return new Float32Array(buffer, 10 + headerLen);
}

// The demo's helpers/onnxModelAPI.tsx: clicks scaled by samScale, padding point, no mask input.
function modelData(clicks, tensor, modelScale) {
  const n = clicks.length;
  const pointCoords = new Float32Array(2 * (n + 1));
  const pointLabels = new Float32Array(n + 1);
  for (let i = 0; i < n; i++) {
    pointCoords[2 * i] = clicks[i].x * modelScale.samScale;
    pointCoords[2 * i + 1] = clicks[i].y * modelScale.samScale;
    pointLabels[i] = clicks[i].clickType;
  }
  pointLabels[n] = -1;
  return {
    image_embeddings: tensor,
    point_coords: new ort.Tensor("float32", pointCoords, [1, n + 1, 2]),
    point_labels: new ort.Tensor("float32", pointLabels, [1, n + 1]),
    orig_im_size: new ort.Tensor("float32", [modelScale.height, modelScale.width]),
    mask_input: new ort.Tensor("float32", new Float32Array(256 * 256), [1, 1, 256, 256]),
    has_mask_input: new ort.Tensor("float32", [0]),
  };
}

// The demo's helpers/maskUtils.tsx.
function arrayToImageData(input, width, height) {
  const [r, g, b, a] = [0, 114, 189, 255];
  const arr = new Uint8ClampedArray(4 * width * height).fill(0);
  for (let i = 0; i < input.length; i++) {
    if (input[i] > 0.0) {
      arr[4 * i + 0] = r;
      arr[4 * i + 1] = g;
      arr[4 * i + 2] = b;
      arr[4 * i + 3] = a;
    }
  }
  return new ImageData(arr, height, width);
}

function imageDataToImage(imageData) {
  const canvas = document.createElement("canvas");
  canvas.width = imageData.width;
  canvas.height = imageData.height;
  canvas.getContext("2d").putImageData(imageData, 0, 0);
  const image = new Image();
  image.src = canvas.toDataURL();
  return image;
}

async function start() {
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  const images = await (await fetch("/api/images")).json();
  const info = images.find((im) => im.id === imageId);
  const picture = document.getElementById("picture");
  picture.src = `/api/images/${imageId}/file`;
  await picture.decode();
  // Shown at most 1000 px wide, as the demo scales its image to the window.
  const shownScale = Math.min(1, 1000 / info.width);
  picture.width = Math.round(info.width * shownScale);
  picture.height = Math.round(info.height * shownScale);
  const overlay = document.getElementById("overlay");
  overlay.width = picture.width;
  overlay.height = picture.height;
  const session = await ort.InferenceSession.create("/bench/models/decoder.onnx", { executionProviders: ["wasm"] });
  const npy = await (await fetch(`/api/images/${imageId}/embedding?dtype=float32`)).arrayBuffer();
  const tensor = new ort.Tensor("float32", parseNpyFloat32(npy), [1, 256, 64, 64]);
  const modelScale = { height: info.height, width: info.width, samScale: 1024 / Math.max(info.height, info.width) };
  const ctx = overlay.getContext("2d");

  overlay.addEventListener("contextmenu", (e) => e.preventDefault());
  overlay.addEventListener("pointerup", async (event) => {
    const t0 = event.timeStamp;
    const rect = overlay.getBoundingClientRect();
    const x = ((event.clientX - rect.left) / rect.width) * info.width;
    const y = ((event.clientY - rect.top) / rect.height) * info.height;
    state.clicks.push({ x, y, clickType: event.button === 2 ? 0 : 1 });
    const feeds = modelData(state.clicks, tensor, modelScale);
    const t1 = performance.now();
    const results = await session.run(feeds);
    const decode = performance.now() - t1;
    const masks = results.masks;
    const [, count, h, w] = masks.dims;
    const iou = results.iou_predictions.data;
    let k = 0; // several clicks: the single-mask output; one click: the best of the other three
    if (state.clicks.length === 1) for (let i = 1; i < count; i++) if (k === 0 || iou[i] > iou[k]) k = i;
    const one = masks.data.subarray(k * h * w, (k + 1) * h * w);
    const image = imageDataToImage(arrayToImageData(one, h, w));
    await new Promise((resolve, reject) => {
      image.onload = resolve;
      image.onerror = reject;
    });
    ctx.clearRect(0, 0, overlay.width, overlay.height);
    ctx.globalAlpha = 0.5;
    ctx.drawImage(image, 0, 0, overlay.width, overlay.height);
    state.latencies.push({ total: performance.now() - t0, decode, render: performance.now() - t1 - decode });
  });
  state.reset = () => {
    state.clicks = [];
    ctx.clearRect(0, 0, overlay.width, overlay.height);
  };
  // One run before timing, as maskloop's page warms up too.
  await session.run(modelData([{ x: 10, y: 10, clickType: 1 }], tensor, modelScale));
  state.ready = true;
}

start().catch((err) => {
  state.error = err.message || String(err);
  console.error(err);
});
