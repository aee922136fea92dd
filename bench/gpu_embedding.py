"""GPU check of the embedding path (issue 2 §5): images/s by model, batch and precision.

Run on a machine with a CUDA GPU:
    python bench/gpu_embedding.py --out gpu_embedding.json [--default-checkpoint vit_t.pt] [--compile]
(kept runs go to bench/results/gpu_embedding_<date>_<gpu>.json)

Measures, for the default vit_t (real weights) and random-weight vit_b / vit_h:
  - encoder images/s at batch 1 and 8 in fp32, bf16 and fp16 (maskloop's fused attention);
  - vit_h bf16 batch 8 without fused attention, and Meta's ``SamPredictor.set_image`` loop (fp32);
  - maskloop's whole ``ImageEmbedder.embed`` path (uint8 images in, CPU resize included);
  - the CPU-vs-GPU embedding difference (vit_t, real photo), and bf16-vs-fp32 embedding and
    mask agreement (IoU of decoder masks from each embedding, same prompts).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch


def timed(fn, min_seconds: float = 3.0, warmup: int = 2, max_iters: int = 50) -> tuple[float, int]:
    """Median seconds per call of ``fn`` (CUDA-synchronised), after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    start = time.perf_counter()
    while (time.perf_counter() - start < min_seconds or len(times) < 3) and len(times) < max_iters:
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), len(times)


def decoder_masks(model, embedding: torch.Tensor, image_hw, prompts) -> list[np.ndarray]:
    """Best-candidate masks (H x W bool) for each prompt, decoder in fp32 on the embedding's device."""
    from segment_anything import SamPredictor

    predictor = SamPredictor(model)
    predictor.reset_image()
    predictor.features = embedding.float()
    predictor.original_size = image_hw
    predictor.input_size = tuple(predictor.transform.get_preprocess_shape(*image_hw, model.image_encoder.img_size))
    predictor.is_image_set = True
    out = []
    for coords, labels in prompts:
        masks, scores, _ = predictor.predict(
            point_coords=coords, point_labels=labels, multimask_output=len(labels) == 1
        )
        out.append(masks[int(np.argmax(scores))])
    return out


def main() -> None:
    from maskloop.exporter.embedding import ImageEmbedder, load_image_rgb
    from maskloop.exporter.registry import build_sam, load_sam
    from maskloop.masks import mask_iou
    from maskloop.paths import SAMPLE_IMAGES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--default-checkpoint", type=Path, default=None, help="imported vit_t .pt (else imported here)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile on vit_h bf16 batch 8")
    parser.add_argument("--models", default="vit_t,vit_b,vit_h")
    parser.add_argument("--skip-grid", action="store_true", help="skip the batch x precision grid")
    args = parser.parse_args()
    assert torch.cuda.is_available(), "this benchmark needs a CUDA GPU"
    device = "cuda"
    results: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "host": platform.node(),
        "encoder": [],
        "notes": [],
    }
    photos = [load_image_rgb(p) for p in sorted(SAMPLE_IMAGES.glob("*.jpg"))]
    photos_8 = (photos * 8)[:8]

    def model_of(name: str):
        if name == "vit_t":
            return load_sam("vit_t", args.default_checkpoint)
        torch.manual_seed(0)
        return build_sam(name).eval()

    for name in args.models.split(","):
        model = model_of(name)
        embedder = ImageEmbedder(model, device=device)  # fused attention on
        batch8 = embedder.preprocess(photos_8)
        for precision in () if args.skip_grid else ("fp32", "bf16", "fp16"):
            embedder.precision = precision
            for bs in (1, 8):
                x = batch8[:bs]
                sec, n = timed(lambda: embedder.encode(x))
                row = {
                    "model": name,
                    "precision": precision,
                    "batch": bs,
                    "images_per_s": round(bs / sec, 2),
                    "ms_per_batch": round(sec * 1e3, 2),
                    "iters": n,
                    "fused_attention": name != "vit_t",
                }
                results["encoder"].append(row)
                print(json.dumps(row), flush=True)
        if name == "vit_h":
            # The whole path: uint8 photos in (CPU resize + upload + normalise), bf16 batch 8.
            embedder.precision = "bf16"
            sec, n = timed(lambda: embedder.embed(photos_8), min_seconds=4.0)
            results["embed_path_vit_h_bf16_b8_images_per_s"] = round(8 / sec, 2)
            print("embed path vit_h bf16 b8", 8 / sec, flush=True)
            if args.compile:
                try:
                    # maskloop's whole path with the compiled encoder (what `serve --compile` runs).
                    fast = ImageEmbedder(model_of("vit_h"), device=device, precision="bf16", compile=True)
                    t0 = time.perf_counter()
                    fast.embed(photos_8)
                    torch.cuda.synchronize()
                    first_s = time.perf_counter() - t0
                    photos_32 = (photos * 32)[:32]  # 4 batches: CPU resizing overlaps GPU encoding
                    sec, n = timed(lambda: fast.embed(photos_32), min_seconds=4.0)
                    results["embed_path_vit_h_bf16_b8_compiled"] = {
                        "images_per_s": round(32 / sec, 2),
                        "first_batch_s": round(first_s, 1),
                        "images": 32,
                    }
                    print("embed path compiled", results["embed_path_vit_h_bf16_b8_compiled"], flush=True)
                    del fast
                except Exception as exc:
                    results["notes"].append(f"compiled embed path failed: {type(exc).__name__}: {str(exc)[:200]}")
                try:
                    t0 = time.perf_counter()
                    compiled = torch.compile(model.image_encoder)
                    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
                        compiled(batch8)
                    torch.cuda.synchronize()
                    compile_s = time.perf_counter() - t0

                    def run_compiled():
                        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
                            compiled(batch8)

                    sec, n = timed(run_compiled)
                    results["compile_vit_h_bf16_b8"] = {
                        "images_per_s": round(8 / sec, 2),
                        "compile_s": round(compile_s, 1),
                    }
                    print("compiled", results["compile_vit_h_bf16_b8"], flush=True)
                except Exception as exc:  # report, don't lose the other numbers
                    results["notes"].append(f"torch.compile failed: {type(exc).__name__}: {str(exc)[:200]}")
            # Meta's attention (unfused), same bf16 batch 8, then Meta's predictor loop in fp32.
            del embedder
            meta = model_of("vit_h").to(device)
            x = ImageEmbedder(meta, device=device, fused_attention=False).preprocess(photos_8)

            def run_meta_bf16():
                with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
                    meta.image_encoder(x)

            sec, n = timed(run_meta_bf16)
            results["vit_h_bf16_b8_unfused_images_per_s"] = round(8 / sec, 2)
            from segment_anything import SamPredictor

            predictor = SamPredictor(meta)
            sec, n = timed(lambda: predictor.set_image(photos[0]), min_seconds=4.0)
            results["meta_set_image_vit_h_fp32_images_per_s"] = round(1 / sec, 2)
            print(
                "meta unfused bf16 b8",
                results["vit_h_bf16_b8_unfused_images_per_s"],
                "set_image",
                results["meta_set_image_vit_h_fp32_images_per_s"],
                flush=True,
            )
            del meta, predictor
        torch.cuda.empty_cache()

    # Agreement: CPU vs GPU (vit_t real weights), and bf16 vs fp32 embeddings -> masks.
    agreement = {}
    for name in ("vit_t", "vit_h"):
        if name not in args.models.split(","):
            continue
        model = model_of(name)
        rng = np.random.default_rng(0)
        ious, emb_diffs = [], []
        gpu = ImageEmbedder(model, device=device)
        for image in photos[:4]:
            h, w = image.shape[:2]
            prompts = [(np.array([[w / 2, h / 2]]), np.array([1]))]
            prompts += [(rng.uniform([0, 0], [w, h], (3, 2)), np.array([1, 1, 0])) for _ in range(3)]
            gpu.precision = "fp32"
            e32 = torch.from_numpy(gpu.embed([image])).to(device)
            gpu.precision = "bf16"
            e16 = torch.from_numpy(gpu.embed([image])).to(device)
            emb_diffs.append(float((e32 - e16).abs().max() / e32.abs().max()))
            m32 = decoder_masks(gpu.model, e32, (h, w), prompts)
            m16 = decoder_masks(gpu.model, e16, (h, w), prompts)
            ious += [mask_iou(a, b) for a, b in zip(m32, m16)]
        agreement[name] = {
            "bf16_vs_fp32_mask_iou_mean": round(float(np.mean(ious)), 4),
            "bf16_vs_fp32_mask_iou_min": round(float(np.min(ious)), 4),
            "bf16_vs_fp32_embedding_max_rel_diff": round(max(emb_diffs), 4),
            "prompts": len(ious),
        }
        if name == "vit_t":
            cpu = ImageEmbedder(load_sam("vit_t", args.default_checkpoint), device="cpu")
            gpu.precision = "fp32"
            e_cpu, e_gpu = cpu.embed(photos[:1]), gpu.embed(photos[:1])
            agreement[name]["cpu_vs_gpu_fp32_embedding_max_abs_diff"] = float(np.abs(e_cpu - e_gpu).max())
            agreement[name]["embedding_max_abs"] = float(np.abs(e_cpu).max())
        print(name, agreement[name], flush=True)
    results["agreement"] = agreement
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
