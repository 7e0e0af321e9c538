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

# `make test-oldest`: the oldest release of each dependency pyproject.toml allows (constraints/oldest.txt),
# in a venv of its own, on the tests that exercise each of them (not the whole suite: 16 minutes on 2
# cores). CI does not run it.
OLDEST_VENV ?= .venv-oldest
OLDEST_BIN := $(OLDEST_VENV)/bin
OLDEST_TESTS ?= tests/test_config.py tests/test_cli.py tests/test_errors_catalogue.py tests/test_objective.py \
	tests/test_pruning.py tests/test_samplers.py tests/test_fuzz.py tests/test_export.py tests/test_browse.py \
	tests/test_multi_objective.py tests/test_report.py tests/test_importance.py tests/test_tracking.py \
	tests/test_library_internals.py tests/test_optuna_internals.py tests/test_storage.py tests/test_rdb.py \
	tests/test_workers.py::test_four_workers_end_with_exactly_the_target \
	tests/test_workers.py::test_workers_flag_runs_the_study_from_the_cli \
	tests/test_workers.py::test_a_storage_server_that_goes_away_ends_the_study_in_one_line_and_it_resumes
# Not a fault of hpotool's: the libpq that psycopg-binary 3.1.4 bundles words a refused connection otherwise
# ("connection failed: Connection refused"), and the catalogue holds the line as today's libpq gives it.
OLDEST_DESELECT ?= --deselect "tests/test_errors_catalogue.py::test_bad_input_is_one_line_exit_2_and_writes_nothing[unreachable-storage]"

.PHONY: demo test test-oldest lint bench bench-quick clean

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
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist worksteal --durations=30

$(OLDEST_BIN)/python:
	$(PYTHON) -m venv $(OLDEST_VENV)

$(OLDEST_VENV)/.installed: pyproject.toml constraints/oldest.txt | $(OLDEST_BIN)/python
	@if [ -n "$(TORCH_SPEC)" ] && ! $(OLDEST_BIN)/python -c "import torch" 2>/dev/null; then \
		$(OLDEST_BIN)/python -m pip install $(TORCH_SPEC); fi
	$(OLDEST_BIN)/python -m pip install -c constraints/oldest.txt -e '.[postgres,mysql,redis,mlflow]' \
		pytest pytest-xdist pytest-timeout hypothesis
	@touch $@

test-oldest: $(OLDEST_VENV)/.installed
	$(OLDEST_BIN)/python -m pip list --format=freeze | grep -i -E '^(optuna|pydantic|pyyaml|typer|rich|plotly|scikit-learn|cmaes|numpy|pandas|psycopg|pymysql|redis|mlflow-skinny|torch)='
	$(OLDEST_BIN)/pytest -n $(TEST_PROCESSES) --dist worksteal $(OLDEST_TESTS) $(OLDEST_DESELECT)
	tmp=$$(mktemp -d) && cd $$tmp && $(CURDIR)/$(OLDEST_BIN)/hpotool optimize --quiet \
		--run-config $(CURDIR)/configs/run_template.yaml --optimize-config $(CURDIR)/configs/optimize_template.yaml; \
		status=$$?; rm -rf $$tmp; exit $$status

bench: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.run

bench-quick: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.run --quick

clean:
	rm -rf $(VENV) $(OLDEST_VENV) studies runs .pytest_cache .mypy_cache .ruff_cache
