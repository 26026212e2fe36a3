# ballast as a Makefile: photos -> tiles -> cache -> run -> evaluation and field scores.
#
#   make -f scripts/pipeline.mk PHOTOS=photos WORK=work            # everything
#   make -f scripts/pipeline.mk PHOTOS=photos WORK=work -j2 score  # ... and score FIELD photos
#   make -f scripts/pipeline.mk ... SWEEP="lr=0.001,0.003 batch=16,32" sweep  # one run per setting
#   make -f scripts/pipeline.mk ... clean                          # remove WORK
#
# Each stage's target is a stamp under $(WORK)/.stamps, touched when the stage succeeds; its
# prerequisites are the previous stage's stamp, a listing of its input files and a parameters
# file, each rewritten only when it changes. The listing holds every photo's path, size and
# mtime, so a photo added (even with an old mtime: cp -p, rsync -a, unzip), deleted, moved to
# another class folder or rewritten reruns the tiler, and the later stages after it (each finds
# itself up to date unless its input really changed). A second `make` does nothing; changing
# e.g. SIZE reruns the packer and everything after it. The stages' own up-to-date checks make
# a rerun cheap even when make decides to call them.

PHOTOS    ?= photos
WORK      ?= work
BIN       ?= target/release
FIELD     ?=
CLASS_MAP ?=

# tiler
TILE_SIZE    ?= 500
TILE_MODE    ?= --grid
VAL_FRACTION ?= 0.2
# stratified or hash (empty: the tiler's default, stratified)
SPLIT        ?=
# png (tile files, inspectable) or none (manifest only: the packer cuts the windows from the
# photos; empty: the tiler's default, png)
TILE_FILES   ?=
SEED         ?= 0
MAX_BAD      ?= 10
TILER_JOBS   ?= 1
# packer
SIZE   ?= 64
JITTER ?= 0.25
COPIES ?= 1
# trainer: settings left empty take the trainer's defaults (RECIPE=report: the field report's
# SGD lr 0.01, momentum 0.9, batch 64)
RUN_NAME  ?= default
RECIPE    ?=
EPOCHS    ?=
BATCH     ?=
LR        ?=
MOMENTUM  ?=
OPTIMIZER ?=
DEVICE    ?= cpu
THREADS   ?=
TRAIN_EXTRA ?=
# sweep: SWEEP holds grid specs (KEY=V1,V2 ...), SWEEP_LIST a settings file; every run gets the
# trainer settings above; SWEEP_JOBS splits the settings into independent jobs (make -j)
SWEEP      ?=
SWEEP_LIST ?=
SWEEP_NAME ?= sweep
SWEEP_JOBS ?= 1

TILES  := $(WORK)/tiles
CACHE  := $(WORK)/cache
RUN    := $(WORK)/runs/$(RUN_NAME)
EVAL   := $(WORK)/eval/$(RUN_NAME)
STAMPS := $(WORK)/.stamps
PARAMS := $(WORK)/.params

THREADS_ARG := $(if $(THREADS),--threads $(THREADS),)
SPLIT_ARG   := $(if $(SPLIT),--split $(SPLIT),)
TILE_FILES_ARG := $(if $(TILE_FILES),--tile-files $(TILE_FILES),)
TILER_ARGS  := --size $(TILE_SIZE) $(TILE_MODE) --val-fraction $(VAL_FRACTION) $(SPLIT_ARG) $(TILE_FILES_ARG) --seed $(SEED) --max-bad $(MAX_BAD) $(THREADS_ARG)
PACKER_ARGS := --size $(SIZE) --jitter $(JITTER) --copies $(COPIES) --seed $(SEED) $(THREADS_ARG)
opt = $(if $(2),--$(1) $(2),)
TRAIN_SETTINGS := $(call opt,recipe,$(RECIPE)) $(call opt,epochs,$(EPOCHS)) $(call opt,batch,$(BATCH)) $(call opt,lr,$(LR)) $(call opt,momentum,$(MOMENTUM)) $(call opt,optimizer,$(OPTIMIZER)) --device $(DEVICE) --seed $(SEED) $(TRAIN_EXTRA)
TRAIN_ARGS  := $(TRAIN_SETTINGS) $(THREADS_ARG)
SWEEPS      := $(WORK)/sweeps/$(SWEEP_NAME)
SWEEP_ARGS  := $(foreach g,$(SWEEP),--grid $(g)) $(if $(SWEEP_LIST),--list $(SWEEP_LIST),)

TILER_JOB_STAMPS := $(foreach i,$(shell seq 0 $$(($(TILER_JOBS)-1))),$(STAMPS)/tiler-$(i)-of-$(TILER_JOBS))
SWEEP_JOB_STAMPS := $(foreach i,$(shell seq 0 $$(($(SWEEP_JOBS)-1))),$(STAMPS)/sweep-$(SWEEP_NAME)-$(i)-of-$(SWEEP_JOBS))

.PHONY: all tiles cache train eval score sweep clean FORCE
.DELETE_ON_ERROR:
# The parameter files are made by a pattern rule; keep make from deleting them as intermediates.
.SECONDARY: $(PARAMS)/tiler $(PARAMS)/packer $(PARAMS)/train $(PARAMS)/photos $(PARAMS)/field $(PARAMS)/sweep-$(SWEEP_NAME)

all: eval
tiles: $(STAMPS)/tiles
cache: $(STAMPS)/cache
train: $(STAMPS)/train
eval: $(STAMPS)/eval
score: $(WORK)/field-scores.csv
sweep: $(SWEEPS)/ranking.txt

# A parameters file changes (and so triggers its stage) only when its contents change.
$(PARAMS)/%: FORCE
	@mkdir -p $(@D)
	@printf '%s\n' '$(ARGS_$*)' > $@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi
ARGS_tiler  = $(TILER_ARGS) $(PHOTOS)

# What is in an input folder: every file's path, size and mtime (ns). Make compares mtimes of
# prerequisites only, which misses deleted, moved and old-mtime files; this listing does not.
LIST_FILES = find $(1) -type f -printf '%P\t%s\t%T@\n' 2>/dev/null | LC_ALL=C sort
$(PARAMS)/photos: FORCE
	@mkdir -p $(@D)
	@$(call LIST_FILES,$(PHOTOS)) > $@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi
$(PARAMS)/field: FORCE
	@mkdir -p $(@D)
	@$(if $(FIELD),$(call LIST_FILES,$(FIELD)),true) > $@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi
ARGS_packer = $(PACKER_ARGS)
ARGS_train  = $(TRAIN_ARGS)
ARGS_sweep-$(SWEEP_NAME) = $(SWEEP_ARGS) -- $(TRAIN_SETTINGS)

# The tiler may run as TILER_JOBS independent jobs (make -j runs them side by side); the job that
# finishes last writes tiles/manifest.jsonl and tiles/tiler.json.
$(STAMPS)/tiler-%-of-$(TILER_JOBS): $(PARAMS)/photos $(PARAMS)/tiler
	@mkdir -p $(@D)
	$(BIN)/tiler --input $(PHOTOS) --out $(TILES) $(TILER_ARGS) --shard $*/$(TILER_JOBS)
	@touch $@

$(STAMPS)/tiles: $(TILER_JOB_STAMPS)
	@test -f $(TILES)/manifest.jsonl || { echo "tiler jobs finished but $(TILES)/manifest.jsonl is missing" >&2; exit 1; }
	@touch $@

$(STAMPS)/cache: $(STAMPS)/tiles $(PARAMS)/packer
	$(BIN)/packer --tiles $(TILES) --out $(CACHE) $(PACKER_ARGS)
	@touch $@

$(STAMPS)/train: $(STAMPS)/cache $(PARAMS)/train
	$(BIN)/trainer --cache $(CACHE) --run $(RUN) $(TRAIN_ARGS) --resume --restart-if-changed
	@touch $@

$(STAMPS)/eval: $(STAMPS)/train
	$(BIN)/scorer eval --run $(RUN) --cache $(CACHE) --out $(EVAL)
	@touch $@

$(WORK)/field-scores.csv: $(STAMPS)/train $(PARAMS)/field
	@test -n "$(FIELD)" || { echo "set FIELD=DIR (photos to score)" >&2; exit 2; }
	$(BIN)/scorer photos --run $(RUN) $(if $(CLASS_MAP),--class-map $(CLASS_MAP),) --out $@ $(FIELD)

# A sweep may run as SWEEP_JOBS independent jobs (setting k goes to job k % SWEEP_JOBS); each run
# is an ordinary run folder, so a rerun skips finished runs and resumes unfinished ones.
$(STAMPS)/sweep-$(SWEEP_NAME)-%-of-$(SWEEP_JOBS): $(STAMPS)/cache $(PARAMS)/sweep-$(SWEEP_NAME)
	@test -n "$(strip $(SWEEP_ARGS))" || { echo "set SWEEP=\"KEY=V1,V2 ...\" or SWEEP_LIST=FILE" >&2; exit 2; }
	@mkdir -p $(@D)
	$(BIN)/trainer sweep --cache $(CACHE) --runs $(SWEEPS) $(SWEEP_ARGS) --shard $*/$(SWEEP_JOBS) $(THREADS_ARG) -- $(TRAIN_SETTINGS)
	@touch $@

# The runs ranked by val accuracy (`trainer runs`), rewritten when any sweep job reran.
$(SWEEPS)/ranking.txt: $(SWEEP_JOB_STAMPS)
	$(BIN)/trainer runs $(SWEEPS) > $@.tmp
	@mv $@.tmp $@

clean:
	rm -rf $(WORK)
