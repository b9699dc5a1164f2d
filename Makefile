# edgebill: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e . --group dev
	touch $(STAMP)

venv: $(STAMP)

## Start the demo: lab routers, daemon and dashboard on an SQLite file under ./demo-data
demo: $(STAMP)
	$(BIN)/edgebill demo --data-dir demo-data

## Run the whole test suite: lint, types, tests
test: lint typecheck unit

## Style, the import contracts of pyproject.toml, and no module over 600 lines (migrations and tests excepted)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	@find daemon drivers policies web lab bench -name '*.py' -not -path '*/migrations/*' -exec wc -l {} + \
		| awk '$$2 != "total" && $$1 > 600 { print $$2 ": " $$1 " lines, over 600"; bad = 1 } END { exit bad }'

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) demo-data .pytest_cache .mypy_cache .ruff_cache
