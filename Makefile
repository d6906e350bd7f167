# The README's two commands. Each creates .venv when missing.
# torch is installed first, pinned to the CPU build that exists on this machine kind;
# pyproject keeps `torch>=2.4` loose so the package itself is not tied to it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_PIN := torch==2.13.0
ENV ?= CartPole-v1

.PHONY: run test lint typecheck pytest bench bench-startup actors bench-embedded arm-toolchain browser clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-run: $(BIN)/activate pyproject.toml
	$(BIN)/pip install --quiet $(TORCH_PIN)
	$(BIN)/pip install --quiet -e ".[onnx]"
	touch $@

$(VENV)/.installed-dev: $(BIN)/activate pyproject.toml
	$(BIN)/pip install --quiet $(TORCH_PIN)
	$(BIN)/pip install --quiet -e ".[onnx,ray,minari,mujoco,bench,sb3-contrib,dev]"
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

# Start-up of the command line (medians of 5 fresh processes) and the distill parity.
bench-startup: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.bench_startup --distill

# Regenerate the numpy actors cached beside the shipped expert zips (agents/actors.py).
actors: $(VENV)/.installed-dev
	$(BIN)/python -m agents.actors

# Headless Chromium for the report.html test (tests/test_report.py skips without it).
# Debian/Ubuntu package `chromium` (~100 MB, so not part of the dev install); CI runs this.
browser:
	command -v chromium >/dev/null 2>&1 || ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium)

# The C exports on Cortex-M0 / M4F under QEMU (benchmarks/bench_embedded.py); installs the
# cross toolchain and QEMU from the system package manager when they are missing (Debian /
# Ubuntu apt; as root, or through sudo when it is there). tests/test_embedded.py runs the
# same harness whenever these are on PATH.
ARM_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
SUDO := $(shell [ "$$(id -u)" = 0 ] || command -v sudo)

arm-toolchain:
	@if command -v arm-none-eabi-gcc >/dev/null && command -v qemu-system-arm >/dev/null; then \
		echo "arm-none-eabi-gcc and qemu-system-arm found"; \
	elif command -v apt-get >/dev/null; then \
		$(SUDO) apt-get update && $(SUDO) apt-get install -y $(ARM_PACKAGES); \
	else \
		echo "install $(ARM_PACKAGES) with your package manager" >&2; exit 1; \
	fi

bench-embedded: $(VENV)/.installed-dev arm-toolchain
	$(BIN)/pip install --quiet -e ".[embedded]"
	$(BIN)/python -m benchmarks.bench_embedded

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
