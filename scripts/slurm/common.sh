# Sourced by the ballast Slurm job scripts. Every setting can come from the environment
# (sbatch --export or the submitting shell): paths live on storage shared by all nodes.
: "${BALLAST_BIN:=target/release}"        # folder with tiler, packer, trainer, scorer
: "${PHOTOS:?set PHOTOS to the ImageFolder photo tree}"
: "${WORK:?set WORK to the shared work folder}"
: "${TILE_SIZE:=500}"
: "${TILE_MODE:=--grid}"
: "${VAL_FRACTION:=0.2}"
: "${SPLIT:=}"                           # stratified or hash (empty: the tiler's default)
: "${SEED:=0}"
: "${MAX_BAD:=10}"
: "${SIZE:=64}"
: "${JITTER:=0.25}"
: "${COPIES:=1}"
: "${PACK_SHARDS:=}"                     # fixed shard count (recommended on clusters)
: "${RUN_NAME:=default}"
: "${EPOCHS:=10}"
: "${BATCH:=64}"
: "${LR:=0.01}"
: "${OPTIMIZER:=sgd}"
: "${DEVICE:=cpu}"
: "${TRAIN_EXTRA:=}"
TILES="$WORK/tiles"
CACHE="$WORK/cache"
RUN="$WORK/runs/$RUN_NAME"
SPLIT_ARG=()
[ -n "$SPLIT" ] && SPLIT_ARG=(--split "$SPLIT")
THREADS_ARG=()
[ -n "${SLURM_CPUS_PER_TASK:-}" ] && THREADS_ARG=(--threads "$SLURM_CPUS_PER_TASK")
