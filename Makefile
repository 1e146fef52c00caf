# The two commands of the README: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
HAPAIR := $(VENV)/bin/hapair
# Debian's python3: a virtualenv made from it is usable by non-root users (LAB_NOTES.md).
BASE_PYTHON ?= /usr/bin/python3

.PHONY: deps venv test test-unit test-lab demo lint lab-down clean

deps:
	scripts/install-deps

$(VENV)/.installed: pyproject.toml
	$(BASE_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

test: deps venv
	$(PY) -m pytest -q --durations=15

test-unit: venv
	$(PY) -m pytest -q -m 'not lab'

test-lab: deps venv
	$(PY) -m pytest -q -m lab

demo: deps venv
	scripts/demo

lint: venv
	$(PY) -m ruff check src tests cms bench

lab-down: venv
	$(HAPAIR) lab down

clean:
	rm -rf $(VENV) build *.egg-info
