#!/usr/bin/env bash
# Layer-level benchmark of the report CNN's training step (forward + backward + momentum SGD of
# the conv stack and FC head, random data) for ballast's CPU kernels, candle's plain ops (the
# reference path) and PyTorch, in the same run, at batch 64/256, 32×32/64×64, 1/2 threads.
# Each cell runs in its own process so peak RSS is per cell. Prints a Markdown table.
#
#   scripts/bench-kernels.sh                    # full table
#   STEPS=10 SIZES=32 BATCHES=64 THREADS=1 scripts/bench-kernels.sh   # a quick cell
#   CANDLE=0 scripts/bench-kernels.sh           # skip the (slow) plain-candle column
#
# Python comes from $PYTHON (or $BALLAST_PYTHON), else scripts/pyenv.sh builds a venv from
# scripts/requirements-bench.txt. OMP_WAIT_POLICY=PASSIVE is set for torch (MEASUREMENTS.md).
# The candle side runs with CANDLE_BARRIER_POOL_SPIN_LIMIT=0 unless set: candle 0.11's own
# worker pool for element-wise ops otherwise spins 25 000 rounds after each op, stealing a core
# from the next kernel on small machines (the analogue of torch's OMP_WAIT_POLICY=PASSIVE).
# Set CANDLE_BARRIER_POOL_SPIN_LIMIT=25000 to time candle's default.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

STEPS=${STEPS:-20}
WARMUP=${WARMUP:-3}
SIZES=${SIZES:-"32 64"}
BATCHES=${BATCHES:-"64 256"}
THREADS=${THREADS:-"1 2"}
CANDLE=${CANDLE:-1}
CANDLE_STEPS=${CANDLE_STEPS:-3}
OUT=${OUT:-"$root/target/bench-kernels"}

PY=${PYTHON:-${BALLAST_PYTHON:-}}
if [ -z "$PY" ]; then
  PY=$(scripts/pyenv.sh scripts/requirements-bench.txt)
fi

echo "building bench_layers (release)..." >&2
cargo build --quiet --release -p ballast-kernels --example bench_layers
BIN="$root/target/release/examples/bench_layers"
mkdir -p "$OUT"
results="$OUT/results.jsonl"
: > "$results"

export OMP_WAIT_POLICY=PASSIVE
export CANDLE_BARRIER_POOL_SPIN_LIMIT=${CANDLE_BARRIER_POOL_SPIN_LIMIT:-0}
echo "OMP_WAIT_POLICY=$OMP_WAIT_POLICY CANDLE_BARRIER_POOL_SPIN_LIMIT=$CANDLE_BARRIER_POOL_SPIN_LIMIT" >&2
for size in $SIZES; do
  for batch in $BATCHES; do
    for t in $THREADS; do
      echo "size $size batch $batch threads $t" >&2
      OMP_NUM_THREADS=$t "$PY" scripts/bench_kernels_torch.py \
        --batch "$batch" --size "$size" --threads "$t" --steps "$STEPS" --warmup "$WARMUP" >> "$results"
      RAYON_NUM_THREADS=$t "$BIN" --impl fused --batch "$batch" --size "$size" \
        --steps "$STEPS" --warmup "$WARMUP" --phases >> "$results"
      if [ "$CANDLE" = 1 ]; then
        RAYON_NUM_THREADS=$t "$BIN" --impl reference --batch "$batch" --size "$size" \
          --steps "$CANDLE_STEPS" --warmup 1 >> "$results"
      fi
    done
  done
done

"$PY" - "$results" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cells = {}
for r in rows:
    cells.setdefault((r["size"], r["batch"], r["threads"]), {})[r["impl"]] = r
print("| input | batch | threads | PyTorch ms/step | ballast ms/step | ballast / PyTorch "
      "| candle ms/step | candle / PyTorch | peak RSS MiB (PyTorch / ballast / candle) |")
print("|---|---|---|---|---|---|---|---|---|")
for (size, batch, t) in sorted(cells):
    c = cells[(size, batch, t)]
    pt, bl, cd = c.get("pytorch"), c.get("ballast"), c.get("candle")
    f = lambda r: f"{r['ms_median']:.1f}" if r else "—"
    ratio = lambda r: f"{r['ms_median'] / pt['ms_median']:.2f}×" if r and pt else "—"
    rss = " / ".join(f"{r['peak_rss_mib']:.0f}" if r else "—" for r in (pt, bl, cd))
    print(f"| {size}×{size} | {batch} | {t} | {f(pt)} | {f(bl)} | {ratio(bl)} | {f(cd)} "
          f"| {ratio(cd)} | {rss} |")
EOF
