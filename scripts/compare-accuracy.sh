#!/usr/bin/env bash
# Val accuracy of ballast and of the PyTorch reference (scripts/train_torch.py) after the same
# epochs, on the same cache, with the same network, optimiser, schedule and batch size, over
# several seeds (neither trainer can share the other's random streams, so single runs differ by
# luck). Prints a Markdown table: final and best val accuracy per seed, and their means.
#
#   scripts/compare-accuracy.sh CACHE [EPOCHS] [SEEDS]
#   OPTIMIZER=adamw LR=0.001 BATCH=64 THREADS=2 scripts/compare-accuracy.sh target/bench-trainer/cache-pipeline-64 20 "0 1 2"
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=$(cd "${1:?usage: $0 CACHE [EPOCHS] [SEEDS]}" && pwd)
epochs=${2:-20}
seeds=${3:-"0 1 2"}
OPTIMIZER=${OPTIMIZER:-sgd}
LR=${LR:-0.01}
BATCH=${BATCH:-64}
THREADS=${THREADS:-2}
OUT=${OUT:-$root/target/compare-accuracy}
PYTHON=${PYTHON:-$("$root/scripts/pyenv.sh" "$root/scripts/requirements-bench.txt")}
mkdir -p "$OUT"
cargo build --release -q -p ballast-trainer
size=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['size'])" "$cache/index.json")
rows=$OUT/rows.tsv
: > "$rows"
for seed in $seeds; do
  run=$OUT/ballast-$OPTIMIZER-seed$seed
  "$root/target/release/trainer" --cache "$cache" --run "$run" --epochs "$epochs" --batch "$BATCH" \
    --optimizer "$OPTIMIZER" --lr "$LR" --threads "$THREADS" --seed "$seed" --force --quiet
  OMP_WAIT_POLICY=PASSIVE "$PYTHON" "$root/scripts/train_torch.py" --cache "$cache" \
    --epochs "$epochs" --batch "$BATCH" --optimizer "$OPTIMIZER" --lr "$LR" --threads "$THREADS" \
    --seed "$seed" --size "$size" > "$OUT/torch-$OPTIMIZER-seed$seed.jsonl"
  python3 - "$run/metrics.jsonl" "$OUT/torch-$OPTIMIZER-seed$seed.jsonl" "$seed" >> "$rows" <<'PY'
import json, sys
b = [json.loads(l) for l in open(sys.argv[1])]
t = [json.loads(l) for l in open(sys.argv[2]) if '"epoch"' in l]
print("\t".join(map(str, [sys.argv[3], b[-1]["val_acc"], max(r["val_acc"] for r in b),
                          t[-1]["val_acc"], max(r["val_acc"] for r in t)])))
PY
done
python3 - "$rows" "$epochs" "$OPTIMIZER" "$LR" "$BATCH" "$THREADS" "$cache" <<'PY'
import sys, statistics as st
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
epochs, opt, lr, batch, threads, cache = sys.argv[2:8]
print(f"\nVal accuracy after {epochs} epochs ({opt}, lr {lr}, batch {batch}, {threads} threads, cosine), cache {cache}\n")
print("| seed | ballast final | ballast best | PyTorch final | PyTorch best |")
print("|---:|---:|---:|---:|---:|")
for r in rows:
    print(f"| {r[0]} | " + " | ".join(f"{100*float(x):.1f} %" for x in r[1:]) + " |")
means = [st.mean(float(r[i]) for r in rows) for i in range(1, 5)]
print("| mean | " + " | ".join(f"{100*m:.1f} %" for m in means) + " |")
PY
