#!/usr/bin/env bash
# Benchmarks ballast's tiler on full-size synth photos, in one run, against
#   (a) merely decoding the same photos (the tiler's own read + hash + decode path, same threads),
#   (b) a plain Python/PIL tiler doing the same job: the same windows (read from the tiler's
#       manifest), PNG tiles, one worker process per thread (scripts/bench_tiler_pil.py).
# Prints a Markdown table (date, machine, command) to paste into BENCHMARKS.md.
#
#   scripts/bench-tiler.sh                 # 8 photos (2 classes × 4), 40 random 500² tiles each
#   THREADS=2 REPEATS=5 PIL_LEVELS="1 6" scripts/bench-tiler.sh
#
# Settings (environment): THREADS (2), SIZE (500), PER_PHOTO (40), CLASSES (2), PER_CLASS (4),
# REPEATS (3; medians are reported), PIL_LEVELS ("1 6": PIL compress_level values to run),
# BENCH_DIR (target/bench-tiler; photos are rendered once and cached there), PYTHON (else
# scripts/pyenv.sh scripts/requirements-bench.txt), GNU_TIME (/usr/bin/time).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
THREADS=${THREADS:-2}
SIZE=${SIZE:-500}
PER_PHOTO=${PER_PHOTO:-40}
CLASSES=${CLASSES:-2}
PER_CLASS=${PER_CLASS:-4}
REPEATS=${REPEATS:-3}
PIL_LEVELS=${PIL_LEVELS:-"1 6"}
work=${BENCH_DIR:-$root/target/bench-tiler}
gnu_time=${GNU_TIME:-/usr/bin/time}

die() { echo "error: $*" >&2; exit 1; }

"$gnu_time" -f "%e %M" -o /dev/null true 2>/dev/null \
  || die "GNU time is needed for wall time and peak RSS ($gnu_time; apt-get install time, or set GNU_TIME)"

echo "building release binaries..." >&2
(cd "$root" && cargo build --release --quiet -p ballast-tiler) || die "cannot build the tiler"
tiler=$root/target/release/tiler
synth=$root/target/release/synth
if ! (cd "$root" && cargo build --release --quiet -p ballast-synth) || [ ! -x "$synth" ]; then
  die "synth (the photo renderer) does not build yet; it renders the benchmark photos"
fi

mkdir -p "$work"
photos=$work/photos-${CLASSES}x${PER_CLASS}
want=$((CLASSES * PER_CLASS))
if [ ! -f "$photos/.complete" ]; then
  echo "rendering $want full-size photos with synth into $photos (once)..." >&2
  rm -rf "$photos"
  if ! "$synth" --out "$photos" --classes "$CLASSES" --per-class "$PER_CLASS" --quiet; then
    die "synth failed to render the photos (is synth built yet? target/release/synth)"
  fi
  got=$(find "$photos" -name '*.jpg' | wc -l)
  [ "$got" -eq "$want" ] || die "synth wrote $got photos, expected $want"
  touch "$photos/.complete"
fi

py=${PYTHON:-$("$root/scripts/pyenv.sh" "$root/scripts/requirements-bench.txt")}
"$py" -c 'import PIL' 2>/dev/null || die "$py has no Pillow (pip install -r scripts/requirements-bench.txt)"

# Everyone reads the photos from a warm page cache.
find "$photos" -name '*.jpg' -exec cat {} + > /dev/null

# measure NAME CMD...: runs CMD under GNU time, appends "wall rss_kb cpu_s" to $work/NAME.times
# (cpu = user + system time of the process and its waited-for children: on a shared machine
# CPU seconds are steadier than wall seconds).
measure() {
  local name=$1
  shift
  if ! "$gnu_time" -f "%e %M %U %S" -o "$work/time.txt" "$@" > "$work/stdout.txt" 2> "$work/stderr.txt"; then
    cat "$work/stderr.txt" >&2
    die "$name failed: $*"
  fi
  awk '{print $1, $2, $3 + $4}' "$work/time.txt" >> "$work/$name.times"
}

rm -f "$work"/*.times
for r in $(seq "$REPEATS"); do
  echo "round $r/$REPEATS..." >&2
  measure decode "$tiler" --input "$photos" --out "$work/unused" --threads "$THREADS" \
    --decode-only --quiet
  cp "$work/stdout.txt" "$work/decode.json"
  rm -rf "$work/tiles"
  measure tiler "$tiler" --input "$photos" --out "$work/tiles" --per-photo "$PER_PHOTO" \
    --size "$SIZE" --threads "$THREADS" --png-compression fast --quiet
  for level in $PIL_LEVELS; do
    rm -rf "$work/pil-$level"
    measure "pil$level" "$py" "$root/scripts/bench_tiler_pil.py" \
      --manifest "$work/tiles/manifest.jsonl" --input "$photos" --out "$work/pil-$level" \
      --workers "$THREADS" --compress-level "$level"
  done
done

tiles=$(wc -l < "$work/tiles/manifest.jsonl")
tile_bytes() { find "$1" -name '*.png' -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }
ballast_bytes=$(tile_bytes "$work/tiles")
declare -A pil_bytes
for level in $PIL_LEVELS; do pil_bytes[$level]=$(tile_bytes "$work/pil-$level"); done

"$py" - "$work" "$tiles" "$ballast_bytes" "$THREADS" "$SIZE" "$PER_PHOTO" "$REPEATS" \
  "$(for l in $PIL_LEVELS; do printf '%s:%s ' "$l" "${pil_bytes[$l]}"; done)" <<'EOF'
import json, os, platform, statistics, subprocess, sys, datetime
work, tiles, ballast_bytes, threads, size, per_photo, repeats, pil = sys.argv[1:9]
tiles, ballast_bytes, threads = int(tiles), int(ballast_bytes), int(threads)
pil = [tuple(map(int, p.split(":"))) for p in pil.split()]
decode = json.load(open(os.path.join(work, "decode.json")))
photos, mp = decode["photos"], decode["megapixels"]

def times(name):
    rows = [l.split() for l in open(os.path.join(work, name + ".times")) if l.strip()]
    return (statistics.median(float(r[0]) for r in rows), max(int(r[1]) for r in rows) / 1024,
            statistics.median(float(r[2]) for r in rows))

cpu = "unknown CPU"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
dec_wall, dec_rss, dec_cpu = times("decode")
til_wall, til_rss, til_cpu = times("tiler")
mb = lambda b: f"{b / 2**20:.0f} MiB"
print(f"### Tiler ({datetime.date.today().isoformat()})\n")
print(f"Machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}.  ")
print(f"Data: {photos} synth photos, {mp:.1f} MP in all; {per_photo} random {size}×{size} windows "
      f"per photo ({tiles} tiles); {threads} threads / worker processes; median wall of {repeats} "
      f"runs (GNU time, whole process); peak RSS is the largest single process.  ")
print(f"Command: `THREADS={threads} SIZE={size} PER_PHOTO={per_photo} REPEATS={repeats} "
      f"scripts/bench-tiler.sh`\n")
print("| what | wall (s) | CPU (s) | tiles/s | photo MP/s | peak RSS | tile bytes |")
print("|---|---:|---:|---:|---:|---:|---:|")
print(f"| decode only (ballast read + hash + decode, {threads} threads) | {dec_wall:.2f} | "
      f"{dec_cpu:.2f} | – | {mp / dec_wall:.0f} | {dec_rss:.0f} MiB | – |")
print(f"| **ballast tiler**, `--png-compression fast`, {threads} threads | {til_wall:.2f} | "
      f"{til_cpu:.2f} | {tiles / til_wall:.1f} | {mp / til_wall:.0f} | {til_rss:.0f} MiB | "
      f"{mb(ballast_bytes)} |")
pil_rows = []
for level, nbytes in pil:
    w, rss, cpu_s = times(f"pil{level}")
    pil_rows.append((level, w, cpu_s))
    print(f"| PIL, `compress_level={level}`, {threads} processes | {w:.2f} | {cpu_s:.2f} | "
          f"{tiles / w:.1f} | {mp / w:.0f} | {rss:.0f} MiB | {mb(nbytes)} |")
print()
for level, w, cpu_s in pil_rows:
    print(f"- ballast tiles/s ÷ PIL (compress_level {level}) tiles/s: **{w / til_wall:.1f}×** "
          f"(CPU seconds: {cpu_s / til_cpu:.1f}×; target ≥ 3× at level 1)")
print(f"- tiler wall ÷ decode-only wall: **{til_wall / dec_wall:.2f}×** "
      f"(CPU seconds: {til_cpu / dec_cpu:.2f}×; target ≤ 2×)")
print(f"- tiler peak RSS: **{til_rss:.0f} MiB** (target < 1024 MiB)")
EOF
