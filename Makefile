# Every target creates .venv when missing and installs into it; nothing else is needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench install system-tools clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Programs some areas drive (provenance: strace, Graphviz's dot, SWI-Prolog). Installed when
# missing and we are root (as in CI); otherwise named, and the tests needing one skip saying so.
SYSTEM_TOOLS := strace:strace dot:graphviz swipl:swi-prolog-nox

system-tools:
	@missing=""; for pair in $(SYSTEM_TOOLS); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing system tools:$$missing"; \
	  (apt-get install -y -qq --no-install-recommends $$missing >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null 2>&1 && \
	    apt-get install -y -qq --no-install-recommends $$missing >/dev/null 2>&1)) || \
	  echo "could not install$$missing; the tests that need them will skip"; \
	else echo "missing system tools:$$missing (install: sudo apt-get install$$missing)"; fi

install: $(STAMP) system-tools

## Start cairn on embedded defaults (SQLite + local blobs in ./data) with a demo account; the
## archive trusts the demo CA that seed-demo writes (unless CAIRN_ARCHIVE_TRUST_ROOTS is set).
run: install
	CAIRN_DATA_DIR=$${CAIRN_DATA_DIR:-$(CURDIR)/data} $(BIN)/cairn admin seed-demo
	CAIRN_DATA_DIR=$${CAIRN_DATA_DIR:-$(CURDIR)/data} \
	  CAIRN_ARCHIVE_TRUST_ROOTS=$${CAIRN_ARCHIVE_TRUST_ROOTS:-$${CAIRN_DATA_DIR:-$(CURDIR)/data}/demo/trust-roots} \
	  $(BIN)/cairn serve

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
