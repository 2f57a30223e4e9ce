# make demo: set up and show the proxy at work. make test: set up and run the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install lint mypy test demo bench all clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: install
	$(BIN)/ruff check qbproxy tests bench
	$(BIN)/ruff format --check qbproxy tests bench

mypy: install
	$(BIN)/mypy

test: install
	$(BIN)/pytest

demo: install
	$(BIN)/python -m bench.demo

bench: install
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench

all: lint mypy test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .qbproxy-data
