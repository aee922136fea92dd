#!/usr/bin/env bash
# The server's precompute benchmark on the lent GPU machine (its python3 has torch, timm, numpy, Pillow).
# Needs .whl/ (segment_anything and mobilesam-mirror wheels, vit_t.pt: the imported default model),
# as bench/gpu_run.sh does; Flask is not needed for this part.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
shim=/tmp/shim/maskloop; mkdir -p "$shim"
for f in maskloop/*.py; do ln -sf "$PWD/$f" "$shim/"; done
ln -sfn "$PWD/exporter" "$shim/exporter"; ln -sfn "$PWD/server" "$shim/server"
export PYTHONPATH=/tmp/shim:/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
out="${OUT:-/tmp}"
python3 bench/bench_server.py --part precompute --device cuda --copies 8 --checkpoint .whl/vit_t.pt --out "$out/precompute_cuda.json"
