#!/usr/bin/env bash
# Checks the CUDA trainer on a GPU machine (which has no Rust toolchain): trains a few epochs on
# cuda:0 and on cpu on the same small cache and compares them, then times a 28 000-sample 64x64
# epoch with ballast and with PyTorch (scripts/train_torch.py) on the same GPU.
#
#   scripts/gpu-check.sh                      # after scripts/build-cuda.sh, with
#                                             # target/cuda-dist/trainer.xz carried over
#   TRAINER_BIN=target/release/trainer DEVICE=cpu EPOCHS=1 BIG_TRAIN=2000 BIG_EPOCHS=1 \
#     scripts/gpu-check.sh                    # rehearsal on a CPU machine: every step but CUDA
# Results: OUT/summary.md, OUT/log.txt and OUT/details.tar.gz (every log and metrics file),
# bundled on any exit, so even a failed check brings back what it got to.
# Environment:
#   TRAINER_BIN   the CUDA trainer: a binary, or a .xz (Python's lzma) or .zst of one (default:
#                 target/cuda-dist/trainer, else trainer.xz, else trainer.zst there)
#   DEVICE        the device under test (default cuda:0; cpu rehearses the script)
#   PYTHON        interpreter with torch (CUDA) and safetensors (default: python3)
#   OUT           results folder (default: $OUT if set by the device tool, else target/gpu-check)
#   EPOCHS=3 BIG_TRAIN=28000 BIG_EPOCHS=2
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

OUT=${OUT:-$root/target/gpu-check}
mkdir -p "$OUT"
WORK=${WORK:-$(mktemp -d /tmp/ballast-gpu-check.XXXXXX)}
DEVICE=${DEVICE:-cuda:0}
torch_device=cuda
[ "$DEVICE" = cpu ] && torch_device=cpu
# Everything but the summary and the log goes to $D, bundled into OUT/details.tar.gz at exit.
D=$WORK/details
mkdir -p "$D"
PYTHON=${PYTHON:-python3}
EPOCHS=${EPOCHS:-3}
BIG_TRAIN=${BIG_TRAIN:-28000}
BIG_EPOCHS=${BIG_EPOCHS:-2}
summary=$OUT/summary.md
log() { echo "[gpu-check] $*" | tee -a "$OUT/log.txt" >&2; }
: > "$OUT/log.txt"
bundle() {
  "$PYTHON" - "$D" "$OUT/details.tar.gz" <<'EOF' || echo "[gpu-check] could not bundle $D" >&2
import os, sys, tarfile
src, dest = sys.argv[1], sys.argv[2]
with tarfile.open(dest + ".tmp", "w:gz") as t:
    for name in sorted(os.listdir(src)):
        t.add(os.path.join(src, name), arcname=name)
os.replace(dest + ".tmp", dest)
EOF
}
trap bundle EXIT

# 1. The binary.
bin=${TRAINER_BIN:-}
if [ -z "$bin" ]; then
  for c in target/cuda-dist/trainer target/cuda-dist/trainer.xz target/cuda-dist/trainer.zst; do
    if [ -e "$c" ]; then bin=$c; break; fi
  done
  bin=${bin:-target/cuda-dist/trainer.xz}
fi
[ -e "$bin" ] || { log "no CUDA trainer at $bin (run scripts/build-cuda.sh and carry target/cuda-dist)"; exit 1; }
TRAINER=$WORK/trainer
case "$bin" in
  *.xz) "$PYTHON" scripts/xz.py decompress "$bin" "$TRAINER" ;;
  *.zst)
    if command -v zstd > /dev/null; then
      zstd -q -d -f "$bin" -o "$TRAINER"
    else
      "$PYTHON" - "$bin" "$TRAINER" <<'EOF'
import sys
try:
    import zstandard
except ImportError:
    sys.exit("no zstd and no python zstandard module: carry the uncompressed binary instead")
with open(sys.argv[1], "rb") as f, open(sys.argv[2], "wb") as g:
    zstandard.ZstdDecompressor().copy_stream(f, g)
EOF
    fi ;;
  *) cp "$bin" "$TRAINER" ;;
esac
chmod +x "$TRAINER"

# 2. The CUDA 13 user-space libraries come with the machine's PyTorch environment.
libdirs=$("$PYTHON" - <<'EOF'
import glob, os
try:
    import nvidia
except ImportError:
    raise SystemExit(0)
dirs = set()
for base in nvidia.__path__:
    for d in glob.glob(os.path.join(base, "**", "lib"), recursive=True):
        if glob.glob(os.path.join(d, "*.so*")):
            dirs.add(d)
print(":".join(sorted(dirs)))
EOF
)
export LD_LIBRARY_PATH="${libdirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
log "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
if [ "$DEVICE" != cpu ]; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$OUT/log.txt" || true
fi
if ! "$TRAINER" --version >> "$OUT/log.txt" 2>&1; then
  log "the CUDA trainer does not start; missing libraries:"
  ldd "$TRAINER" | grep -i "not found" | tee -a "$OUT/log.txt" >&2 || true
  exit 1
fi

# 3. Caches (synthetic stripes, written by the trainer itself: no Rust needed here).
small=$WORK/cache-small
big=$WORK/cache-big
"$TRAINER" synth-cache --out "$small" --size 64 --classes 5 --train-per-class 400 --val-per-class 100 --shards 2
per_class=$(( BIG_TRAIN / 5 ))
"$TRAINER" synth-cache --out "$big" --size 64 --classes 5 --train-per-class "$per_class" --val-per-class 200 --shards 8
log "caches written"

# 4. Same run on the device under test ("cuda" below) and on cpu.
common=(--epochs "$EPOCHS" --batch 64 --optimizer adamw --lr 0.001 --flips false --seed 0 --force)
for name in cuda cpu; do
  dev=cpu
  [ "$name" = cuda ] && dev=$DEVICE
  log "training on $dev"
  "$TRAINER" --cache "$small" --run "$WORK/runs/small-$name" --device "$dev" "${common[@]}" \
    2> "$D/log-small-$name.txt" || { tail -20 "$D/log-small-$name.txt" >&2; exit 1; }
  cp "$WORK/runs/small-$name/metrics.jsonl" "$D/metrics-small-$name.jsonl"
  cp "$WORK/runs/small-$name/log.jsonl" "$D/log-small-$name.jsonl"
  cp "$WORK/runs/small-$name/notes.md" "$D/notes-small-$name.md"
done

# 5. A 28 000-sample 64x64 epoch: ballast on cuda:0, PyTorch on the same GPU.
log "big epoch: ballast on $DEVICE"
"$TRAINER" --cache "$big" --run "$WORK/runs/big-cuda" --device "$DEVICE" --epochs "$BIG_EPOCHS" \
  --batch 64 --optimizer sgd --lr 0.01 --flips false --seed 0 --force 2> "$D/log-big-ballast.txt" \
  || { tail -20 "$D/log-big-ballast.txt" >&2; exit 1; }
cp "$WORK/runs/big-cuda/metrics.jsonl" "$D/metrics-big-ballast.jsonl"
cp "$WORK/runs/big-cuda/log.jsonl" "$D/log-big-ballast.jsonl"
log "big epoch: PyTorch on $torch_device"
torch_ok=1
OMP_WAIT_POLICY=PASSIVE "$PYTHON" scripts/train_torch.py --cache "$big" --device "$torch_device" \
  --epochs "$BIG_EPOCHS" --batch 64 --lr 0.01 --threads 4 > "$D/torch-big.jsonl" \
  2> "$D/log-big-torch.txt" || { torch_ok=0; tail -5 "$D/log-big-torch.txt" >&2; }

# 6. Summary.
"$PYTHON" - "$D" "$torch_ok" "$DEVICE" > "$summary" <<'EOF'
import json, sys
out, torch_ok, device = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
rows = lambda p: [json.loads(l) for l in open(p) if l.strip()]
def timed(name):
    # Results from metrics.jsonl, each epoch's timings from log.jsonl (its last timing wins).
    t = {r["epoch"]: r for r in rows(f"{out}/log-{name}.jsonl") if r.get("event") == "epoch"}
    return [{**r, **t.get(r["epoch"], {})} for r in rows(f"{out}/metrics-{name}.jsonl")]
cuda, cpu = timed("small-cuda"), timed("small-cpu")
print("# GPU check\n")
print(f"## Same run on {device} and cpu (64x64, 2000 train samples, AdamW lr 0.001, batch 64)\n")
print("| epoch | cuda val loss | cpu val loss | cuda val acc | cpu val acc | cuda s | cpu s |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for a, b in zip(cuda, cpu):
    print(f"| {a['epoch']} | {a['val_loss']:.4f} | {b['val_loss']:.4f} | {a['val_acc']:.3f} | "
          f"{b['val_acc']:.3f} | {a['seconds']:.2f} | {b['seconds']:.2f} |")
gap = max(abs(a["val_acc"] - b["val_acc"]) for a, b in zip(cuda, cpu))
h2d = max((r["h2d_image_bytes"] or 0) for r in cuda)
print(f"\nlargest val-accuracy gap cuda vs cpu: {gap:.3f}; image bytes uploaded per epoch on cuda: {h2d}\n")
big = timed("big-ballast")
print("## 64x64 epoch, 28 000 samples, batch 64, same GPU\n")
print("| trainer | epoch | train s | samples/s | val acc |")
print("|---|---:|---:|---:|---:|")
for r in big:
    print(f"| ballast | {r['epoch']} | {r['train_seconds']:.2f} | {r['samples_per_s']:.0f} | {r['val_acc']:.3f} |")
if torch_ok:
    for r in rows(f"{out}/torch-big.jsonl"):
        if "epoch" in r:
            print(f"| PyTorch | {r['epoch']} | {r['seconds']:.2f} | {r['samples_per_s']:.0f} | {r['val_acc']:.3f} |")
else:
    print("| PyTorch | - | failed (see log-big-torch.txt) | | |")
print("\nField-report anchor: ~10 s per 28 000-sample 64x64 epoch on an RTX 2060.")
verdict = "PASS" if gap <= 0.1 and h2d == 0 else "CHECK"
print(f"\nverdict: {verdict} (cuda and cpu agree within 0.1 val accuracy; no per-epoch image upload)")
EOF
cat "$summary"
