# crossintel — the two commands of the quick start are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
PYTEST_ARGS ?=
BENCH_ARGS ?=

export CROSSINTEL_HOST := $(HOST)
export CROSSINTEL_PORT := $(PORT)

.PHONY: run test lock lint bench bench-cases bench-deconfliction clean help

help:
	@echo "make run    set up, start the embedded PostgreSQL, migrate, load demo data, serve"
	@echo "make test   set up, run the whole test suite on a fresh database"
	@echo "make lock   recompile the hash-pinned lock files from pyproject.toml"
	@echo "make lint   ruff"
	@echo "make bench  records at 1M: the app against the bare baseline (BENCH_ARGS=...)"
	@echo "make bench-cases  review queue and case search with 100,000 cases"
	@echo "make bench-deconfliction  hit detection at 2M selectors, conflicts at 100,000 operations"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Runtime dependencies only, from the hash-pinned lock.
$(VENV)/.runtime: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# Runtime + test dependencies.
$(VENV)/.dev: requirements-dev.lock $(VENV)/.runtime
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
	touch $@

run: $(VENV)/.runtime
	$(BIN)/crossintel serve --migrate --demo --host $(HOST) --port $(PORT)

test: $(VENV)/.dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check app tests bench migrations

lock:
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 -o requirements-dev.lock

bench: $(VENV)/.dev
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-cases: $(VENV)/.dev
	$(BIN)/python -m bench.cases $(BENCH_ARGS)

bench-deconfliction: $(VENV)/.dev
	$(BIN)/python -m bench.deconfliction $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
