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

.PHONY: setup test lint synth demo summary folds models oof stack clean help

help:
	@echo "make setup | test | lint | synth | demo | summary | folds | models | oof MODEL=.. | stack"

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

demo: setup
	$(PY) -m features synth $(DEMO_DATA) --n-eegs 120 --seed $(SEED)
	$(PY) -m features summary --data $(DEMO_DATA)
	$(PY) -m oof folds --data $(DEMO_DATA) --work $(DEMO_WORK)

clean:
	rm -rf $(WORK)
