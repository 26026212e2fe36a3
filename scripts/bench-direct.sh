#!/usr/bin/env bash
# Benchmarks issue 13, photos straight into the cache, on full-size (4896×3264) synth photos,
# in one run. For each setting (default: 13 windows of 2400² and 40 windows of 500² per photo,
# both packed to 64×64) it measures
#   (a) the direct path: `tiler --tile-files none` (manifest only) + `packer`, which cuts the
#       windows straight from the photos;
#   (b) the same through PNG tiles: `tiler` (tiles, --png-compression fast) + `packer`;
#   (c) a Python reference doing the same job in memory: PIL + torchvision transforms +
#       safetensors, one worker process per thread, each handling whole photos
#       (scripts/bench_direct_torch.py; same windows, read from (b)'s manifest);
#   (d) merely decoding the photos (the tiler's own read + hash + decode path, hidden
#       `--decode-only`).
# Then a scale curve of the direct path (and of decode-only) over growing photo sets, by
# default at 500² ×40 windows per photo. Prints Markdown tables (date, machine, commands) to
# paste into BENCHMARKS.md, and one verdict line per target of the issue.
#
#   scripts/bench-direct.sh                          # 6 photos; scale curve 25 50 100 200 photos
#   SCALE="" scripts/bench-direct.sh                 # main table only
#   CLASSES=2 PER_CLASS=1 SCALE="" PYTHON_REF=0 scripts/bench-direct.sh   # quickest
#   REPEATS=3 SCALE="25 50" SCALE_SETTING=2400x13 scripts/bench-direct.sh
#
# Settings (environment): THREADS (2; given as --threads to every stage, and the number of
# Python worker processes), CLASSES (2), PER_CLASS (3: photos of the main table, per class),
# SETTINGS ("2400x13 500x40": SIZExPER_PHOTO pairs), PACK_SIZE (64), REPEATS (1; medians are
# reported), SCALE ("25 50 100 200": photo counts of the scale curve; "" skips it),
# SCALE_SETTING (500x40), PYTHON_REF (1; 0 skips the Python reference), DIRECT (auto: run the
# direct path when the tiler has --tile-files; 1: require it; 0: skip it), BUILD (1; 0 uses the
# binaries in target/release as they are), BENCH_DIR (target/bench-direct; photos are rendered
# once and cached there: one pool of CLASSES × max(PER_CLASS, max SCALE / CLASSES) photos, every
# set a symlink subset of it, photos-cC-nN/<class>/*.jpg), PYTHON (else scripts/pyenv.sh
# scripts/requirements-bench.txt), GNU_TIME (/usr/bin/time).
#
# Wall and CPU (user + system, children included) come from GNU time, per process; a path of two
# stages adds both stages' times and takes the larger peak RSS (the largest single process).
# Every measured run starts from empty output folders, with the photos in the page cache.
# "Written" is the apparent size (du -sb) of everything the path leaves on disk: the tiler's
# output folder ("intermediate": manifest.jsonl, tiler.json and, on the PNG path, the tiles)
# plus the cache. 200 full-size photos are about 1 GB of JPEG and take a few minutes to render.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
THREADS=${THREADS:-2}
CLASSES=${CLASSES:-2}
PER_CLASS=${PER_CLASS:-3}
SETTINGS=${SETTINGS:-"2400x13 500x40"}
PACK_SIZE=${PACK_SIZE:-64}
REPEATS=${REPEATS:-1}
SCALE=${SCALE-"25 50 100 200"}
SCALE_SETTING=${SCALE_SETTING:-500x40}
PYTHON_REF=${PYTHON_REF:-1}
DIRECT=${DIRECT:-auto}
BUILD=${BUILD:-1}
gnu_time=${GNU_TIME:-/usr/bin/time}
export OMP_WAIT_POLICY=PASSIVE

die() { echo "error: $*" >&2; exit 1; }
note() { echo "bench-direct: $*" >&2; }

"$gnu_time" -f "%e %M" -o /dev/null true 2>/dev/null \
  || die "GNU time is needed for wall time, CPU time and peak RSS ($gnu_time; apt-get install time, or set GNU_TIME)"
for s in $SETTINGS "$SCALE_SETTING"; do
  [[ $s =~ ^[0-9]+x[0-9]+$ ]] || die "settings are SIZExPER_PHOTO, e.g. 500x40; got '$s'"
done
for n in $SCALE; do
  [[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge "$CLASSES" ] \
    || die "SCALE lists photo counts of at least CLASSES ($CLASSES); got '$n'"
done

mkdir -p "${BENCH_DIR:-$root/target/bench-direct}"
work=$(cd "${BENCH_DIR:-$root/target/bench-direct}" && pwd)   # absolute: tiler.json records it

if [ "$BUILD" = 1 ]; then
  note "building release binaries..."
  (cd "$root" && cargo build --release --quiet -p ballast-synth -p ballast-tiler -p ballast-packer) \
    || die "cannot build synth, tiler and packer"
fi
synth=$root/target/release/synth
tiler=$root/target/release/tiler
packer=$root/target/release/packer
for b in "$synth" "$tiler" "$packer"; do [ -x "$b" ] || die "$b is missing (cargo build --release)"; done

has_tile_files=0
if "$tiler" --help 2>/dev/null | grep -q -- '--tile-files'; then has_tile_files=1; fi
why_no_direct="this tiler has no \`--tile-files none\` yet"
case $DIRECT in
  1) [ "$has_tile_files" = 1 ] || die "this tiler has no --tile-files (issue 13); DIRECT=1 needs it"
     direct=1 ;;
  0) direct=0 why_no_direct="DIRECT=0" ;;
  auto) direct=$has_tile_files
     [ "$direct" = 1 ] || note "this tiler has no --tile-files yet: the direct path (a) and the scale curve are skipped" ;;
  *) die "DIRECT is auto, 1 or 0; got '$DIRECT'" ;;
esac

py=
if [ "$PYTHON_REF" = 1 ]; then
  py=${PYTHON:-$("$root/scripts/pyenv.sh" "$root/scripts/requirements-bench.txt")}
  "$py" -c 'import numpy, safetensors, PIL, torch, torchvision' 2>/dev/null \
    || die "$py lacks numpy/safetensors/Pillow/torch/torchvision (pip install -r scripts/requirements-bench.txt)"
fi

# --- photos: one pool, rendered once (synth is incremental: growing it renders only the new
# photos, and a photo's bytes depend on its class, index and seed only); every set is a symlink
# subset of it.
pool=$work/photos-pool-c$CLASSES
need=$PER_CLASS
scale_sets=$SCALE
[ "$direct" = 1 ] || scale_sets=   # the scale curve measures the direct path only
for n in $scale_sets; do
  per=$(( (n + CLASSES - 1) / CLASSES ))
  [ "$per" -le "$need" ] || need=$per
done
have=$(cat "$pool/.per-class" 2>/dev/null || echo 0)
if [ "$have" -lt "$need" ]; then
  note "rendering full-size photos with synth into $pool, up to $need per class (once; photos already there are kept)..."
  rm -f "$pool/.per-class"
  "$synth" --out "$pool" --classes "$CLASSES" --per-class "$need" --seed 0 --threads "$THREADS" \
    --quiet || die "synth failed to render the photos"
  got=$(find "$pool" -mindepth 2 -name '*.jpg' | wc -l)
  [ "$got" -eq $((CLASSES * need)) ] || die "synth wrote $got photos, expected $((CLASSES * need))"
  echo "$need" > "$pool/.per-class"
fi
mapfile -t class_dirs < <(find "$pool" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort)
[ "${#class_dirs[@]}" -eq "$CLASSES" ] || die "$pool has ${#class_dirs[@]} class folders, expected $CLASSES"

# subset N: prints the folder of an N-photo ImageFolder set (N / CLASSES photos per class, the
# remainder to the first classes), made of symlinks into the pool.
subset() {
  local n=$1 dir="$work/photos-c$CLASSES-n$1" i k c f files
  if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir" "$dir.tmp"
    for i in "${!class_dirs[@]}"; do
      c=${class_dirs[$i]}
      k=$(( n / CLASSES + (i < n % CLASSES ? 1 : 0) ))
      mkdir -p "$dir.tmp/$c"
      mapfile -t files < <(find "$pool/$c" -maxdepth 1 -name '*.jpg' | sort)
      for f in "${files[@]:0:k}"; do ln -s "$f" "$dir.tmp/$c/"; done
    done
    [ "$(find "$dir.tmp" -name '*.jpg' | wc -l)" -eq "$n" ] || die "cannot make the $n-photo set"
    touch "$dir.tmp/.complete"
    mv "$dir.tmp" "$dir"
  fi
  echo "$dir"
}
photo_bytes() { find -L "$1" -name '*.jpg' -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }
warm() { find -L "$1" -name '*.jpg' -exec cat {} + > /dev/null; }
bytes() { du -sb "$@" | awk '{s += $1} END {print s + 0}'; }

# measure NAME CMD...: runs CMD under GNU time, appends "wall rss_kb cpu_s" to $work/times/NAME
# (cpu = user + system of the process and its waited-for children) and keeps its stdout in
# $work/times/NAME.out.
measure() {
  local name=$1
  shift
  if ! "$gnu_time" -f "%e %M %U %S" -o "$work/time.txt" "$@" > "$work/stdout.txt" 2> "$work/stderr.txt"; then
    cat "$work/stderr.txt" >&2
    die "$name failed: $*"
  fi
  awk '{print $1, $2, $3 + $4}' "$work/time.txt" >> "$work/times/$name"
  cp "$work/stdout.txt" "$work/times/$name.out"
}

# direct_run TAG PHOTOS SIZE PER_PHOTO: (a), into $work/run/a-TAG-{tiles,cache}.
direct_run() {
  local t=$work/run/a-$1-tiles c=$work/run/a-$1-cache
  rm -rf "$t" "$c"
  measure "a-tiler-$1" "$tiler" --input "$2" --out "$t" --size "$3" --per-photo "$4" \
    --tile-files none --threads "$THREADS" --quiet
  measure "a-packer-$1" "$packer" --tiles "$t" --out "$c" --size "$PACK_SIZE" \
    --threads "$THREADS" --quiet
}

photos=$(subset $((CLASSES * PER_CLASS)))
rm -rf "$work/times" "$work/run"
mkdir -p "$work/times" "$work/run"
warm "$photos"
: > "$work/times/sizes"
for r in $(seq "$REPEATS"); do
  note "round $r/$REPEATS: $photos"
  measure decode "$tiler" --input "$photos" --out "$work/run/decode-unused" --decode-only \
    --threads "$THREADS" --quiet
  for s in $SETTINGS; do
    size=${s%x*} per=${s#*x}
    if [ "$direct" = 1 ]; then direct_run "$s" "$photos" "$size" "$per"; fi
    t=$work/run/b-$s-tiles c=$work/run/b-$s-cache
    rm -rf "$t" "$c"
    measure "b-tiler-$s" "$tiler" --input "$photos" --out "$t" --size "$size" --per-photo "$per" \
      --threads "$THREADS" --quiet
    measure "b-packer-$s" "$packer" --tiles "$t" --out "$c" --size "$PACK_SIZE" \
      --threads "$THREADS" --quiet
    if [ -n "$py" ]; then
      rm -rf "$work/run/c-$s-cache"
      measure "c-$s" "$py" "$root/scripts/bench_direct_torch.py" --manifest "$t/manifest.jsonl" \
        --input "$photos" --out "$work/run/c-$s-cache" --size "$PACK_SIZE" --jitter 0.25 \
        --processes "$THREADS"
    fi
  done
done
for s in $SETTINGS; do
  for p in a b c; do
    [ -d "$work/run/$p-$s-cache" ] || continue
    tb=0
    [ ! -d "$work/run/$p-$s-tiles" ] || tb=$(bytes "$work/run/$p-$s-tiles")
    echo "$p-$s $tb $(bytes "$work/run/$p-$s-cache") $(wc -l < "$work/run/b-$s-tiles/manifest.jsonl")" \
      >> "$work/times/sizes"
  done
  # Same windows, same seeds: the direct cache should hold the PNG path's images and labels.
  if [ "$direct" = 1 ] && [ -n "$py" ]; then
    "$py" - "$work/run/a-$s-cache" "$work/run/b-$s-cache" > "$work/times/same-$s" <<'EOF' || true
import glob, os, sys
import numpy as np
from safetensors.numpy import load_file
def split(d, name):
    files = sorted(glob.glob(os.path.join(d, name + "-*.safetensors")))
    ts = [load_file(f) for f in files]
    return [np.concatenate([t[k] for t in ts]) if ts else np.zeros(0) for k in ("images", "labels")]
same = all(np.array_equal(x, y) for n in ("train", "val")
           for x, y in zip(split(sys.argv[1], n), split(sys.argv[2], n)))
print("identical" if same else "different")
EOF
  fi
done

# --- scale curve: the direct path and decode-only over growing photo sets.
scale_ran=
if [ -n "$SCALE" ] && [ "$direct" = 1 ]; then
  size=${SCALE_SETTING%x*} per=${SCALE_SETTING#*x}
  for n in $SCALE; do
    set_dir=$(subset "$n")
    warm "$set_dir"
    for r in $(seq "$REPEATS"); do
      note "scale curve: $n photos, round $r/$REPEATS"
      measure "scale-decode-$n" "$tiler" --input "$set_dir" --out "$work/run/decode-unused" \
        --decode-only --threads "$THREADS" --quiet
      direct_run "scale-$n" "$set_dir" "$size" "$per"
    done
    echo "$n $(wc -l < "$work/run/a-scale-$n-tiles/manifest.jsonl") $(photo_bytes "$set_dir")" \
      >> "$work/times/scale"
    rm -rf "$work/run/a-scale-$n-tiles" "$work/run/a-scale-$n-cache"
  done
  scale_ran=1
elif [ -n "$SCALE" ]; then
  note "scale curve skipped: it measures the direct path, which this tiler cannot run yet"
fi

cpu_model=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //')
B_WORK=$work B_THREADS=$THREADS B_REPEATS=$REPEATS B_SETTINGS=$SETTINGS B_PACK=$PACK_SIZE \
B_CLASSES=$CLASSES B_PER_CLASS=$PER_CLASS B_SCALE=${scale_ran:+$SCALE} B_SCALE_SETTING=$SCALE_SETTING \
B_SCALE_ASKED=$SCALE B_DIRECT=$direct B_WHY_NO_DIRECT=$why_no_direct B_PYREF=${py:+1} B_PHOTO_BYTES=$(photo_bytes "$photos") \
B_PHOTOS=$((CLASSES * PER_CLASS)) B_DATE=$(date -u +%Y-%m-%d) B_ARCH=$(uname -m) B_NPROC=$(nproc) \
B_CPU=${cpu_model:-unknown CPU} B_KERNEL="$(uname -sr)" python3 - <<'EOF'
import json, os, statistics

E = os.environ
work, threads, repeats, pack = E["B_WORK"], int(E["B_THREADS"]), int(E["B_REPEATS"]), E["B_PACK"]
settings, direct, pyref = E["B_SETTINGS"].split(), E["B_DIRECT"] == "1", E["B_PYREF"] == "1"
photos, photo_bytes = int(E["B_PHOTOS"]), int(E["B_PHOTO_BYTES"])
times_dir = os.path.join(work, "times")


def rows(name):
    """[(wall, rss_mib, cpu)] per round, or None when NAME was not measured."""
    p = os.path.join(times_dir, name)
    if not os.path.exists(p):
        return None
    return [(float(w), int(k) / 1024, float(c)) for w, k, c in (l.split() for l in open(p) if l.strip())]


def path(*names):
    """Medians over rounds of a path made of stages NAMES run one after the other: wall and CPU
    add up, peak RSS is the largest; also each stage's median wall."""
    stages = [rows(n) for n in names]
    if any(s is None for s in stages):
        return None
    rounds = list(zip(*stages))
    return {
        "wall": statistics.median(sum(r[0] for r in rd) for rd in rounds),
        "cpu": statistics.median(sum(r[2] for r in rd) for rd in rounds),
        "rss": max(r[1] for rd in rounds for r in rd),
        "stages": [statistics.median(r[0] for r in s) for s in stages],
    }


sizes = {}
for l in open(os.path.join(times_dir, "sizes")):
    k, t, c, n = l.split()
    sizes[k] = (int(t), int(c), int(n))


def mib(b):
    return f"{b / 2**20:.1f} MiB" if b >= 2**20 else f"{b / 1024:.0f} KiB"


def pct(b):
    v = 100 * b / photo_bytes
    return f"{v:.0f} %" if v >= 10 else f"{v:.2f} %" if v >= 0.01 else f"{v:.4f} %"


def x(a, b):
    return f"{a / b:.2f}×" if a / b < 10 else f"{a / b:.1f}×"


def label(s):
    size, per = s.split("x")
    return f"{size}² ×{per}"


def verdict(ok):
    return "**met**" if ok else "**NOT met**"


decode = path("decode")
dj = json.load(open(os.path.join(times_dir, "decode.out")))
mp = dj["megapixels"]
asked = E["B_SCALE_ASKED"]
cmd_env = (f"THREADS={threads} CLASSES={E['B_CLASSES']} PER_CLASS={E['B_PER_CLASS']} "
           f"REPEATS={repeats} SCALE=\"{asked}\"")
if asked:
    cmd_env += f" SCALE_SETTING={E['B_SCALE_SETTING']}"
if not pyref:
    cmd_env += " PYTHON_REF=0"
print(f"### Photos straight into the cache, issue 13 ({E['B_DATE']})\n")
print(f"Machine: `{E['B_ARCH']}`, {E['B_NPROC']} CPUs ({E['B_CPU']}), {E['B_KERNEL']}; "
      f"{threads} threads (`--threads {threads}` to every stage; {threads} Python worker processes).  ")
print(f"Data: {photos} synth photos ({E['B_CLASSES']} classes × {E['B_PER_CLASS']}), "
      f"4896×3264, {mp:.1f} MP and {mib(photo_bytes)} of JPEG in all, read from the page cache; "
      f"windows packed to {pack}×{pack}; median of {repeats} run(s) (GNU time, whole processes; "
      f"wall and CPU of a two-stage path are the sums, peak RSS is the largest single process); "
      f"every run starts from empty output folders.  ")
print(f"Command: `{cmd_env} scripts/bench-direct.sh`\n")
print("| | command (P photos, T tiler output, C cache) |")
print("|---|---|")
print(f"| (a) direct | `tiler --input P --out T --size S --per-photo N --tile-files none --threads {threads} --quiet` "
      f"then `packer --tiles T --out C --size {pack} --threads {threads} --quiet` |")
print(f"| (b) PNG tiles | `tiler --input P --out T --size S --per-photo N --threads {threads} --quiet` "
      f"(PNG, `--png-compression fast`) then the same `packer` |")
print(f"| (c) Python | `bench_direct_torch.py --manifest T/manifest.jsonl --input P --out C --size {pack} "
      f"--jitter 0.25 --processes {threads}` (PIL + torchvision, in memory; (b)'s manifest) |")
print(f"| (d) decode only | `tiler --input P --out X --decode-only --threads {threads} --quiet` (read + hash + decode, writes nothing) |")
print()
print("| setting | path | wall s | CPU s | peak RSS | written | of which intermediate (% of photo bytes) | ratio (wall; CPU) |")
print("|---|---|---:|---:|---:|---:|---:|---|")

results = {}
for s in settings:
    a = path(f"a-tiler-{s}", f"a-packer-{s}") if direct else None
    b = path(f"b-tiler-{s}", f"b-packer-{s}")
    c = path(f"c-{s}") if pyref else None
    results[s] = (a, b, c)
    n = sizes[f"b-{s}"][2]
    head = f"{label(s)} → {pack}² ({n} windows)"
    if a:
        t, cb, _ = sizes[f"a-{s}"]
        print(f"| {head} | **(a) direct** | **{a['wall']:.2f}** (tiler {a['stages'][0]:.2f} + packer "
              f"{a['stages'][1]:.2f}) | {a['cpu']:.2f} | {a['rss']:.0f} MiB | {mib(t + cb)} | "
              f"{mib(t)} ({pct(t)}) | – |")
        head = ""
    else:
        print(f"| {head} | (a) direct | not run ({E['B_WHY_NO_DIRECT']}) | | | | | |")
        head = ""
    t, cb, _ = sizes[f"b-{s}"]
    ratio = f"(b)/(a) **{x(b['wall'], a['wall'])}**; {x(b['cpu'], a['cpu'])}" if a else "–"
    print(f"| | (b) PNG tiles | {b['wall']:.2f} (tiler {b['stages'][0]:.2f} + packer {b['stages'][1]:.2f}) | "
          f"{b['cpu']:.2f} | {b['rss']:.0f} MiB | {mib(t + cb)} | {mib(t)} ({pct(t)}) | {ratio} |")
    if c:
        cj = json.load(open(os.path.join(times_dir, f"c-{s}.out")))
        cb = sizes[f"c-{s}"][1]
        ratio = (f"(c)/(a) **{x(c['wall'], a['wall'])}**; {x(c['cpu'], a['cpu'])} (loop only ÷ (a) "
                 f"wall: {x(cj['seconds'], a['wall'])})" if a else "–")
        print(f"| | (c) Python (torchvision {cj['torchvision']}, {cj['api']}) | {c['wall']:.2f} "
              f"(loop {cj['seconds']:.2f}) | {c['cpu']:.2f} | {c['rss']:.0f} MiB (Σ processes "
              f"{cj['rss_sum_mib']:.0f}) | {mib(cb)} | none (in memory) | {ratio} |")
    else:
        print("| | (c) Python | not run (PYTHON_REF=0) | | | | | |")
    ratio = f"(a)/(d) **{x(a['wall'], decode['wall'])}**; {x(a['cpu'], decode['cpu'])}" if a else "–"
    print(f"| | (d) decode only | {decode['wall']:.2f} | {decode['cpu']:.2f} | {decode['rss']:.0f} MiB | – | – | {ratio} |")
print()
for s in settings:
    p = os.path.join(times_dir, f"same-{s}")
    if os.path.exists(p):
        print(f"- {label(s)}: the direct cache's `images` and `labels` are "
              f"**{open(p).read().strip() or 'not comparable'}** to the PNG path's.")

scale = []
if E["B_SCALE"]:
    info = {}
    for l in open(os.path.join(times_dir, "scale")):
        n, w, b = map(int, l.split())
        info[n] = (w, b)
    for n in map(int, E["B_SCALE"].split()):
        scale.append((n, info[n], path(f"a-tiler-scale-{n}", f"a-packer-scale-{n}"), path(f"scale-decode-{n}")))
    print(f"\n#### Scale curve of the direct path, {label(E['B_SCALE_SETTING'])} → {pack}² "
          f"(photos: symlink subsets of one rendered set)\n")
    print("| photos | windows | JPEG | wall s | CPU s | s per photo (wall) | peak RSS | decode-only s per photo | direct ÷ decode |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, (w, b), a, d in scale:
        print(f"| {n} | {w} | {mib(b)} | {a['wall']:.2f} | {a['cpu']:.2f} | {a['wall'] / n:.3f} | "
              f"{a['rss']:.0f} MiB | {d['wall'] / n:.3f} | {x(a['wall'], d['wall'])} |")

print("\nTargets:\n")
if not direct:
    print(f"- every target compares with the direct path (a), which was not run: {E['B_WHY_NO_DIRECT']}.")
else:
    parts = [f"{label(s)} {x(a['wall'], decode['wall'])} (CPU {x(a['cpu'], decode['cpu'])})"
             for s, (a, b, c) in results.items()]
    ok = all(a["wall"] <= 1.5 * decode["wall"] for a, b, c in results.values())
    print(f"- direct ≤ 1.5× decode-only (wall), every size: {'; '.join(parts)}: {verdict(ok)}")
    big = [s for s in settings if s.split("x")[0] == "2400"]
    if big:
        parts = [f"{label(s)} {x(results[s][1]['wall'], results[s][0]['wall'])} "
                 f"(CPU {x(results[s][1]['cpu'], results[s][0]['cpu'])})" for s in big]
        ok = all(results[s][1]["wall"] >= 4 * results[s][0]["wall"] for s in big)
        print(f"- direct ≥ 4× faster than the PNG path at 2400 px (wall): {'; '.join(parts)}: {verdict(ok)}")
    else:
        print("- direct ≥ 4× faster than the PNG path at 2400 px: not measured (no 2400 setting)")
    if pyref:
        loop = {s: json.load(open(os.path.join(times_dir, f"c-{s}.out")))["seconds"] for s in settings}
        parts = [f"{label(s)} {x(c['wall'], a['wall'])} (CPU {x(c['cpu'], a['cpu'])}; Python's loop "
                 f"alone, without interpreter and torch start-up: {x(loop[s], a['wall'])})"
                 for s, (a, b, c) in results.items()]
        ok = all(c["wall"] >= 5 * a["wall"] for a, b, c in results.values())
        print(f"- direct ≥ 5× faster than the Python reference (wall), every size: {'; '.join(parts)}: {verdict(ok)}")
    else:
        print("- direct ≥ 5× faster than the Python reference: not measured (PYTHON_REF=0)")
    parts = [f"{label(s)} {pct(sizes[f'a-{s}'][0])}" for s in settings]
    ok = all(sizes[f"a-{s}"][0] < 0.01 * photo_bytes for s in settings)
    print(f"- intermediate files < 1 % of the photos' bytes: {'; '.join(parts)}: {verdict(ok)}")
    peak = max([a["rss"] for a, b, c in results.values()] + [a["rss"] for _, _, a, _ in scale])
    where = f"main table{' and scale curve up to ' + str(scale[-1][0]) + ' photos' if scale else ''}"
    print(f"- direct path peak RSS < 1 GiB: {peak:.0f} MiB (largest over the {where}): {verdict(peak < 1024)}")
EOF
