#!/usr/bin/env bash
# Every GPU target of issue 11 in one command, on the lent GPU machine (its python3 has torch; ray if installed):
#   bash bench/gpu_issue11.sh        (with .whl/ as for bench/gpu_run.sh: wheels + vit_t.pt, optionally vit_h.pt)
# 1. maskloop's generator vs SAM's, side by side, vit_t (and vit_h when .whl/vit_h.pt exists), 32x32, on the sample
#    photos (sizes 0.1-6 MP): speedup on the summed time, per-image seconds -> p95/p50 (bench_amg.py --device cuda).
# 2. `maskloop auto` single-process vs `auto --ray` (local Ray, one GPU) on the same 27 photos: images/s of each.
# Results under $OUT (default /tmp): amg_<model>_cuda.json, auto_ray_vs_single.json.
set -euo pipefail
OUT="${OUT:-/tmp}"
source <(sed -n '/^python3 -m pip/,/^export PYTHONPATH/p' bench/gpu_run.sh)  # the shim and wheels of gpu_run.sh
mkdir -p "$HOME/.cache/maskloop" && cp -n .whl/vit_t.pt "$HOME/.cache/maskloop/" 2>/dev/null || true
photos=(sample_images/*.jpg)
python3 bench/bench_amg.py --device cuda --model-type vit_t --checkpoint .whl/vit_t.pt --images "${photos[@]}" \
  --points-per-side 32 --page-points 0 --exact-images 0 --no-official-cache --out "$OUT/amg_vit_t_cuda.json"
if [[ -f .whl/vit_h.pt ]]; then
  python3 bench/bench_amg.py --device cuda --model-type vit_h --checkpoint .whl/vit_h.pt --images "${photos[@]}" \
    --points-per-side 32 --page-points 0 --exact-images 0 --no-official-cache --out "$OUT/amg_vit_h_cuda.json"
fi
if python3 -c "import ray" 2>/dev/null; then
  python3 - "$OUT" <<'PY'
import json, subprocess, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, "bench")
from bench_amg import image_folder
out, rows = Path(sys.argv[1]), {}
for mode, extra in (("single", []), ("ray", ["--ray"])):
    with tempfile.TemporaryDirectory() as tmp:
        folder = image_folder(Path(tmp) / "data", 27, base=9)
        subprocess.run([sys.executable, "-m", "maskloop.cli", "embed", "--data", str(folder), "--device", "cuda"], check=True)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "maskloop.cli", "auto", "--data", str(folder), "--out", f"{tmp}/a.json",
                        "--device", "cuda", *extra], check=True)
        rows[mode] = {"images": 27, "s": round(time.perf_counter() - start, 1), "images_per_s": round(27 / (time.perf_counter() - start), 3)}
rows["ray_vs_single"] = round(rows["ray"]["images_per_s"] / rows["single"]["images_per_s"], 3)
print(json.dumps(rows)); (out / "auto_ray_vs_single.json").write_text(json.dumps(rows, indent=2))
PY
else
  echo "ray is not installed on this machine: auto --ray vs single-process not measured" >&2
fi
