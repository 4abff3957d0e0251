# raqib: `make run` starts the daemon on config/raqib.yaml; `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= config/raqib.yaml
STAMP  := $(VENV)/.installed

.PHONY: help install run once check test floors lint typecheck bench clean
.DEFAULT_GOAL := help

help: $(STAMP)
	@echo ".venv is ready. Targets:"
	@echo "make run        install if needed, migrate, start the daemon on $(CONFIG)"
	@echo "make test       the whole test suite (with the wheel test; -m 'not wheel' skips it)"
	@echo "make floors     the suite on the lowest dependency versions allowed (needs PyPI)"
	@echo "make lint       ruff"
	@echo "make typecheck  mypy --strict"
	@echo "make bench      benchmarks (ratios against a baseline in the same run)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/raqib --config $(CONFIG) db upgrade
	$(BIN)/raqib --config $(CONFIG) run

once: $(STAMP)
	$(BIN)/raqib --config $(CONFIG) once

check: $(STAMP)
	$(BIN)/raqib --config $(CONFIG) check

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Its own virtualenv (var/floors-venv), every runtime dependency at its floor.
floors:
	PYTHON=$(PYTHON) .ci/floors -m "not wheel" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check worker tests bench migrations

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
