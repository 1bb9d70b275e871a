# Everything the project needs is installed from here: Python packages into .venv, Debian
# packages (ffmpeg, espeak-ng, ...) by scripts/install-debian-deps.sh where apt-get is available.
# `make serve` installs only what serving needs; `make test` (and lint, typecheck, bench) the dev tools.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SERVE_STAMP := $(VENV)/.installed-serve
# make serve [HOST=...] [PORT=...] [DATA_DIR=...] [ARGS="--review manual ..."]; unset ones are left
# to vmsres (its defaults, or the VMSRES_* environment variables).
HOST ?=
PORT ?=
DATA_DIR ?=
ARGS ?=

.PHONY: serve test lint typecheck unit bench deps clean generate

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

# The runtime package alone (the client and the embedded server); a dev install already has it.
$(SERVE_STAMP): $(BIN)/python pyproject.toml
	@[ -f $(STAMP) ] && [ $(STAMP) -nt pyproject.toml ] || $(BIN)/python -m pip install -q -e .
	@touch $(SERVE_STAMP)

deps:
	bash scripts/install-debian-deps.sh dev

serve: $(SERVE_STAMP)
	bash scripts/install-debian-deps.sh serve
	$(BIN)/vmsres serve $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT)) $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests tools scripts
	$(BIN)/ruff format --check src tests tools scripts

typecheck: $(STAMP)
	$(BIN)/mypy src

# Rewrite what is generated from vmsres.protocol: sections of docs/ and the client's models and operations.
generate: $(STAMP)
	$(BIN)/python -m tools.clientgen
	$(BIN)/python -m tools.docgen

unit: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: deps $(STAMP) lint typecheck unit

# make bench [N=...] [BENCH_SECONDS=...] [STORE_TOTAL=...] [ACCOUNTS=...] [ROWS='pattern,...']
# [BACKENDS=sqlite,postgresql] [BENCH_OUT=file]
# (docs/benchmarks.md): N resources in the big account among STORE_TOTAL (default 5 N) in ACCOUNTS.
N ?= 1000000
BENCH_SECONDS ?= 10
STORE_TOTAL ?= $(shell echo $$(( $(N) * 5 )))
ACCOUNTS ?= 1000
ROWS ?=
BACKENDS ?= sqlite,postgresql
BENCH_OUT ?= docs/benchmarks.md

bench: deps $(STAMP)
	$(BIN)/python scripts/bench.py --n $(N) --seconds $(BENCH_SECONDS) --store-total $(STORE_TOTAL) --accounts $(ACCOUNTS) \
		--backends $(BACKENDS) --out $(BENCH_OUT) $(if $(ROWS),--rows '$(ROWS)')

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
