#!/usr/bin/env bash
# The test command (README): every unit and end-to-end test of the workspace, including the
# Python interop checks (shards load in numpy; an independent numpy forward pass reproduces the
# trainer's logits). It installs numpy and safetensors into a virtual environment under target/
# the first time (or uses BALLAST_PYTHON if set), and a second one with PyTorch for the README's
# examples (or BALLAST_PYTHON_README). The --html page is checked in a real headless Chromium:
# scripts/chromium.sh finds one (or BALLAST_CHROMIUM), installs Debian's when run as root with
# apt-get, or stops here saying how to get one; those tests fail, never skip, without it.
set -euo pipefail
cd "$(dirname "$0")/.."
# First, so that a missing browser stops the run before the (long) Python set-up.
BALLAST_CHROMIUM=$(scripts/chromium.sh)
BALLAST_PYTHON=$(scripts/pyenv.sh scripts/requirements-test.txt)
# The README's examples also need PyTorch (a larger environment of its own).
BALLAST_PYTHON_README=${BALLAST_PYTHON_README:-$(BALLAST_PYTHON='' scripts/pyenv.sh scripts/requirements-readme.txt)}
export BALLAST_PYTHON BALLAST_PYTHON_README BALLAST_CHROMIUM
for s in scripts/*.sh scripts/slurm/*.sh scripts/slurm/*.sbatch; do
  [ -e "$s" ] && bash -n "$s"
done
cargo test --workspace --locked "$@"
