# Every target bootstraps .venv itself; `make run` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= out
LOAD_USERS ?= 50
LOAD_DURATION ?= 2m
LOAD_WORKERS ?= 1
LOAD_DATABASE_URL ?=
FAULT_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
FAULT_WORKERS ?= 2
BENCH_REPLICATIONS ?= 1000

.PHONY: run test check test-unit test-integration lint format type-check bench load-test \
	fault-test clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[sim,dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/headliner simulate --out $(OUT)

# The unit and integration layers, on every core (each worker has its own PostgreSQL and
# SQLite databases), then every docstring example under src/ as a doctest (a run of its
# own: doctest collection would import the tests' conftest files as modules).
test: $(STAMP)
	$(BIN)/python -m pytest -n auto tests/unit tests/integration \
		--cov=headliner --cov-report=term --cov-report=xml:coverage.xml
	$(BIN)/python -m coverage report --include='*/headliner/core/*' --fail-under=100
	$(BIN)/python -m pytest src/headliner --doctest-modules --ignore=src/headliner/storage/migrations

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

test-integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

type-check: $(STAMP)
	$(BIN)/mypy --strict src

# The house rules CI enforces before the tests: lint, format, import contracts, types.
check: lint type-check

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/decision_quality.py --replications $(BENCH_REPLICATIONS)
	$(BIN)/python benchmarks/plan_speed.py --replications $(BENCH_REPLICATIONS)
	$(BIN)/python benchmarks/dashboard_speed.py

load-test: $(STAMP)
	$(BIN)/python tests/performance/run_load_test.py --users $(LOAD_USERS) \
		--duration $(LOAD_DURATION) --workers $(LOAD_WORKERS) \
		$(if $(LOAD_DATABASE_URL),--database-url $(LOAD_DATABASE_URL),)

# Restarts the PostgreSQL server under load: every other user of it is interrupted.
fault-test: $(STAMP)
	$(BIN)/python tests/performance/run_fault_test.py --workers $(FAULT_WORKERS) \
		--database-url $(FAULT_DATABASE_URL)

clean:
	rm -rf $(VENV) $(OUT) build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis \
		coverage.xml .coverage reports
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
