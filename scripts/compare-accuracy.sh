#!/usr/bin/env bash
# Val accuracy of ballast and of the PyTorch reference (scripts/train_torch.py), over several
# seeds (neither trainer can share the other's random streams, so single runs differ by luck).
#
# One recipe, both trainers, the same cache, network, optimiser, schedule and batch size:
#   scripts/compare-accuracy.sh CACHE [EPOCHS] [SEEDS]
#   OPTIMIZER=adamw LR=0.001 BATCH=64 THREADS=2 scripts/compare-accuracy.sh target/bench-trainer/cache-pipeline-64 20 "0 1 2"
#
# The default-recipe table (issue 12): ballast with ALL its defaults against the three recipes
# users reached for before (the old defaults SGD lr 0.01 batch 64; SGD lr 0.01 batch 16; AdamW
# lr 0.001 batch 32), each at the default run's epochs, and PyTorch with the best of those three
# on each cache; plus the wall time of a default run against one with the old defaults.
#   scripts/compare-accuracy.sh --defaults [CACHE...]
# Without CACHEs it first builds four synth caches (synth → tiler → packer) under
# $OUT/caches: ≈1 000, ≈5 000 and ≈20 000 train samples, 32×32 and 64×64, 2, 5 and 6 classes.
# SEEDS="0 1 2" THREADS=2 OUT=target/compare-accuracy PYTHON=... (else scripts/pyenv.sh makes one)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
THREADS=${THREADS:-2}
OUT=${OUT:-$root/target/compare-accuracy}
B=${BIN:-${CARGO_TARGET_DIR:-$root/target}/release}
mkdir -p "$OUT"
if [ -z "${BIN:-}" ]; then
  cargo build --release -q --locked -p ballast-trainer -p ballast-tiler -p ballast-packer -p ballast-synth
fi
PYTHON=${PYTHON:-$("$root/scripts/pyenv.sh" "$root/scripts/requirements-bench.txt")}

# accs METRICS_JSONL: "final<TAB>kept": the last epoch's val accuracy, and that of the epoch with
# the lowest val loss (the weights ballast keeps in model.safetensors and the scorer evaluates).
accs() {
  python3 - "$1" <<'PY'
import json, sys
m = [json.loads(l) for l in open(sys.argv[1]) if '"val_acc"' in l]
kept = min(m, key=lambda r: (r["val_loss"], r["epoch"]))
print(f"{m[-1]['val_acc']}\t{kept['val_acc']}")
PY
}
now_ms() { date +%s%3N; }

# build_cache NAME CLASSES PHOTOS_PER_CLASS WINDOWS_PER_PHOTO SIZE: synth photos of 1224×816 (a
# quarter of the report's 4896×3264), random 128 px windows, packed to SIZE.
build_cache() {
  local name=$1 classes=$2 per_class=$3 windows=$4 size=$5 d=$OUT/caches/$1
  mkdir -p "$d"
  "$B/synth" --out "$d/photos" --classes "$classes" --per-class "$per_class" --width 1224 \
    --height 816 --seed 7 --threads "$THREADS" --quiet
  "$B/tiler" --input "$d/photos" --out "$d/tiles" --size 128 --per-photo "$windows" \
    --threads "$THREADS" --quiet
  "$B/packer" --tiles "$d/tiles" --out "$d/cache" --size "$size" --threads "$THREADS" --quiet
  echo "$d/cache"
}

# ballast_run CACHE RUN SEED FLAGS...: trains with --force, prints "final<TAB>kept<TAB>wall_s".
ballast_run() {
  local cache=$1 run=$2 seed=$3 t0 t1
  shift 3
  t0=$(now_ms)
  "$B/trainer" --cache "$cache" --run "$run" --seed "$seed" --threads "$THREADS" --force --quiet "$@"
  t1=$(now_ms)
  printf '%s\t%s\n' "$(accs "$run/metrics.jsonl")" "$(((t1 - t0)))e-3"
}

one_recipe() {
  local cache epochs seeds opt=${OPTIMIZER:-sgd} lr=${LR:-0.01} batch=${BATCH:-64}
  cache=$(cd "$1" && pwd)
  epochs=${2:-20}
  seeds=${3:-"0 1 2"}
  local size rows=$OUT/rows.tsv
  size=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['size'])" "$cache/index.json")
  : > "$rows"
  for seed in $seeds; do
    run=$OUT/ballast-$opt-seed$seed
    "$B/trainer" --cache "$cache" --run "$run" --epochs "$epochs" --batch "$batch" \
      --optimizer "$opt" --lr "$lr" --flips false --threads "$THREADS" --seed "$seed" --force --quiet
    OMP_WAIT_POLICY=PASSIVE "$PYTHON" "$root/scripts/train_torch.py" --cache "$cache" \
      --epochs "$epochs" --batch "$batch" --optimizer "$opt" --lr "$lr" --threads "$THREADS" \
      --seed "$seed" --size "$size" > "$OUT/torch-$opt-seed$seed.jsonl"
    python3 - "$run/metrics.jsonl" "$OUT/torch-$opt-seed$seed.jsonl" "$seed" >> "$rows" <<'PY'
import json, sys
b = [json.loads(l) for l in open(sys.argv[1])]
t = [json.loads(l) for l in open(sys.argv[2]) if '"epoch"' in l]
print("\t".join(map(str, [sys.argv[3], b[-1]["val_acc"], max(r["val_acc"] for r in b),
                          t[-1]["val_acc"], max(r["val_acc"] for r in t)])))
PY
  done
  python3 - "$rows" "$epochs" "$opt" "$lr" "$batch" "$THREADS" "$cache" <<'PY'
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
}

# The three recipes the defaults must match or beat (issue 12's table), as trainer flags, as
# users ran them: without the flips and quarter turns the default recipe adds.
RECIPES=(
  "old-defaults|--optimizer sgd --lr 0.01 --batch 64 --flips false"
  "sgd-b16|--optimizer sgd --lr 0.01 --batch 16 --flips false"
  "adamw-b32|--optimizer adamw --lr 0.001 --batch 32 --flips false"
)

defaults_table() {
  local seeds=${SEEDS:-"0 1 2"} caches=("$@") rows=$OUT/defaults.tsv
  if [ ${#caches[@]} -eq 0 ]; then
    caches=(
      "$(build_cache small-2c-32 2 8 80 32)"
      "$(build_cache small-6c-64 6 5 42 64)"
      "$(build_cache mid-5c-64 5 16 80 64)"
      "$(build_cache large-6c-32 6 30 140 32)"
    )
  fi
  : > "$rows"
  for cache in "${caches[@]}"; do
    cache=$(cd "$cache" && pwd)
    local tag size epochs
    tag=$(basename "$(dirname "$cache")")-$(basename "$cache")
    size=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['size'])" "$cache/index.json")
    for seed in $seeds; do
      r=$OUT/runs/$tag/defaults-s$seed
      res=$(ballast_run "$cache" "$r" "$seed")
      epochs=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["spec"]["epochs"])' "$r/config.json")
      printf '%s\tdefaults\t%s\t%s\t%s\n' "$cache" "$seed" "$res" "$epochs" >> "$rows"
      for recipe in "${RECIPES[@]}"; do
        name=${recipe%%|*}
        # shellcheck disable=SC2086
        printf '%s\t%s\t%s\t%s\t%s\n' "$cache" "$name" "$seed" \
          "$(ballast_run "$cache" "$OUT/runs/$tag/$name-s$seed" "$seed" --epochs "$epochs" ${recipe#*|})" \
          "$epochs" >> "$rows"
      done
    done
    # PyTorch with the recipe that did best in ballast on this cache (mean kept-model accuracy).
    best=$(python3 - "$rows" "$cache" <<'PY'
import sys, statistics as st
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.startswith(sys.argv[2] + "\t")]
names = sorted({r[1] for r in rows} - {"defaults", "pytorch"})
print(max(names, key=lambda n: st.mean(float(r[4]) for r in rows if r[1] == n)))
PY
)
    for recipe in "${RECIPES[@]}"; do
      [ "${recipe%%|*}" = "$best" ] || continue
      read -r _ opt _ lr _ batch _ <<< "${recipe#*|}"
      for seed in $seeds; do
        t0=$(now_ms)
        OMP_WAIT_POLICY=PASSIVE "$PYTHON" "$root/scripts/train_torch.py" --cache "$cache" \
          --epochs "$epochs" --batch "$batch" --optimizer "$opt" --lr "$lr" --threads "$THREADS" \
          --seed "$seed" --size "$size" > "$OUT/runs/$tag/torch-$best-s$seed.jsonl"
        t1=$(now_ms)
        printf '%s\tpytorch\t%s\t%s\t%s\t%s\t%s\n' "$cache" "$seed" \
          "$(accs "$OUT/runs/$tag/torch-$best-s$seed.jsonl")" "$(((t1 - t0)))e-3" "$epochs" \
          "$best" >> "$rows"
      done
    done
  done
  python3 "$root/scripts/defaults_table.py" "$rows" "$THREADS"
}

if [ "${1:-}" = "--defaults" ]; then
  shift
  defaults_table "$@"
else
  one_recipe "${1:?usage: $0 CACHE [EPOCHS] [SEEDS] | $0 --defaults [CACHE...]}" "${2:-}" "${3:-}"
fi
