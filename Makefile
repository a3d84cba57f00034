# The two set-up commands on a fresh machine are `make demo` and `make test`;
# both start with `make venv`, which is quick when nothing changed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.scoretag-installed
UI_PORT ?= 3000

.PHONY: venv demo test ui bench lint

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	  || { echo "scoretag needs Python 3.11 or newer: run make with PYTHON=python3.11 (or newer)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: venv
	$(BIN)/scoretag --profile demo demo run

test: venv
	$(BIN)/pytest

ui: venv
	$(BIN)/scoretag --profile demo ui --host 127.0.0.1 --port $(UI_PORT)

bench: venv
	@$(BIN)/scoretag bench all

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
