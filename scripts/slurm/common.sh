# Sourced by the ballast Slurm job scripts. Every setting can come from the environment
# (sbatch --export or the submitting shell): paths live on storage shared by all nodes.
: "${BALLAST_BIN:=target/release}"        # folder with tiler, packer, trainer, scorer
: "${PHOTOS:?set PHOTOS to the ImageFolder photo tree}"
: "${WORK:?set WORK to the shared work folder}"
: "${TILE_SIZE:=500}"
: "${TILE_MODE:=--grid}"
: "${VAL_FRACTION:=0.2}"
: "${SPLIT:=}"                           # stratified or hash (empty: the tiler's default)
: "${TILE_FILES:=}"                      # png or none (no tile files: the packer reads the photos)
: "${SEED:=0}"
: "${MAX_BAD:=10}"
: "${SIZE:=64}"
: "${JITTER:=0.25}"
: "${COPIES:=1}"
: "${PACK_SHARDS:=}"                     # fixed shard count (recommended on clusters)
: "${RUN_NAME:=default}"
# Training settings left empty take the trainer's defaults (its measured default recipe);
# RECIPE=report gives the field report's SGD lr 0.01 batch 64.
: "${RECIPE:=}"
: "${EPOCHS:=}"
: "${BATCH:=}"
: "${LR:=}"
: "${OPTIMIZER:=}"
: "${DEVICE:=cpu}"
: "${TRAIN_EXTRA:=}"
# Sweeps (sweep.sbatch): SWEEP_GRID holds space-separated KEY=V1,V2 specs, SWEEP_LIST a settings
# file; the runs go to $WORK/sweeps/$SWEEP_NAME.
: "${SWEEP_GRID:=}"
: "${SWEEP_LIST:=}"
: "${SWEEP_NAME:=sweep}"
TILES="$WORK/tiles"
CACHE="$WORK/cache"
RUN="$WORK/runs/$RUN_NAME"
SWEEP_RUNS="$WORK/sweeps/$SWEEP_NAME"
# The training flags that are set, as trainer arguments.
TRAIN_ARGS=(--device "$DEVICE" --seed "$SEED")
[ -n "$RECIPE" ] && TRAIN_ARGS+=(--recipe "$RECIPE")
[ -n "$EPOCHS" ] && TRAIN_ARGS+=(--epochs "$EPOCHS")
[ -n "$BATCH" ] && TRAIN_ARGS+=(--batch "$BATCH")
[ -n "$LR" ] && TRAIN_ARGS+=(--lr "$LR")
[ -n "$OPTIMIZER" ] && TRAIN_ARGS+=(--optimizer "$OPTIMIZER")
# shellcheck disable=SC2206
TRAIN_ARGS+=($TRAIN_EXTRA)
SPLIT_ARG=()
[ -n "$SPLIT" ] && SPLIT_ARG=(--split "$SPLIT")
TILE_FILES_ARG=()
[ -n "$TILE_FILES" ] && TILE_FILES_ARG=(--tile-files "$TILE_FILES")
THREADS_ARG=()
[ -n "${SLURM_CPUS_PER_TASK:-}" ] && THREADS_ARG=(--threads "$SLURM_CPUS_PER_TASK")
