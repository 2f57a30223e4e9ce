# make demo: set up and show the proxy at work. make test: set up and run the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install node-deps lint mypy test demo bench bench-tools bench-hitpath all clean

install: $(STAMP)

# The fake Intuit (fake-intuit/) is a distribution of its own: the tests, demo and benchmark
# use it; the qbproxy wheel does not contain it.
$(STAMP): setup.cfg pyproject.toml fake-intuit/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ./fake-intuit -e '.[test]'
	touch $(STAMP)

# node-quickbooks, the versions in tests/node/package-lock.json, for
# tests/integration/test_node_quickbooks.py. Without npm this fails: the test is not skipped.
NODE_DIR := tests/node
NODE_STAMP := $(NODE_DIR)/node_modules/.installed-stamp

node-deps: $(NODE_STAMP)

$(NODE_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "make: npm not found; install Node.js 18+ with npm (tests/integration/test_node_quickbooks.py runs node-quickbooks)" >&2; exit 1; }
	npm ci --prefix $(NODE_DIR) --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

lint: install
	$(BIN)/ruff check qbproxy fake-intuit tests bench
	$(BIN)/ruff format --check qbproxy fake-intuit tests bench

mypy: install
	$(BIN)/mypy

test: install node-deps
	$(BIN)/pytest

demo: install
	$(BIN)/python -m bench.demo

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# nginx (the contender) and wrk (the load generator) from the system package manager.
bench-tools:
	@{ { command -v nginx || test -x /usr/sbin/nginx; } && command -v wrk; } >/dev/null 2>&1 || \
	  { command -v apt-get >/dev/null 2>&1 && $(SUDO) apt-get update -qq && \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk; } || \
	  echo "bench: could not install nginx/wrk; nginx will be reported unavailable"

bench: install bench-tools
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench

bench-hitpath: install bench-tools
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench hitpath

all: lint mypy test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .qbproxy-data $(NODE_DIR)/node_modules
