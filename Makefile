# The README's two commands. Each creates .venv when missing.
# torch is installed first, pinned to the CPU build that exists on this machine kind;
# pyproject keeps `torch>=2.4` loose so the package itself is not tied to it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_PIN := torch==2.13.0
ENV ?= CartPole-v1

.PHONY: run test lint typecheck pytest bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-run: $(BIN)/activate pyproject.toml
	$(BIN)/pip install --quiet $(TORCH_PIN)
	$(BIN)/pip install --quiet -e ".[onnx]"
	touch $@

$(VENV)/.installed-dev: $(BIN)/activate pyproject.toml
	$(BIN)/pip install --quiet $(TORCH_PIN)
	$(BIN)/pip install --quiet -e ".[onnx,dev]"
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/imitate run --env $(ENV)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy imitate agents envs

pytest: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -n 2

test: lint typecheck pytest

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_collect.py
	$(BIN)/python benchmarks/bench_bc.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
