# The README's two set-up commands are `make example` and `make test`. Both create .venv with
# the interpreter named by PYTHON (default python3, >= 3.10) and install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DIST ?= dist

.PHONY: example test test-fast lint typecheck dist clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The README's next steps after `make example` use scikit-learn (examples/) and `parzen plot`.
$(VENV)/.examples: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[examples,plots]'
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

## Unit tests only: no Redis, no Mongo test server, no worker processes (about 40 s).
test-fast: $(VENV)/.dev
	$(BIN)/python -m pytest -q -m "not integration and not slow"

## Run the whole test suite: lint, type-check, then pytest (starts Redis if it is not up).
test: lint typecheck
	scripts/ensure-redis
	$(BIN)/python -m pytest -q

## Build the wheel that users install (README, "Use it in your project") into $(DIST)/.
## pip builds it (setuptools in an isolated build environment): no tool beyond pip.
dist: | $(BIN)/python
	rm -rf build $(DIST)/parzen-*.whl  # a stale build/ could put deleted modules in the wheel
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir $(DIST) .

clean:
	rm -rf $(VENV) build $(DIST) *.egg-info .mypy_cache .ruff_cache .pytest_cache
