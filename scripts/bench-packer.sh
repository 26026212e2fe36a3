#!/usr/bin/env bash
# Benchmark: ballast packer against the torchvision pipeline a PyTorch user would write
# (scripts/bench_packer_torch.py), same tiles, same 2 cores, in one run.
#
#   scripts/bench-packer.sh                # 2 000 tiles of 500x500 -> 64x64, both pipelines
#   N=500 scripts/bench-packer.sh          # quicker
#   RSS_TILES=100000 scripts/bench-packer.sh   # also: packer alone on 100 000 small tiles
#                                          # (peak RSS, up-to-date check time)
# Env: N (tiles, default 2000), PX (tile side, 500), SIZE (64), THREADS (2), RSS_TILES (0 = skip),
# RSS_PX (tile side for the RSS run, 32), WORK (default target/bench-packer), PYTHON (else
# scripts/pyenv.sh scripts/requirements-bench.txt), PNG_COMPRESSION (the tiler's preset for the
# tiles, default fast), STAGE_N (tiles in the per-stage table, 500).
# Tiles come from target/release/synth + tiler (the real pipeline; BENCH_TILES=synth, the default), or from
# the packer's bench_tiles example with BENCH_TILES=example (synthetic texture, png crate defaults).
# Prints a Markdown table (date, machine, commands, tiles/s, ratio, peak RSS, up-to-date time).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
N=${N:-2000}
PX=${PX:-500}
SIZE=${SIZE:-64}
THREADS=${THREADS:-2}
RSS_TILES=${RSS_TILES:-0}
RSS_PX=${RSS_PX:-32}
PNG_COMPRESSION=${PNG_COMPRESSION:-fast}
WORK=${WORK:-$root/target/bench-packer}
PY=${PYTHON:-$(scripts/pyenv.sh scripts/requirements-bench.txt)}
export OMP_WAIT_POLICY=PASSIVE
mkdir -p "$WORK"

cargo build --release --quiet -p ballast-packer --bin packer --example bench_tiles --example stage_times
PACKER=$root/target/release/packer
GEN=$root/target/release/examples/bench_tiles

# Tiles (kept between runs; regenerated when the parameters change).
make_tiles() { # DIR N PX MODE (synth: synth + tiler photos; example: the bench_tiles example)
  local dir=$1 n=$2 px=$3 mode=$4 stamp="$1.stamp" want="$2 $3 $4 $PNG_COMPRESSION"
  if [ -f "$dir/manifest.jsonl" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return; fi
  rm -rf "$dir"
  if [ "$mode" = synth ] && [ -x target/release/synth ] && [ -x target/release/tiler ]; then
    local photos=$(( (n + 53) / 54 ))
    target/release/synth --out "$dir.photos" --classes 5 --per-class $(( (photos + 4) / 5 )) -q
    target/release/tiler --input "$dir.photos" --out "$dir" --size "$px" --grid \
      --png-compression "$PNG_COMPRESSION" -q
  else
    "$GEN" "$dir" "$n" "$px" 40
  fi
  echo "$want" > "$stamp"
}

# Runs a command under GNU time; sets SECS (wall), CPU (user+sys s) and RSS_MB.
timed() {
  local log="$WORK/time.log"
  /usr/bin/time -v -o "$log" "$@" >"$WORK/stdout.log" 2>"$WORK/stderr.log" || {
    cat "$WORK/stderr.log" >&2; exit 1; }
  SECS=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$log")
  RSS_MB=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$log")
  CPU=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {printf "%.2f", u+s}' "$log")
}

warm() { find "$1" -name '*.png' -print0 | xargs -0 cat > /dev/null; }

TILES=$WORK/tiles-$N-$PX-$PNG_COMPRESSION
make_tiles "$TILES" "$N" "$PX" "${BENCH_TILES:-synth}"
NT=$(wc -l < "$TILES/manifest.jsonl")
warm "$TILES"

cmd_packer="packer --tiles T --out C --size $SIZE --threads $THREADS --force -q"
rm -rf "$WORK/cache-ballast" "$WORK/cache-torch"
timed "$PACKER" --tiles "$TILES" --out "$WORK/cache-ballast" --size "$SIZE" --threads "$THREADS" --force -q
P_SECS=$SECS; P_RSS=$RSS_MB; P_CPU=$CPU
timed "$PACKER" --tiles "$TILES" --out "$WORK/cache-ballast" --size "$SIZE" --threads "$THREADS"
U_SECS=$SECS

cmd_torch="bench_packer_torch.py --tiles T --out C --size $SIZE --workers $THREADS"
timed "$PY" scripts/bench_packer_torch.py --tiles "$TILES" --out "$WORK/cache-torch" --size "$SIZE" --workers "$THREADS"
T_SECS=$SECS; T_RSS=$RSS_MB; T_CPU=$CPU
T_TV=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["torchvision"])' "$WORK/stdout.log" 2>/dev/null || echo "?")
# The Python pipeline's own rate over its processing loop (without interpreter/torch start-up).
T_LOOP=$(python3 -c 'import json,sys; print("%.1f" % json.load(open(sys.argv[1]))["tiles_per_s"])' "$WORK/stdout.log" 2>/dev/null || echo "?")

rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.1f", n / s }'; }
P_RATE=$(rate "$NT" "$P_SECS"); T_RATE=$(rate "$NT" "$T_SECS")
RATIO=$(awk -v a="$P_RATE" -v b="$T_RATE" 'BEGIN { printf "%.1f", a / b }')
RATIO_LOOP=$(awk -v a="$P_RATE" -v b="$T_LOOP" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "?" }')
RATIO_CPU=$(awk -v a="$P_CPU" -v b="$T_CPU" 'BEGIN { printf "%.1f", b / a }')
ms() { awk -v c="$1" -v n="$NT" 'BEGIN { printf "%.2f", 1000 * c / n }'; }
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "### packer benchmark ($(date -u +%Y-%m-%d), $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
echo
echo "$NT tiles of ${PX}x${PX} RGB PNG (tiler \`--png-compression $PNG_COMPRESSION\`, $(du -sk "$TILES" | awk -v n="$NT" '{ printf "%.0f", $1 / n }') KiB/tile) -> ${SIZE}x${SIZE} u8, jitter 0.25, $THREADS threads/processes."
echo
echo "| pipeline | command | wall s | tiles/s (wall) | CPU s | CPU ms/tile | peak RSS MiB |"
echo "|---|---|---:|---:|---:|---:|---:|"
echo "| ballast packer | \`$cmd_packer\` | $P_SECS | $P_RATE | $P_CPU | $(ms "$P_CPU") | $P_RSS |"
echo "| torchvision (torchvision=$T_TV) | \`$cmd_torch\` | $T_SECS | $T_RATE (loop only: $T_LOOP) | $T_CPU | $(ms "$T_CPU") | $T_RSS |"
echo "| **packer / torchvision** | | | **${RATIO}x** (vs loop only: ${RATIO_LOOP}x) | **${RATIO_CPU}x** less CPU | | |"
echo
echo "Up-to-date check of the unchanged cache ($NT tiles): ${U_SECS} s. Load average at the end: $LOAD"
echo "(CPU s include Python's interpreter and torch start-up; the loop-only rate excludes them.)"

# Per-tile stages, one thread, files in memory: how close the packer is to the floor that the
# PNG inflate alone sets, and the largest per-tile ratio that floor allows.
STAGE_N=${STAGE_N:-500}
B_ST=$(target/release/examples/stage_times "$TILES" "$STAGE_N" "$SIZE")
T_ST=$("$PY" scripts/bench_packer_stages.py "$TILES" "$STAGE_N" "$SIZE")
stage() { python3 -c 'import json,sys; print("%.3f" % json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
B_TOTAL=$(stage "$B_ST" total); T_TOTAL=$(stage "$T_ST" total); B_INF=$(stage "$B_ST" inflate)
echo
echo "Per tile, 1 thread, tile files in memory, best of 3 over $STAGE_N tiles (ms/tile):"
echo
echo "| stage | ballast | torchvision |"
echo "|---|---:|---:|"
echo "| BLAKE3 of the file (checked against the manifest) | $(stage "$B_ST" blake3) | – |"
echo "| inflate alone (fdeflate; the part every PNG reader pays) | $B_INF | – |"
echo "| PNG decode (inflate + unfilter; ballast also BT.601 luma) | $(stage "$B_ST" decode_luma) | $(stage "$T_ST" decode) |"
echo "| ballast: resize / torchvision: Grayscale + Resize + ColorJitter + uint8 | $(stage "$B_ST" resize) | $(stage "$T_ST" transforms) |"
echo "| jitter | $(stage "$B_ST" jitter) | (above) |"
echo "| **whole tile** | **$B_TOTAL** | **$T_TOTAL** |"
echo
echo "Per-tile ratio: $(awk -v a="$T_TOTAL" -v b="$B_TOTAL" 'BEGIN { printf "%.1f", a / b }')x." \
  "Ceiling for a packer that did nothing but inflate: $(awk -v a="$T_TOTAL" -v b="$B_INF" 'BEGIN { printf "%.1f", a / b }')x."

if [ "$RSS_TILES" -gt 0 ]; then
  BIG=$WORK/tiles-$RSS_TILES-$RSS_PX
  make_tiles "$BIG" "$RSS_TILES" "$RSS_PX" example   # 100 000 tiny tiles: no photos needed
  NB=$(wc -l < "$BIG/manifest.jsonl")
  warm "$BIG"
  rm -rf "$WORK/cache-big"
  timed "$PACKER" --tiles "$BIG" --out "$WORK/cache-big" --size "$SIZE" --threads "$THREADS" -q
  B_SECS=$SECS; B_RSS=$RSS_MB
  timed "$PACKER" --tiles "$BIG" --out "$WORK/cache-big" --size "$SIZE" --threads "$THREADS"
  B_U=$SECS; B_URSS=$RSS_MB
  echo
  echo "| $NB tiles of ${RSS_PX}x${RSS_PX} -> ${SIZE}x${SIZE} | wall s | peak RSS MiB |"
  echo "|---|---:|---:|"
  echo "| full build (\`packer --size $SIZE --threads $THREADS\`) | $B_SECS | $B_RSS |"
  echo "| up-to-date check, nothing changed | $B_U | $B_URSS |"
  grep -h "up to date" "$WORK/stderr.log" | sed 's/^/    /' || true
fi
