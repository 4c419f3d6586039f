#!/usr/bin/env bash
# The main job: set up, then replicate the SWA paper quickly on the embedded model —
# Gemma 3 270M (llama.cpp, CPU) proposes the candidates of the reference game over a coarse
# λ grid, then the model-based reference sweep runs with both scorers — and print where each
# system switched beside λ* and λ̃. Results go to results/replicate/ (resumable: rerun to
# finish an interrupted run). Extra arguments go to `swalab replicate paper --quick`
# (e.g. --out DIR, --set seeds=1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/swalab replicate paper --quick "$@"
