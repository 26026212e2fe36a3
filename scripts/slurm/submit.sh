#!/usr/bin/env bash
# Submits the whole pipeline as dependent Slurm jobs:
#   PHOTOS=/shared/photos WORK=/shared/work scripts/slurm/submit.sh [TILE_TASKS] [PACK_TASKS]
# Tiler and packer run as array jobs (one task per node), training waits for them
# (afterok) on a GPU node, scoring waits for training. Settings: see common.sh. With SWEEP_GRID
# or SWEEP_LIST set, a sweep array job of SWEEP_TASKS tasks (default 4) also runs after the
# packer, into $WORK/sweeps/$SWEEP_NAME.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tile_tasks=${1:-8}
pack_tasks=${2:-4}
: "${PHOTOS:?set PHOTOS}" "${WORK:?set WORK}"
export BALLAST_SLURM_DIR="$here" PACK_SHARDS="${PACK_SHARDS:-$pack_tasks}"
mkdir -p "$WORK/logs"
common=(--parsable --export=ALL --output="$WORK/logs/%x-%A_%a.out")
tile=$(sbatch "${common[@]}" --array=0-$((tile_tasks - 1)) "$here/tile.sbatch")
pack=$(sbatch "${common[@]}" --array=0-$((pack_tasks - 1)) --dependency=afterok:"$tile" "$here/pack.sbatch")
train=$(sbatch "${common[@]}" --dependency=afterok:"$pack" "$here/train.sbatch")
score=$(sbatch "${common[@]}" --dependency=afterok:"$train" "$here/score.sbatch")
sweep=none
if [ -n "${SWEEP_GRID:-}${SWEEP_LIST:-}" ]; then
  sweep=$(sbatch "${common[@]}" --array=0-$((${SWEEP_TASKS:-4} - 1)) --dependency=afterok:"$pack" \
    "$here/sweep.sbatch")
fi
echo "submitted: tile=$tile pack=$pack train=$train score=$score sweep=$sweep"
