# Two commands do all the set-up on a fresh machine:
#   make run    # the main job: `rbl run` on its embedded default
#   make test   # the test suite
# Each creates .venv (and installs the project with its dev extras) when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-kernels test-all lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/rbl run

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# The attack and uncertainty tests again on torch's AVX2 kernels: floats then round as on
# another CPU, so a test that only holds for one machine's rounding fails here.
test-kernels: $(STAMP)
	ATEN_CPU_CAPABILITY=avx2 $(BIN)/python -m pytest -m "not slow" tests/attacks tests/uncertainty

test-all: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python -m pytest benchmarks --benchmark-only

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .benchmarks
