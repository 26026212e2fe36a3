#!/usr/bin/env bash
# Benchmarks `scorer photos` end to end (decode + EXIF + windows + preprocessing + model) on
# full-size 4896x3264 photos, against a plain PyTorch/PIL scorer (scripts/bench_scorer_torch.py)
# doing the same work with the same weights, in the same run. Prints a Markdown table.
#
#   scripts/bench-scorer.sh
#
# What it does:
#   1. builds the release binaries (synth, tiler, packer, trainer, scorer);
#   2. renders the photos to score: PHOTOS full-size photos with synth (4 by default);
#   3. trains (or reuses) a small default-model run at 64x64: a 1-epoch run on a cache made by
#      synth -> tiler (--size 500 --grid) -> packer (--size 64) from smaller training photos, so
#      the scorer cuts 500 px grid windows: 9x6 = 54 tiles per full photo;
#   4. times `scorer photos` on one photo (median of RUNS runs) and on all photos (photos/s),
#      at THREADS threads, and the same with PyTorch when PYTHON has torch.
# Target (issue): one full-size photo in < 1 s on 2 cores with the default model at 64x64.
#
# Environment:
#   THREADS=2  RUNS=5  PHOTOS=4  OUT=target/bench-scorer
#   PYTHON     interpreter with torch, pillow, safetensors, numpy (default: scripts/pyenv.sh
#              scripts/requirements-bench.txt); NO_TORCH=1 skips the comparison
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

THREADS=${THREADS:-2}
RUNS=${RUNS:-5}
PHOTOS=${PHOTOS:-4}
OUT=${OUT:-$root/target/bench-scorer}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
BIN=$root/target/release

echo "building release binaries..." >&2
cargo build --release -q -p ballast-synth -p ballast-tiler -p ballast-packer -p ballast-trainer -p ballast-scorer

# 2. Photos to score: full size, two classes.
field=$OUT/field
if [ ! -f "$field/.done-$PHOTOS" ]; then
  rm -rf "$field"
  per_class=$(( (PHOTOS + 1) / 2 ))
  "$BIN/synth" --out "$field" --classes 2 --per-class "$per_class" --seed 1 -q
  touch "$field/.done-$PHOTOS"
fi
mapfile -t photos < <(find "$field" -name '*.jpg' | sort | head -n "$PHOTOS")
one=${photos[0]}

# 3. A small run of the default model at 64x64 on 500 px tiles.
run=$OUT/run
if [ ! -f "$run/model.safetensors" ]; then
  "$BIN/synth" --out "$OUT/train-photos" --classes 2 --per-class 10 --width 1500 --height 1000 -q
  "$BIN/tiler" --input "$OUT/train-photos" --out "$OUT/tiles" --size 500 --grid -q
  "$BIN/packer" --tiles "$OUT/tiles" --out "$OUT/cache" --size 64 -q
  "$BIN/trainer" --cache "$OUT/cache" --run "$run" --epochs 1 -q
fi
# Calibration and the novelty check (RUN/calibration.json), as a user runs it before scoring.
"$BIN/scorer" eval --run "$run" --cache "$OUT/cache" -q > /dev/null

now() { date +%s.%N; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f\n", a / b }'; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# 4. Timings. Each run is a fresh process: load the run, decode, cut, preprocess, score, write.
time_cmd() { # prints seconds
  local t0 t1
  t0=$(now); "$@" > /dev/null; t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }'
}
echo "timing scorer photos on one photo ($RUNS runs, $THREADS threads)..." >&2
one_s=$(for _ in $(seq "$RUNS"); do
  time_cmd "$BIN/scorer" photos --run "$run" --threads "$THREADS" -q --out "$OUT/one.csv" "$one"
done | median)
echo "timing scorer photos on one photo with the class map's curves, --maps and --html..." >&2
maps_s=$(for _ in $(seq "$RUNS"); do
  time_cmd "$BIN/scorer" photos --run "$run" --threads "$THREADS" -q --out "$OUT/one-maps.csv" \
    --class-map "$OUT/train-photos/class-map.toml" --maps "$OUT/maps" --html "$OUT/one.html" "$one"
done | median)
echo "timing scorer photos on $PHOTOS photos..." >&2
batch_s=$(for _ in $(seq 3); do
  time_cmd "$BIN/scorer" photos --run "$run" --threads "$THREADS" -q --out "$OUT/all.csv" "${photos[@]}"
done | median)
# Where one photo's time goes (debug log of the scorer).
breakdown=$("$BIN/scorer" photos --run "$run" --threads "$THREADS" -v --out "$OUT/one.csv" \
  --per-tile "$OUT/one-tiles.jsonl" "$one" 2>&1 | grep -o 'hash+decode.*' | head -n1 || true)

torch_one="n/a"; torch_batch="n/a"; ratio_one="n/a"; ratio_batch="n/a"; agree="n/a"
torch_maps="n/a"; ratio_maps="n/a"
if [ -z "${NO_TORCH:-}" ]; then
  if [ -z "${PYTHON:-}" ]; then
    PYTHON=$("$root/scripts/pyenv.sh" "$root/scripts/requirements-bench.txt")
  fi
  if "$PYTHON" -c "import torch, PIL, safetensors, numpy" 2> /dev/null; then
    echo "timing the PyTorch/PIL scorer..." >&2
    torch_json=$("$PYTHON" "$root/scripts/bench_scorer_torch.py" --run "$run" --threads "$THREADS" \
      --runs "$RUNS" --tile 500 --compare "$OUT/one-tiles.jsonl" --map-out "$OUT/pil-map.png" \
      "${photos[@]}")
    torch_one=$(echo "$torch_json" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["one_photo_s"])')
    torch_batch=$(echo "$torch_json" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["batch_s"])')
    torch_maps=$(echo "$torch_json" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["one_photo_map_s"])')
    ratio_maps=$(div "$maps_s" "$torch_maps")
    agree=$(echo "$torch_json" | "$PYTHON" -c 'import json,sys; print("%.2g" % json.load(sys.stdin)["max_abs_diff_first_photo"])')
    ratio_one=$(div "$one_s" "$torch_one")
    ratio_batch=$(div "$batch_s" "$torch_batch")
  else
    echo "PYTHON=$PYTHON lacks torch/pillow/safetensors/numpy: no PyTorch comparison" >&2
  fi
fi

fmt() { [ "$1" = "n/a" ] && echo "n/a" || printf "%.3f" "$1"; }
rate() { [ "$1" = "n/a" ] && echo "n/a" || printf "%.2f" "$(div "$PHOTOS" "$1")"; }
cat <<EOT

## scorer photos: full-size photos (4896x3264, 54 windows of 500 px -> 64x64, default model)

$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $THREADS threads, median of $RUNS (one photo) / 3 (batch) fresh processes

| | ballast scorer | PyTorch + PIL | ratio (ballast / PyTorch) |
|---|---|---|---|
| one photo, end to end (s) | $(fmt "$one_s") | $(fmt "$torch_one") | $(fmt "$ratio_one") |
| one photo with a map (ballast: + curve SVG and HTML page; PIL: map PNG) (s) | $(fmt "$maps_s") | $(fmt "$torch_maps") | $(fmt "$ratio_maps") |
| $PHOTOS photos, batch (s) | $(fmt "$batch_s") | $(fmt "$torch_batch") | $(fmt "$ratio_batch") |
| photos/s, batch | $(rate "$batch_s") | $(rate "$torch_batch") | |

One photo in the scorer: ${breakdown:-n/a}. Max |p_ballast - p_torch| over the first photo's
tiles: $agree (different JPEG decoders: image-rs vs libjpeg-turbo).

Commands: \`scorer photos --run $run --threads $THREADS --out one.csv PHOTO\` (and all $PHOTOS
photos in one call); \`scripts/bench_scorer_torch.py --run RUN --threads $THREADS --tile 500 PHOTOS\`.
Targets: one photo < 1 s on 2 cores; with maps and curves < 0.5 s. All timings use a run
evaluated first (calibrated probabilities and the novelty check, as users run it).
EOT
