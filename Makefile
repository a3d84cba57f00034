# The two set-up commands on a fresh machine are `make demo` and `make test`;
# both start with `make venv`, which is quick when nothing changed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.scoretag-installed
UI_PORT ?= 3000

.PHONY: venv demo test ui bench lint browser

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	  || { echo "scoretag needs Python 3.11 or newer: run make with PYTHON=python3.11 (or newer)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: venv
	$(BIN)/scoretag --profile demo demo run

# Two workers: the suite waits on servers and subprocesses about as much as it computes.
TEST_WORKERS ?= 2

test: venv browser
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

# The browser tests drive Debian's Chromium (Playwright cannot download its own here).
# Installed when missing and apt can run; otherwise those tests skip and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	      >/dev/null; } || echo "could not install chromium: browser tests will skip"; \
	  else echo "chromium is absent and cannot be installed here: browser tests will skip"; fi; }

ui: venv
	$(BIN)/scoretag --profile demo ui --host 127.0.0.1 --port $(UI_PORT)

bench: venv
	@$(BIN)/scoretag bench all

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
