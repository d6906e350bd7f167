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
	$(BIN)/pip install --quiet -e ".[onnx,ray,minari,sb3-contrib,dev]"
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/imitate run --env $(ENV)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy imitate agents envs benchmarks

pytest: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -n 2

test: lint typecheck pytest

# Speed benchmarks (JSON into benchmarks/results/); the quality studies
# (bench_dagger, drift_slopes, distill_temperature, ablate_losses) take minutes to hours.
bench: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.bench_collect
	$(BIN)/python -m benchmarks.bench_bc
	$(BIN)/python -m benchmarks.bench_teacher
	$(BIN)/python -m benchmarks.bench_export

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
