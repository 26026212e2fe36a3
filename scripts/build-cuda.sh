#!/usr/bin/env bash
# Builds the CUDA-enabled trainer and scorer on a machine with neither GPU nor nvcc, using the
# CUDA toolkit from PyPI wheels (see /work/shared/CUDA-BUILD.md for what was learned doing it).
#
#   scripts/build-cuda.sh            # -> target/cuda-dist/{trainer,scorer}.xz
#   scripts/build-cuda.sh --check    # CI: compiles the `cuda` feature (cargo check, every
#                                    # target, candle's kernels through nvcc), builds nothing
#
# The binaries are stripped and xz-compressed with Python's built-in lzma, which the GPU machine
# also has (it lacks zstd): carry target/cuda-dist/trainer.xz, scripts/gpu-check.sh unpacks it.
#
# The wheels are pinned to CUDA 13.0: the GPU machines' driver speaks CUDA 13.0, so PTX must
# not be newer. CUDA_COMPUTE_CAP=90 builds sm_90a kernels (H100/H200 only). The result links
# libcuda/libcublas/libcurand/libcudart dynamically, so it cannot even start where those are
# missing: the normal CPU build (no `cuda` feature) stays the default and is unaffected.
#
# Environment:
#   PYTHON=python3                  interpreter with pip (only to download the wheels)
#   CUDA_TOOLKIT_DIR=target/cuda-toolkit   where the wheels are unpacked
#   CUDA_TARGET_DIR=target/cuda            cargo target dir of the CUDA build (separate, so
#                                          the CPU build's artefacts are never touched)
#   CUDA_COMPUTE_CAP=90             GPU architecture
#   JOBS=                           cargo -j (default: all cores; the build takes ~17 min on 2)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
CHECK=0
case "${1:-}" in
  --check) CHECK=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

PYTHON=${PYTHON:-python3}
TK=${CUDA_TOOLKIT_DIR:-$root/target/cuda-toolkit}
TARGET_DIR=${CUDA_TARGET_DIR:-$root/target/cuda}
DIST=$root/target/cuda-dist
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
# cudarc panics on nvcc versions it does not know; pin the version without asking nvcc.
export CUDARC_CUDA_VERSION=13000

WHEELS=(
  nvidia-cuda-nvcc==13.0.88
  nvidia-nvvm==13.0.88
  nvidia-cuda-crt==13.0.88
  nvidia-cuda-runtime==13.0.96
  nvidia-cuda-cccl==13.0.85
  nvidia-cuda-nvrtc==13.0.88
  nvidia-cublas==13.0.2.14
  nvidia-curand==10.4.0.35
)

stamp="$TK/.installed"
want=$(printf '%s\n' "${WHEELS[@]}" | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing CUDA 13.0 toolkit wheels into $TK" >&2
  rm -rf "$TK"
  mkdir -p "$TK"
  # --no-deps: nvcc's wheel otherwise pulls unpinned (newer) dependencies.
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps --target "$TK" "${WHEELS[@]}"
  echo "$want" > "$stamp"
fi

export CUDA_HOME="$TK/nvidia/cu13"
[ -x "$CUDA_HOME/bin/nvcc" ] || { echo "no nvcc in $CUDA_HOME/bin (wheel layout changed?)" >&2; exit 1; }
export PATH="$CUDA_HOME/bin:$PATH"
lib="$CUDA_HOME/lib"

# The wheels ship versioned sonames only; the linker needs the plain names.
for name in cudart cublas cublasLt nvrtc curand; do
  if [ ! -e "$lib/lib$name.so" ]; then
    real=$(ls "$lib"/lib"$name".so.* 2>/dev/null | sort -V | head -n1 || true)
    [ -n "$real" ] || { echo "lib$name.so.* not found in $lib" >&2; exit 1; }
    ln -sf "$(basename "$real")" "$lib/lib$name.so"
  fi
done

# libcuda belongs to the driver: link against a stub (soname libcuda.so.1) that exports every
# cu* function cudarc declares; at run time the driver's real libcuda.so.1 is loaded.
cargo fetch -q
cudarc_src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.* 2>/dev/null | sort -V | tail -n1)
[ -n "$cudarc_src" ] && [ -f "$cudarc_src/src/driver/sys/mod.rs" ] \
  || { echo "cudarc 0.19 sources not found after cargo fetch" >&2; exit 1; }
mkdir -p "$lib/stubs"
stub_c="$lib/stubs/libcuda_stub.c"
grep -ohE '\bfn cu[A-Za-z0-9_]+\(' "$cudarc_src"/src/driver/sys/*.rs \
  | sed -E 's/^fn (cu[A-Za-z0-9_]+)\($/\1/' | sort -u \
  | awk '{ printf "int %s(void) { return 999; }\n", $1 }' > "$stub_c"
count=$(wc -l < "$stub_c")
[ "$count" -gt 100 ] || { echo "only $count cu* symbols found in $cudarc_src; refusing to build a stub" >&2; exit 1; }
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$lib/stubs/libcuda.so" "$stub_c"
echo "libcuda stub: $count symbols from $(basename "$cudarc_src")" >&2

echo "nvcc: $(nvcc --version | tail -n1)" >&2
# ballast's own kernels (crates/kernels/cuda/ops.cu, tested on the host by crates/kernels-host)
# through the real nvcc to PTX, which is what cudarc loads.
mkdir -p "$TARGET_DIR"
nvcc -ptx -std=c++17 -arch="compute_${CUDA_COMPUTE_CAP%a}" crates/kernels/cuda/ops.cu -o "$TARGET_DIR/ops.ptx"
entries=$(grep -c '^\.visible \.entry' "$TARGET_DIR/ops.ptx" || true)
[ "$entries" -ge 9 ] || { echo "ops.cu: $entries kernel entry points in the PTX, expected 9" >&2; exit 1; }
echo "ops.cu -> $TARGET_DIR/ops.ptx: $entries kernels" >&2
features=ballast-trainer/cuda,ballast-scorer/cuda
if [ "$CHECK" = 1 ]; then
  echo "checking the cuda feature (CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP) in $TARGET_DIR" >&2
  cargo check --locked --all-targets ${JOBS:+-j "$JOBS"} --target-dir "$TARGET_DIR" \
    -p ballast-trainer -p ballast-scorer -p ballast-model --features "$features"
  exit 0
fi
echo "building (CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP) into $TARGET_DIR; this takes a while" >&2
cargo build --release ${JOBS:+-j "$JOBS"} --target-dir "$TARGET_DIR" \
  -p ballast-trainer -p ballast-scorer --features "$features"

mkdir -p "$DIST"
for bin in trainer scorer; do
  src="$TARGET_DIR/release/$bin"
  [ -x "$src" ] || continue
  strip -o "$DIST/$bin" "$src"
  "$PYTHON" scripts/xz.py compress "$DIST/$bin" "$DIST/$bin.xz"
  echo "$DIST/$bin.xz: $(du -h "$DIST/$bin.xz" | cut -f1) (stripped $(du -h "$DIST/$bin" | cut -f1))" >&2
done
echo "NEEDED by the CUDA trainer:" >&2
readelf -d "$DIST/trainer" 2>/dev/null | grep NEEDED >&2 || true
