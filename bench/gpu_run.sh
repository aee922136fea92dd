#!/usr/bin/env bash
# Runs bench/gpu_embedding.py on the lent GPU machine (its python3 has torch, timm, onnx).
# Expects .whl/ with segment_anything and mobilesam-mirror wheels and vit_t.pt (the imported default).
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
shim=/tmp/shim/maskloop; mkdir -p "$shim"
for f in maskloop/*.py; do ln -sf "$PWD/$f" "$shim/"; done
ln -sfn "$PWD/exporter" "$shim/exporter"; ln -sfn "$PWD/server" "$shim/server"; ln -sfn "$PWD/engine" "$shim/engine"
export PYTHONPATH=/tmp/shim:/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
if [[ "${1:-}" == "--amg" ]]; then python3 bench/gpu_amg.py --default-checkpoint .whl/vit_t.pt --out "${OUT:-/tmp}/gpu_amg.json"; exit; fi
python3 bench/gpu_embedding.py --default-checkpoint .whl/vit_t.pt --out "${OUT:-/tmp}/gpu_embedding.json" "$@"
