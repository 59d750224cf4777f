# hms-stack front door. Every target bootstraps .venv on first use; `make help` lists them.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
HMS    := $(PY) -m core.cli
DATA   ?= data
WORK   ?= artifacts
SYNTH  ?= data_synth
N_EEGS ?= 600
SEED   ?= 0
GAIN   ?= 1
MODEL  ?=
GPUS   ?=
FOLDS  ?=
VIEW   ?=
ARGS   ?=
OUT    ?=

DEMO_DATA := $(WORK)/demo/data
DEMO_WORK := $(WORK)/demo/work
DEMO_MODELS ?= lgbm_bands effnet1d_wave_cpu mit_b0_spec_cpu
DEMO_EEGS   ?= 400
DEMO_FOLDS  ?= 3
DEMO_ARGS   ?=

.PHONY: help setup test lint synth demo summary folds models prepare oof leaderboard stack submission bundle report \
        bench-features bench-quality bench-stacking bench-train bench-inference faults gpu-check clean

help:  ## this list
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  make %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed  ## create .venv and install the project (editable) with its dev tools

test: setup  ## the test suite (unit tests + tiny end-to-end runs)
	$(PY) -m pytest -q

lint: setup  ## ruff over every package
	$(VENV)/bin/ruff check core features models oof stacking submission synthetic bench tests

synth: setup  ## a synthetic competition folder: SYNTH=data_synth N_EEGS=600 SEED=0 [GAIN=3: amplitudes x3]
	$(HMS) synth $(SYNTH) --n-eegs $(N_EEGS) --seed $(SEED) --gain $(GAIN)

summary: setup  ## rows, recordings, patients, classes, voters, prior KL of DATA
	$(HMS) summary --data $(DATA)

folds: setup  ## WORK/folds.parquet: the shared patient-grouped folds of DATA
	$(HMS) folds --data $(DATA) --work $(WORK)

models: setup  ## list the named recipes (and backbones: ARGS=--backbones)
	$(HMS) models $(ARGS)

prepare: setup  ## cache a view ahead of time: VIEW=eeg_spec
	@test -n "$(VIEW)" || (echo "usage: make prepare VIEW=<name> [ARGS=\"--jobs 4\"]" && exit 2)
	$(HMS) prepare --view $(VIEW) --data $(DATA) --work $(WORK) $(ARGS)

oof: setup  ## train a recipe over the folds: MODEL=mit_b1_spec [FOLDS=0,1] [GPUS=0,1,2,3] [ARGS="epochs=3"]
	@test -n "$(MODEL)" || (echo "usage: make oof MODEL=<name> [FOLDS=0,1] [GPUS=0,1] [ARGS=\"epochs=2\"]; make models lists names" && exit 2)
	$(HMS) oof --model $(MODEL) --data $(DATA) --work $(WORK) $(if $(FOLDS),--folds $(FOLDS)) $(if $(GPUS),--gpus $(GPUS)) $(ARGS)

leaderboard: setup  ## every OOF set in WORK: KL all / high-vote / per fold, recipe, wall time -> WORK/leaderboard.csv
	$(HMS) leaderboard --work $(WORK)

stack: setup  ## stack every OOF set in WORK/oof: [ARGS="trials=200 blend.space=log"]
	$(HMS) stack --data $(DATA) --work $(WORK) $(ARGS)

submission: setup  ## WORK/submission.csv from the test files, fold checkpoints and the saved stacker
	$(HMS) submit --data $(DATA) --work $(WORK) $(if $(OUT),--out $(OUT)) $(ARGS)

bundle: setup  ## WORK/bundle/ and bundle.zip: the offline Kaggle bundle
	$(HMS) bundle --work $(WORK) $(ARGS)

report: setup  ## WORK/report/index.html: KL tables, calibration, weights, examples
	$(HMS) report --work $(WORK) --data $(DATA) $(ARGS)

demo: setup  ## the whole pipeline on a synthetic folder under WORK/demo (CPU, minutes)
	$(HMS) synth $(DEMO_DATA) --n-eegs $(DEMO_EEGS) --seed $(SEED)
	$(HMS) summary --data $(DEMO_DATA)
	$(HMS) folds --data $(DEMO_DATA) --work $(DEMO_WORK) --n-folds $(DEMO_FOLDS)
	for m in $(DEMO_MODELS); do $(HMS) oof --model $$m --data $(DEMO_DATA) --work $(DEMO_WORK) n_folds=$(DEMO_FOLDS) $(DEMO_ARGS) || exit 1; done
	$(HMS) leaderboard --work $(DEMO_WORK)
	$(HMS) stack --data $(DEMO_DATA) --work $(DEMO_WORK) trials=30

bench-features: setup  ## view computation speed against a notebook-style reference
	$(PY) -m bench.features $(ARGS)

bench-quality: setup  ## every CPU preset over 5 folds of SYNTH: KL next to the prior and the floor
	$(PY) -m bench.quality --data $(SYNTH) --work $(WORK)/bench_quality $(ARGS)

bench-stacking: setup  ## the stackers at scale (synthetic OOF sets)
	$(PY) -m bench.stacking $(ARGS)

bench-train: setup  ## training samples/s per recipe, bf16 + channels_last against fp32
	$(PY) -m bench.train_speed $(ARGS)

bench-inference: setup  ## test recordings/s of make submission
	$(PY) -m bench.inference $(ARGS)

faults: setup  ## kill -9, full and read-only disks, corrupt files on a tiny synthetic folder: a table (root, ~6 min)
	$(PY) -m bench.faults $(ARGS)

gpu-check: setup  ## a GPU ready for the real run? samples/s + memory per precision, projected fold times (< 4 min)
	$(PY) -m bench.gpu_check $(ARGS)

clean: setup  ## delete WORK, only a folder hms-stack created (it holds a .hms-stack marker)
	$(HMS) clean --work $(WORK)
