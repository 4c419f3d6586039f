#!/usr/bin/env bash
# The main job: set up, then run the model-based λ sweep of the paper's reference
# configuration (N=5, C=20, β=1.6, x_max=10, T=20, 20 seeds) and print its table.
# Extra arguments go to `swalab simulate` (e.g. --scorer consistent --margin 0).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/swalab simulate "$@"
