# The README's two set-up commands are `make example` and `make test`. Both create .venv with
# the interpreter named by PYTHON (default python3, >= 3.10) and install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: example test test-fast test-spark lint typecheck clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.examples: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[examples]'
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

## Run the article's random-forest example on the embedded default (in-process Trials).
example: $(VENV)/.examples
	$(BIN)/python examples/random_forest.py

## Lint: ruff, then the dead-code check (vulture; what it must keep: vulture_whitelist.py).
lint: $(VENV)/.dev
	$(BIN)/ruff check src tests workers bench examples
	$(BIN)/vulture

## Type-check src/ (mypy, strict).
typecheck: $(VENV)/.dev
	$(BIN)/mypy

## Unit tests only: no Redis, no Mongo test server, no worker processes, no Spark (about 40 s).
test-fast: $(VENV)/.dev
	$(BIN)/python -m pytest -q -m "not integration and not slow and not spark"

## The SparkTrials tests alone, on a local Spark (pyspark from the dev extra, Java 17).
test-spark: $(VENV)/.dev
	$(BIN)/python -m pytest -q -m spark

## Run the whole test suite: lint, type-check, then pytest (starts Redis if it is not up).
test: lint typecheck
	scripts/ensure-redis
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
