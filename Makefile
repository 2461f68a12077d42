# The README's two commands: `make sample` and `make test`. Both set everything up first.
SHELL := /bin/bash
VENV := .venv/bin

.PHONY: setup sample test lint bench

setup:
	@bash scripts/setup.sh

sample: setup
	PYSPARK_SUBMIT_ARGS="--conf spark.ui.showConsoleProgress=false pyspark-shell" \
	  $(VENV)/python jobs/smart_mixture.py --config conf/sample.yaml

test: setup
	$(VENV)/python -m ruff check .
	$(VENV)/lint-imports --no-cache
	$(VENV)/python -m pytest tests

bench: setup
	$(VENV)/python bench/greedy.py
