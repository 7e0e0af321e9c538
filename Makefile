# All set-up lives here: `make demo` and `make test` create .venv and install what they need.
#
# torch: the default below is the version this project is developed against, as the pip index serves it
# (on Linux, PyPI's wheel is the CUDA build). To use another build, install it into .venv first (see README)
# and run make with TORCH_SPEC= (empty), or point TORCH_SPEC at another requirement, e.g. the CPU wheel:
# TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu".

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
# The suite runs in this many test processes (pytest-xdist; 0: in pytest's own process). Most of its time is
# spent waiting on the processes and servers the tests start, not on the CPU: three keep 2 cores busy.
TEST_PROCESSES ?= 3
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: demo test lint bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.torch: | $(BIN)/python
	@if [ -n "$(TORCH_SPEC)" ] && ! $(BIN)/python -c "import torch" 2>/dev/null; then \
		$(PIP) install $(TORCH_SPEC); fi
	@touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(PIP) install -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(PIP) install -e '.[dev]'
	@touch $@

demo: $(VENV)/.installed
	$(BIN)/hpotool optimize --run-config configs/run_template.yaml --optimize-config configs/optimize_template.yaml

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy src/

test: lint
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist worksteal

bench: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.run

bench-quick: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.run --quick

clean:
	rm -rf $(VENV) studies runs .pytest_cache .mypy_cache .ruff_cache
