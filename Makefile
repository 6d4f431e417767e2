# Tessera — two commands: `make run` and `make test`. Each bootstraps its own virtualenv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test fuzz lint bench soak install dev chromium jq wrk clean

# apt-get install NAME, reading the package lists first when they are empty (a new machine).
APT_INSTALL = apt-get install -y $(1) || { apt-get update && apt-get install -y $(1); }

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

dev: $(VENV)/.dev-installed

## Debian's Chromium for the browser tests (Playwright drives it; nothing is downloaded by pip)
chromium:
	@command -v chromium >/dev/null || { $(call APT_INSTALL,chromium); }

## jq, which the README's and docs/api.md's shell examples use (tests/test_docs_examples.py runs them)
jq:
	@command -v jq >/dev/null || { $(call APT_INSTALL,jq); }

## Serve Tessera on http://127.0.0.1:8000 (embedded PostgreSQL unless TESSERA_DATABASE_URL is set)
run: install
	$(BIN)/tessera serve

lint: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

## Lint, check the architecture contracts, run the whole test suite
test: lint chromium jq
	$(BIN)/pytest

FUZZ_EXAMPLES ?= 100
FUZZ_SECONDS ?= 1200

## Fuzz both OpenAPI documents deeply (before a release): no 5xx, every answer as documented
fuzz: dev
	TESSERA_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) TESSERA_FUZZ_SECONDS=$(FUZZ_SECONDS) TESSERA_FUZZ_DEEP=1 \
		$(BIN)/pytest tests/test_fuzz.py

$(VENV)/.bench-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $(VENV)/.installed $@

## Debian's wrk, the load generator of the benchmarks
wrk:
	@command -v wrk >/dev/null || { $(call APT_INSTALL,wrk); }

## Every hot path against the raw-SQL floor (BENCH_* knobs: bench/README.md); needs wrk
bench: $(VENV)/.bench-installed wrk
	$(BIN)/python -m bench

## Mixed traffic at a fixed rate against a real server: errors, p50/p99, memory (SOAK_* knobs: README)
soak: dev
	$(BIN)/python -m soak

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
