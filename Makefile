# Only Python >= 3.11 and make are assumed; everything else goes into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test bench bench-peers bench-tenants lint install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,dagster]'
	touch $(STAMP)

install: $(STAMP)
	@echo "leadsync is installed in $(VENV): run '. $(VENV)/bin/activate' (then 'leadsync --help'), or call $(BIN)/leadsync"

demo: $(STAMP)
	$(BIN)/leadsync demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto

bench: $(STAMP)
	$(BIN)/python bench/run.py

# leadsync side by side with the peer extractors (installs them under .bench-peers/; not part of `make bench`).
bench-peers: $(STAMP)
	$(BIN)/python bench/bench_peers.py

# 20 tenants x 5,000 people backfilled through Dagster's multiprocess executor (bench/results/tenants.json).
bench-tenants: $(STAMP)
	$(BIN)/python bench/bench_tenants.py

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .leadsync
