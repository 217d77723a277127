# Two commands do all set-up: `make train` and `make test`. Both create .venv when absent.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?= model=gan data=mnist

.PHONY: help install install-dev train test test-all lint format tensorboard clean
.DEFAULT_GOAL := help

help:  ## list these targets
	@awk -F ':.*## ' '/^[a-z-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed  ## install the package into .venv

install-dev: $(VENV)/.installed-dev  ## install with test and lint tools

train: install  ## train; pass Hydra overrides with ARGS="..."
	$(BIN)/python train.py $(ARGS)

test: install-dev  ## fast tests
	$(BIN)/python -m pytest

test-all: install-dev  ## fast and slow tests
	$(BIN)/python -m pytest -m ""

lint: install-dev  ## check the code with ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev  ## fix what ruff can and format the code
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

tensorboard: install  ## watch runs under ./logs
	$(BIN)/tensorboard --logdir logs

clean:  ## remove run outputs and caches (keeps .venv and data)
	rm -rf logs outputs .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +
