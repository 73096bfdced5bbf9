# collectbus: two commands on a fresh machine.
#   make run    install into .venv and collect host metrics into ./collectbus.db
#   make test   install into .venv and run every test (SQLite and PostgreSQL)
# Also: make test-fast (the tests that are not slow and need neither PostgreSQL, Slurm
# nor NATS, one pytest-xdist worker per core, idle workers taking queued tests from busy
# ones), make lint, make bench.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_ARGS ?= --duration 15s --interval 1s
# bench/incremental.py goes up to 10M rows; e.g. INCREMENTAL_ARGS="--max-rows 1000000" is quicker.
INCREMENTAL_ARGS ?=
# The tests start several hundred collectbus processes: they cache bytecode as any
# installation does (pip compiles a wheel's modules), even where the environment sets
# PYTHONDONTWRITEBYTECODE, which would compile every module again in every process.
PYTEST := env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest

.PHONY: install run test test-fast lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/collectbus run $(RUN_ARGS)
	$(BIN)/collectbus host --since 5m

test: $(STAMP)
	$(PYTEST)

test-fast: $(STAMP)
	$(PYTEST) -q -n auto --dist worksteal -m "not slow and not postgres and not slurm and not nats"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/host_sample.py
	$(BIN)/python bench/process_sample.py
	$(BIN)/python bench/bus_publish.py
	$(BIN)/python bench/bus_tick.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/chunk_size.py
	$(BIN)/python bench/calls_overhead.py
	$(BIN)/python bench/slurm_parse.py
	$(BIN)/python bench/pbs_scale.py
	$(BIN)/python bench/record_overhead.py
	$(BIN)/python bench/serve_scrape.py
	$(BIN)/python bench/jobs_store.py
	$(BIN)/python bench/job_usage.py
	$(BIN)/python bench/incremental.py $(INCREMENTAL_ARGS)
	$(BIN)/python bench/cli_startup.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .mypy_cache .ruff_cache .pytest_cache
