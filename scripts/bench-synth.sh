#!/usr/bin/env bash
# Benchmark of synth: seconds to render + encode + write one full-size 4896×3264 JPEG on ONE
# core (release build), per class and on average, against PIL merely re-encoding the same
# pixels as JPEG (what any Python generator would at least pay to write its photos).
#
#   scripts/bench-synth.sh [PHOTOS_PER_CLASS]      (default 2)
#
# Python: $PYTHON, else $BALLAST_PYTHON, else scripts/pyenv.sh scripts/requirements-bench.txt.
# Prints one line per measurement and a summary; take numbers on a quiet machine.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
per_class="${1:-2}"
cargo build --release --quiet -p ballast-synth --bin synth
synth="${CARGO_TARGET_DIR:-$root/target}/release/synth"
py="${PYTHON:-${BALLAST_PYTHON:-$("$root/scripts/pyenv.sh" "$root/scripts/requirements-bench.txt")}}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Run k asks for classes 1..k into the same folder: classes 1..k-1 are up to date and skipped,
# so the run renders exactly class k. `user` is CPU time, `wall` includes startup and the
# final syncfs.
echo "synth, 1 thread, 4896x3264 JPEG q90, $per_class photos per class:"
total=0
for k in 1 2 3 4 5; do
  t=$( { /usr/bin/time -f "%e %U" "$synth" --out "$work/photos" --classes "$k" \
          --per-class "$per_class" --threads 1 --quiet; } 2>&1 )
  awk -v k="$k" -v w="${t% *}" -v u="${t#* }" -v n="$per_class" \
      'BEGIN { printf "  class %d: %.3f s/photo wall, %.3f s/photo cpu\n", k, w/n, u/n }'
  total=$(awk -v a="$total" -v w="${t% *}" 'BEGIN { print a + w }')
done
avg=$(awk -v w="$total" -v n="$per_class" 'BEGIN { printf "%.3f", w/(5*n) }')
echo "  all classes: $avg s/photo wall (render + encode + write)"

"$py" - "$work/photos" "$avg" <<'PY'
import glob, io, sys, time
from PIL import Image
root, synth_s = sys.argv[1], float(sys.argv[2])
files = sorted(glob.glob(f"{root}/*/*.jpg"))
times = []
for f in files:
    im = Image.open(f).convert("RGB")
    im.load()
    t = time.perf_counter()
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    times.append(time.perf_counter() - t)
times.sort()
med = times[len(times) // 2]
print(f"PIL {Image.__version__}: JPEG encode only (q90) of the same photos: {med:.3f} s/photo (median of {len(files)})")
print(f"ratio synth (render+encode+write) / PIL (encode only): {synth_s / med:.2f}")
PY
