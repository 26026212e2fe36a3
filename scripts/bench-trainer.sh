#!/usr/bin/env bash
# Benchmarks ballast's trainer against PyTorch (scripts/train_torch.py) on the same cache, the
# same model, batch size and thread count, in the same run. Prints a Markdown table: epoch
# seconds (median over the epochs after the first), samples/s, the ratio ballast/PyTorch (lower
# is better; the target is <= 1.0 at 64x64, batch 64, 2 threads), cache load time, val accuracy
# after the same epochs, and peak RSS (GNU time).
#
#   scripts/bench-trainer.sh [CACHE_64 [CACHE_32]]
#
# Without caches it makes them: with the synth -> tiler -> packer binaries when they are built
# (target/release), else with `trainer synth-cache` (oriented noisy stripes).
# Environment:
#   PYTHON             interpreter with torch + safetensors (default: scripts/pyenv.sh
#                      scripts/requirements-bench.txt)
#   EPOCHS=4           epochs per run (the first is excluded from the timing median)
#   THREADS="1 2"      thread counts;  BATCHES="64 256" batch sizes;  SIZES="64 32"
#   CLASSES=5 PER_CLASS=1000 VAL_PER_CLASS=200   synthetic cache size (fallback caches)
#   PHOTOS_PER_CLASS=25 TILES_PER_PHOTO=40       synth/tiler cache size (pipeline caches)
#   OUT=target/bench-trainer                     where caches, runs and logs go
#   LR=0.01 EXTRA_ARGS=""                        passed to both trainers (EXTRA to ballast only)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

EPOCHS=${EPOCHS:-4}
THREADS=${THREADS:-"1 2"}
BATCHES=${BATCHES:-"64 256"}
SIZES=${SIZES:-"64 32"}
CLASSES=${CLASSES:-5}
PER_CLASS=${PER_CLASS:-1000}
VAL_PER_CLASS=${VAL_PER_CLASS:-200}
PHOTOS_PER_CLASS=${PHOTOS_PER_CLASS:-25}
TILES_PER_PHOTO=${TILES_PER_PHOTO:-40}
LR=${LR:-0.01}
EXTRA_ARGS=${EXTRA_ARGS:-}
OUT=${OUT:-$root/target/bench-trainer}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

if [ -z "${PYTHON:-}" ]; then
  PYTHON=$("$root/scripts/pyenv.sh" "$root/scripts/requirements-bench.txt")
fi
"$PYTHON" -c "import torch, safetensors" || { echo "PYTHON=$PYTHON lacks torch/safetensors" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "GNU time (/usr/bin/time) is needed for peak RSS" >&2; exit 1; }

echo "building release binaries..." >&2
cargo build --release -q -p ballast-trainer
TRAINER="$root/target/release/trainer"

declare -A CACHE
if [ $# -ge 1 ]; then CACHE[64]=$(cd "$1" && pwd); fi
if [ $# -ge 2 ]; then CACHE[32]=$(cd "$2" && pwd); fi

# Caches from the real pipeline when its binaries exist (5 default synth classes).
pipeline_cache() {
  local size=$1 dest=$OUT/cache-pipeline-$size
  local bin=$root/target/release
  [ -x "$bin/synth" ] && [ -x "$bin/tiler" ] && [ -x "$bin/packer" ] || return 1
  if [ ! -f "$OUT/photos/.done" ]; then
    "$bin/synth" --out "$OUT/photos" --classes "$CLASSES" --per-class "$PHOTOS_PER_CLASS" >&2 || return 1
    touch "$OUT/photos/.done"
  fi
  if [ ! -f "$OUT/tiles/tiler.json" ]; then
    "$bin/tiler" --input "$OUT/photos" --out "$OUT/tiles" --size 500 --per-photo "$TILES_PER_PHOTO" >&2 || return 1
  fi
  "$bin/packer" --tiles "$OUT/tiles" --out "$dest" --size "$size" >&2 || return 1
  echo "$dest"
}

for size in $SIZES; do
  if [ -z "${CACHE[$size]:-}" ]; then
    if c=$(pipeline_cache "$size"); then
      CACHE[$size]=$c
      echo "cache $size: synth -> tiler -> packer ($c)" >&2
    else
      c=$OUT/cache-synthetic-$size
      if [ ! -f "$c/index.json" ]; then
        "$TRAINER" synth-cache --out "$c" --size "$size" --classes "$CLASSES" \
          --train-per-class "$PER_CLASS" --val-per-class "$VAL_PER_CLASS" --shards 4
      fi
      CACHE[$size]=$c
      echo "cache $size: trainer synth-cache ($c)" >&2
    fi
  fi
done

results=$OUT/results.jsonl
: > "$results"
for size in $SIZES; do
  cache=${CACHE[$size]}
  for t in $THREADS; do
    for b in $BATCHES; do
      tag=s$size-t$t-b$b
      run=$OUT/runs/ballast-$tag
      echo "== $tag: ballast" >&2
      /usr/bin/time -f "%M" -o "$OUT/rss-ballast-$tag" \
        env -u RAYON_NUM_THREADS "$TRAINER" --cache "$cache" --run "$run" --epochs "$EPOCHS" \
        --batch "$b" --threads "$t" --optimizer sgd --lr "$LR" --flips false --seed 0 --force $EXTRA_ARGS \
        2> "$OUT/log-ballast-$tag.txt" || { tail -5 "$OUT/log-ballast-$tag.txt" >&2; exit 1; }
      echo "== $tag: pytorch" >&2
      OMP_WAIT_POLICY=PASSIVE /usr/bin/time -f "%M" -o "$OUT/rss-torch-$tag" \
        "$PYTHON" "$root/scripts/train_torch.py" --cache "$cache" --epochs "$EPOCHS" \
        --batch "$b" --threads "$t" --lr "$LR" --size "$size" \
        > "$OUT/torch-$tag.jsonl" 2> "$OUT/log-torch-$tag.txt" || { tail -5 "$OUT/log-torch-$tag.txt" >&2; exit 1; }
      "$PYTHON" - "$size" "$t" "$b" "$run" "$OUT" "$tag" >> "$results" <<'EOF'
import json, re, statistics, sys
size, t, b, run, out, tag = sys.argv[1:7]
def med(v):
    return statistics.median(v) if v else float("nan")
bm = [json.loads(l) for l in open(f"{run}/metrics.jsonl")]
# Timings live in log.jsonl (metrics.jsonl holds only the deterministic results).
timing = {r["epoch"]: r for r in map(json.loads, open(f"{run}/log.jsonl")) if r.get("event") == "epoch"}
bm = [{**r, **timing[r["epoch"]]} for r in bm]
tm = [json.loads(l) for l in open(f"{out}/torch-{tag}.jsonl")]
tload = next(r for r in tm if r.get("event") == "load")
tm = [r for r in tm if "epoch" in r]
log = open(f"{out}/log-ballast-{tag}.txt").read()
m = re.search(r"onto \S+ in ([0-9.]+) s", log)
later = lambda rows: rows[1:] if len(rows) > 1 else rows
print(json.dumps({
    "size": int(size), "threads": int(t), "batch": int(b),
    "ballast_epoch_s": med([r["train_seconds"] for r in later(bm)]),
    "torch_epoch_s": med([r["seconds"] for r in later(tm)]),
    "ballast_sps": med([r["samples_per_s"] for r in later(bm)]),
    "torch_sps": med([r["samples_per_s"] for r in later(tm)]),
    "ballast_val_acc": bm[-1]["val_acc"], "torch_val_acc": tm[-1]["val_acc"],
    "ballast_load_s": float(m.group(1)) if m else None, "torch_load_s": tload["seconds"],
    "ballast_rss_mb": int(open(f"{out}/rss-ballast-{tag}").read().split()[-1]) / 1024,
    "torch_rss_mb": int(open(f"{out}/rss-torch-{tag}").read().split()[-1]) / 1024,
    "h2d_image_bytes_per_epoch": max(r["h2d_image_bytes"] or 0 for r in bm),
    "epochs": len(bm), "train_samples": tload["train"],
}))
EOF
    done
  done
done

"$PYTHON" - "$results" "$EPOCHS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"\nTrainer benchmark: {sys.argv[2]} epochs; epoch time = training only, median of epochs 2..N; "
      "ratio = ballast / PyTorch (lower is better).\n")
print("| size | threads | batch | ballast s/epoch | PyTorch s/epoch | ratio | ballast samples/s | "
      "PyTorch samples/s | ballast val acc | PyTorch val acc | ballast load s | PyTorch load s | "
      "ballast RSS MB | PyTorch RSS MB | h2d image bytes/epoch |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    ratio = r["ballast_epoch_s"] / r["torch_epoch_s"] if r["torch_epoch_s"] else float("nan")
    load = "-" if r["ballast_load_s"] is None else f"{r['ballast_load_s']:.2f}"
    print(f"| {r['size']} | {r['threads']} | {r['batch']} | {r['ballast_epoch_s']:.2f} | "
          f"{r['torch_epoch_s']:.2f} | {ratio:.2f}x | {r['ballast_sps']:.0f} | {r['torch_sps']:.0f} | "
          f"{100*r['ballast_val_acc']:.1f} % | {100*r['torch_val_acc']:.1f} % | {load} | "
          f"{r['torch_load_s']:.2f} | {r['ballast_rss_mb']:.0f} | {r['torch_rss_mb']:.0f} | "
          f"{r['h2d_image_bytes_per_epoch']} |")
print(f"\n{rows[0]['train_samples'] if rows else 0} training samples per epoch. Raw rows: {sys.argv[1]}")
EOF
