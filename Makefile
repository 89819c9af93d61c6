# Every target creates .venv when missing and installs into it; nothing else is needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Start cairn on embedded defaults (SQLite + local blobs in ./data) with a demo account.
run: install
	CAIRN_DATA_DIR=$${CAIRN_DATA_DIR:-$(CURDIR)/data} $(BIN)/cairn admin seed-demo
	CAIRN_DATA_DIR=$${CAIRN_DATA_DIR:-$(CURDIR)/data} $(BIN)/cairn serve

## Lint, type-check and run the whole test suite (SQLite and, when reachable, PostgreSQL).
test: install lint
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

## Run every benchmark; results belong in bench/RESULTS.md.
bench: install
	@for b in bench/[a-z]*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
