#!/usr/bin/env bash
# (Re)creates fixtures/photos/: a small ImageFolder tree rendered by the release `synth` binary,
# for other stages' tests (3 classes × 4 photos, 480×320 JPEG quality 85, seed 0).
#
# synth is deterministic, so rerunning this reproduces the committed files byte for byte and,
# with nothing changed, rewrites nothing. Extra arguments go to synth (e.g. --force).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cargo build --release --quiet -p ballast-synth --bin synth
synth="${CARGO_TARGET_DIR:-$root/target}/release/synth"

"$synth" --out fixtures/photos --classes 3 --per-class 4 \
    --width 480 --height 320 --quality 85 --seed 0 "$@"

du -sh fixtures/photos
