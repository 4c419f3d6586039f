#!/usr/bin/env bash
# Hostile-but-fair probes of the CLI (issue 19): bad queries, damaged stores, unbounded work,
# edge numbers, a dead LLM endpoint, malformed configs. Prints one line per probe:
# "probe|exit code|last line of stderr". Every probe should end in a clear one-line error
# (exit 2), a failed run (exit 1) or a correct result (exit 0); the tests cause each fault too
# (tests/cli/test_faults.py, tests/experiments/test_store_faults.py). Needs `bash scripts/test.sh`
# or `scripts/main.sh` first; works in a temporary directory.
set -u
cd "$(dirname "$0")/.."
source .venv/bin/activate
work=$(mktemp -d) && cd "$work" || exit 1
export SWALAB_CACHE_DIR="$work/cache"
pe() { local name="$1"; shift; "$@" >o.txt 2>e.txt; local rc=$?; echo "$name|$rc|$(tail -1 e.txt | cut -c1-230)"; }
swalab --quiet phase --lam 0,1 --beta 2 --seeds 1 --steps 5 --out st >/dev/null 2>&1
swalab --quiet run reference_model_based --set seeds=1 --set 'grid.lam=[0.0, 1.0]' --out sw >/dev/null 2>&1
pe "query COPY TO file" swalab query sw "COPY (SELECT 1) TO '$work/anywhere.csv'"; ls "$work"/anywhere.csv 2>/dev/null && echo "  WROTE anywhere.csv"
pe "query ATTACH+CREATE" swalab query sw "ATTACH '$work/other.duckdb' AS d; CREATE TABLE d.t AS SELECT 1"; ls "$work"/other.duckdb 2>/dev/null && echo "  WROTE other.duckdb"
pe "query read_text('/etc/passwd')" swalab query sw "SELECT * FROM read_text('/etc/passwd')"
pe "query glob('/*')" swalab query sw "SELECT * FROM glob('/*')"
pe "query INSTALL httpfs" swalab query sw "INSTALL httpfs"
pe "report on an empty dir" swalab report emptydir
mkdir -p emptydir; pe "report on a dir with no study" swalab report emptydir
# damaged store
cp -r sw swc; f=$(ls swc/cells/*/episodes.parquet | head -1); echo garbage > "$f"
pe "query corrupt episodes.parquet" swalab query swc "SELECT count(*) FROM episodes"
pe "report corrupt episodes.parquet" swalab report swc
pe "resume over corrupt cell" swalab --quiet run reference_model_based --set seeds=1 --set 'grid.lam=[0.0, 1.0]' --out swc
pe "  then query" swalab query swc "SELECT count(*) AS n FROM episodes"; cat o.txt | grep -E "│ *[0-9]" | head -1
cp -r sw swm; : > swm/manifest.json
pe "empty manifest.json (query)" swalab query swm "SELECT 1"
pe "empty manifest.json (run)" swalab --quiet run reference_model_based --set seeds=1 --set 'grid.lam=[0.0, 1.0]' --out swm
touch afile; pe "--out is a file" swalab --quiet run reference_model_based --set seeds=1 --out afile
# bounded work
pe "lam step 1e-9" swalab run reference_model_based --set 'grid.lam={from: 0, to: 1, step: 1e-9}' --out b1
pe "phase 1e5 x 1e5" swalab phase --lam 0:1:100000 --beta 1:5:100000 --out b2
pe "lockin 1e9 beliefs" swalab lockin --initial-belief 0:10:1000000000 --out b3
pe "policy.grid_step 1e-9" swalab run reference_model_based --set policy.grid_step=1e-9 --out b4
python - <<'PY'
lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
for i in range(1, 9):
    prev = chr(ord('a') + i - 1); cur = chr(ord('a') + i)
    lines.append(f"{cur}: &{cur} [" + ", ".join(["*" + prev] * 9) + "]")
open("bomb.yaml", "w").write("\n".join(lines) + "\n")
PY
pe "YAML alias bomb ($(wc -c <bomb.yaml) bytes)" swalab run bomb.yaml --out b5
pe "threshold --beta 1e308" swalab threshold --beta 1e308
pe "threshold --agents 10**30" swalab threshold --agents 1000000000000000000000000000000
pe "simulate --capacity 1e308" swalab simulate --capacity 1e308 --seeds 1 --lam 0.5 --out b6
pe "phase --steps 10**20" swalab phase --steps 100000000000000000000 --out b7
pe "equilibrium --lam 0.5 --capacity 1e-320" swalab equilibrium --lam 0.5 --capacity 1e-320
# LLM path
pe "simulate, dead endpoint" swalab --quiet simulate --backend openai --model x --base-url http://127.0.0.1:9/v1 --lam 0.5 --seeds 1 --steps 2 --out l1
pe "  report of it" swalab report l1
pe "invalid --base-url" swalab simulate --backend openai --model x --base-url localhost:8000/v1 --lam 0.5 --seeds 1 --steps 2 --out l2
pe "--set model.options.base_url=…" swalab --quiet run quick --set model.backend=openai --set model.name=x --set model.options.base_url=http://127.0.0.1:9/v1 --set seeds=1 --set 'grid.lam=[0.5]' --set game.steps=1 --set model.attempts=1 --out l3
# small ones
printf 'name: x\nlam: []\n' > emptylam.yaml; pe "lam: []" swalab run emptylam.yaml --out s1
printf 'name: x\nseeds: 1\nseeds: 2\n' > dup.yaml; pe "duplicate key" swalab run dup.yaml --out s2
printf 'name: \xff\xfe\n' > latin.yaml; pe "non-UTF-8 config" swalab run latin.yaml --out s3
pe "--set 'game=[1'" swalab run reference_model_based --set 'game=[1' --out s4
pe "swalab --version" swalab --version; echo "  stdout: $(cat o.txt)"
pe "swalab run (headline)" swalab --quiet run reference_model_based --set seeds=2 --out h1; grep -E "Where each|paper|consistent" o.txt | head -3
# one writer per store
swalab --quiet run severity_model_based --out tw >/dev/null 2>&1 & first=$!
sleep 3; pe "second writer on one store" swalab run severity_model_based --out tw; wait $first
echo "  first writer: exit $?, $(ls tw/cells | wc -l) of 252 cells"
# interruption: SIGINT and SIGTERM a few seconds into a 252-cell sweep
for sig in INT TERM; do
  rm -rf ir; swalab run severity_model_based --out ir >o.txt 2>e.txt & pid=$!
  sleep 3; t0=$(date +%s%N); kill -$sig $pid; wait $pid; rc=$?; t1=$(date +%s%N)
  echo "SIG$sig mid-run|$rc|$(tail -1 e.txt) [stopped in $(( (t1 - t0) / 1000000 )) ms, $(pgrep -f multiprocessing.spawn | wc -l) workers left]"
done
echo "(work in $work)"
