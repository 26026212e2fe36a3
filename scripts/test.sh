#!/usr/bin/env bash
# The test command (README): every unit and end-to-end test of the workspace, including the
# Python interop checks (shards load in numpy; an independent numpy forward pass reproduces the
# trainer's logits). It installs numpy and safetensors into a virtual environment under target/
# the first time (or uses BALLAST_PYTHON if set), and a second one with PyTorch for the README's
# examples (or BALLAST_PYTHON_README).
set -euo pipefail
cd "$(dirname "$0")/.."
BALLAST_PYTHON=$(scripts/pyenv.sh scripts/requirements-test.txt)
# The README's examples also need PyTorch (a larger environment of its own).
BALLAST_PYTHON_README=${BALLAST_PYTHON_README:-$(BALLAST_PYTHON='' scripts/pyenv.sh scripts/requirements-readme.txt)}
export BALLAST_PYTHON BALLAST_PYTHON_README
for s in scripts/*.sh scripts/slurm/*.sh scripts/slurm/*.sbatch; do
  [ -e "$s" ] && bash -n "$s"
done
cargo test --workspace --locked "$@"
