# hms-stack front door. Every target bootstraps .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DATA   ?= data
WORK   ?= artifacts
SYNTH  ?= data_synth
N_EEGS ?= 600
SEED   ?= 0
MODEL  ?=
FOLDS  ?=
ARGS   ?=

DEMO_DATA := $(WORK)/demo/data
DEMO_WORK := $(WORK)/demo/work

.PHONY: setup test lint synth demo summary folds models prepare oof stack bench-features bench-quality bench-stacking bench-train clean help

help:
	@echo "make setup | test | lint | synth | demo | summary | folds | models | prepare VIEW=.. | oof MODEL=.. | stack"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check features models oof stacking bench tests

synth: setup
	$(PY) -m features synth $(SYNTH) --n-eegs $(N_EEGS) --seed $(SEED)

summary: setup
	$(PY) -m features summary --data $(DATA)

folds: setup
	$(PY) -m oof folds --data $(DATA) --work $(WORK)

models: setup
	$(PY) -m oof models

prepare: setup
	$(PY) -m features prepare --view $(VIEW) --data $(DATA) --work $(WORK)

oof: setup
	@test -n "$(MODEL)" || (echo "usage: make oof MODEL=<name> [FOLDS=0,1] [ARGS=\"epochs=2\"]; make models lists names" && exit 2)
	$(PY) -m oof run --model $(MODEL) --data $(DATA) --work $(WORK) $(if $(FOLDS),--folds $(FOLDS)) $(ARGS)

stack: setup
	$(PY) -m stacking --data $(DATA) --work $(WORK) $(ARGS)

bench-features: setup
	$(PY) -m bench.features $(ARGS)

bench-quality: setup
	$(PY) -m bench.quality --data $(SYNTH) --work $(WORK)/bench_quality $(ARGS)

bench-stacking: setup
	$(PY) -m bench.stacking $(ARGS)

bench-train: setup
	$(PY) -m bench.train_speed $(ARGS)

DEMO_MODELS ?= wave1d_cpu mit_b0_spec_cpu
DEMO_EEGS   ?= 400
DEMO_FOLDS  ?= 3
DEMO_ARGS   ?=

demo: setup
	$(PY) -m features synth $(DEMO_DATA) --n-eegs $(DEMO_EEGS) --seed $(SEED)
	$(PY) -m features summary --data $(DEMO_DATA)
	$(PY) -m oof folds --data $(DEMO_DATA) --work $(DEMO_WORK) --n-folds $(DEMO_FOLDS)
	for m in $(DEMO_MODELS); do $(PY) -m oof run --model $$m --data $(DEMO_DATA) --work $(DEMO_WORK) n_folds=$(DEMO_FOLDS) $(DEMO_ARGS) || exit 1; done
	$(PY) -m stacking --data $(DEMO_DATA) --work $(DEMO_WORK) --trials 30

clean:
	rm -rf $(WORK)

# ---- leaderboard: submission from checkpoints + saved stacker, Kaggle bundle, HTML report ----------
.PHONY: submission bundle report
OUT ?=

submission: setup
	$(PY) -m stacking submit --data $(DATA) --work $(WORK) $(if $(OUT),--out $(OUT)) $(ARGS)

bundle: setup
	$(PY) -m stacking bundle --work $(WORK)

report: setup
	$(PY) -m stacking report --work $(WORK) --data $(DATA)
