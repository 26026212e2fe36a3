#!/usr/bin/env bash
# ballast end to end on the built-in demo data set (the README's main command):
#   scripts/demo.sh                 # → demo-work/
# Builds the release binaries, renders 5 gradation classes of synthetic embankment photos with
# `synth`, then tiler → packer → trainer → scorer (eval on the val photos, which also fits the
# calibration and the novelty check, and scoring of held-out "field" photos with the synthetic
# class map, with a map per photo and one HTML report), and prints a summary table and the
# report's path.
# Rerunning reuses everything that is up to date. Settings (environment):
#   WORK=demo-work CLASSES=5 PER_CLASS=24 WIDTH=1224 HEIGHT=816 TILE=128 SIZE=64
#   EPOCHS=25 THREADS=(all cores) SEED=0; BATCH, OPTIMIZER, LR and RECIPE default to the
#   trainer's own defaults (its measured default recipe)
# The binaries come from $CARGO_TARGET_DIR/release (default target/release), built first; with
# BIN=DIR the binaries in DIR are used as they are and nothing is built.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-demo-work}
CLASSES=${CLASSES:-5}
PER_CLASS=${PER_CLASS:-24}
WIDTH=${WIDTH:-1224}        # a quarter of 4896×3264: the same scene at lower resolution,
HEIGHT=${HEIGHT:-816}
TILE=${TILE:-128}           # ...so a 128 px tile covers what a 512 px tile covers at full size
SIZE=${SIZE:-64}
EPOCHS=${EPOCHS:-25}
SEED=${SEED:-0}
TRAIN_ARGS=()
[ -n "${RECIPE:-}" ] && TRAIN_ARGS+=(--recipe "$RECIPE")
[ -n "${BATCH:-}" ] && TRAIN_ARGS+=(--batch "$BATCH")
[ -n "${OPTIMIZER:-}" ] && TRAIN_ARGS+=(--optimizer "$OPTIMIZER")
[ -n "${LR:-}" ] && TRAIN_ARGS+=(--lr "$LR")
THREADS_ARG=()
[ -n "${THREADS:-}" ] && THREADS_ARG=(--threads "$THREADS")
B=${BIN:-${CARGO_TARGET_DIR:-target}/release}

mkdir -p "$WORK"
: > "$WORK/demo-times.tsv"
stage() { # stage NAME CMD...: runs CMD, records its wall time
  local name=$1 t0 t1
  shift
  echo "== $name" >&2
  t0=$(date +%s%N)
  "$@"
  t1=$(date +%s%N)
  printf '%s\t%d\n' "$name" $(((t1 - t0) / 1000000)) >> "$WORK/demo-times.tsv"
}

if [ -z "${BIN:-}" ]; then
  stage build cargo build --release --locked --quiet --bins
fi
stage synth "$B/synth" --out "$WORK/photos" --classes "$CLASSES" --per-class "$PER_CLASS" \
  --width "$WIDTH" --height "$HEIGHT" --seed "$SEED" "${THREADS_ARG[@]}"
# Held-out field photos: same gradations, other random scenes, never seen in training.
"$B/synth" --out "$WORK/field" --classes "$CLASSES" --per-class 1 --width "$WIDTH" \
  --height "$HEIGHT" --seed $((SEED + 1000)) --quiet "${THREADS_ARG[@]}"
stage tiler "$B/tiler" --input "$WORK/photos" --out "$WORK/tiles" --size "$TILE" --grid \
  --seed "$SEED" "${THREADS_ARG[@]}"
stage packer "$B/packer" --tiles "$WORK/tiles" --out "$WORK/cache" --size "$SIZE" --seed "$SEED" \
  "${THREADS_ARG[@]}"
stage trainer "$B/trainer" --cache "$WORK/cache" --run "$WORK/runs/demo" --epochs "$EPOCHS" \
  "${TRAIN_ARGS[@]}" --seed "$SEED" --resume \
  --restart-if-changed "${THREADS_ARG[@]}"
stage eval "$B/scorer" eval --run "$WORK/runs/demo" --cache "$WORK/cache" --out "$WORK/eval" \
  "${THREADS_ARG[@]}" > "$WORK/eval-summary.txt"
stage score "$B/scorer" photos --run "$WORK/runs/demo" --class-map "$WORK/photos/class-map.toml" \
  --out "$WORK/field-scores.csv" --maps "$WORK/field-maps" --html "$WORK/field-report.html" \
  "$WORK/field" "${THREADS_ARG[@]}"

cat "$WORK/eval-summary.txt"
python3 - "$WORK" <<'PY'
import csv, json, sys
work = sys.argv[1]
secs = [l.rstrip("\n").split("\t") for l in open(f"{work}/demo-times.tsv")]
tiler = json.load(open(f"{work}/tiles/tiler.json"))
index = json.load(open(f"{work}/cache/index.json"))
metrics = [json.loads(l) for l in open(f"{work}/runs/demo/metrics.jsonl")]
report = json.load(open(f"{work}/eval/report.json"))
rows = [
    ("photos (train+val)", tiler["counts"]["photos"]),
    ("tiles", tiler["counts"]["tiles"]),
    ("shards", len(index["shards"])),
    ("train / val samples", f'{index["splits"]["train"]["samples"]} / {index["splits"]["val"]["samples"]}'),
    ("epochs", len(metrics)),
    ("val accuracy (tiles)", f'{100 * report["accuracy"]:.1f} %  (chance {100 / len(index["classes"]):.0f} %)'),
    ("val accuracy (photos)", f'{100 * report["per_photo"]["accuracy"]:.1f} %'),
    ("calibration: temperature, ECE before → after", f'{report["calibration"]["temperature"]:.3f}, {report["calibration"]["ece_before"]:.3f} → {report["calibration"]["ece_after"]:.3f}'),
    ("novelty check: val photos flagged", f'{report["novelty"]["val_photos_flagged"]} / {report["novelty"]["val_photos"]}'),
]
rows += [(f"seconds: {k}", f"{int(ms) / 1000:.1f}") for k, ms in secs]
print()
print("| ballast demo | |")
print("|---|---|")
for k, v in rows:
    print(f"| {k} | {v} |")
print()
print("Field photos (held out), with the synthetic class map:")
with open(f"{work}/field-scores.csv") as f:
    r = list(csv.DictReader(f))
w = max(len(row["photo"]) for row in r) if r else 5
print(f'{"photo":{w}} {"predicted":18} {"agree":>6} {"D50 mm":>7} {"flag":16} {"compaction":>10}')
for row in r:
    print(f'{row["photo"]:{w}} {row["predicted"]:18} {float(row["agreement"]):6.2f} '
          f'{row.get("d50_mm") or "":>7.7} {row.get("flag") or "":16} '
          f'{float(row.get("expected_compaction") or "nan"):10.2f} {row.get("unit", "")}')
print(f"\nOutputs under {work}/: tiles, cache, runs/demo (model, calibration.json, curves.svg, notes.md), eval (report.json, confusion.svg), field-scores.csv, field-maps (a map and a sieve curve per photo)")
print(f"Field report (open it in a browser): {work}/field-report.html")
PY
