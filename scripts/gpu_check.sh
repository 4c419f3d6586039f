#!/usr/bin/env bash
# The batched protocol against the reference protocol on a CUDA GPU (N = 5, 100, 1000):
# decisions/s, tokens/s and GPU memory, in under five minutes. Needs Python with PyTorch and
# transformers already installed; downloads nothing (scripts/gpu_check.py says what it uses).
#
#   bash scripts/gpu_check.sh --prepare   # here, where PyPI is reachable: build/gpu_check/
#   bash scripts/gpu_check.sh [--agents 5,100,1000] [--json PATH] [--device cpu]
#
# --prepare puts in build/gpu_check (~8 MB, carried along with the checkout) the pure-Python
# wheels the runner needs beyond PyTorch (used only where the GPU machine lacks them) and
# Gemma 3's tokenizer, gzipped, for the model made on the spot where the embedded weights
# cannot be brought.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ "${1:-}" = "--prepare" ]; then
  SWALAB_EXTRAS="${SWALAB_EXTRAS:-dev,llamacpp,openai,server,guard,transformers}" bash scripts/bootstrap.sh
  rm -rf build/gpu_check/wheels
  .venv/bin/python - <<'PY' > build_gpu_check_pins.txt
from importlib.metadata import version
for name in ("gymnasium", "pettingzoo", "farama-notifications", "cloudpickle"):
    print(f"{name}=={version(name)}")
PY
  .venv/bin/python -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary :all: -d build/gpu_check/wheels -r build_gpu_check_pins.txt
  rm -f build_gpu_check_pins.txt
  .venv/bin/python scripts/gpu_check.py --device cpu \
    --export-tokenizer build/gpu_check/gemma-3-270m-tokenizer.json.gz
  du -sh build/gpu_check
  exit 0
fi
exec "$PY" scripts/gpu_check.py "$@"
