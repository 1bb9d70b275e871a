# Everything the project needs is installed from here: Python packages into .venv, Debian
# packages (ffmpeg, espeak-ng, ...) by scripts/install-debian-deps.sh where apt-get is available.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8080
DATA_DIR ?= ./data

.PHONY: serve test lint typecheck unit bench deps clean generate

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

deps:
	bash scripts/install-debian-deps.sh

serve: $(STAMP)
	$(BIN)/vmsres serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

lint: $(STAMP)
	$(BIN)/ruff check src tests tools scripts
	$(BIN)/ruff format --check src tests tools scripts

typecheck: $(STAMP)
	$(BIN)/mypy src

# Rewrite what is generated from vmsres.protocol: sections of docs/ and the client's models and operations.
generate: $(STAMP)
	$(BIN)/python -m tools.docgen
	$(BIN)/python -m tools.clientgen

unit: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: deps $(STAMP) lint typecheck unit

N ?= 1000000
BENCH_SECONDS ?= 10

bench: deps $(STAMP)
	$(BIN)/python scripts/bench.py --n $(N) --seconds $(BENCH_SECONDS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
