# Two commands do all the set-up: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/scheduler

.PHONY: run test test-sqlite test-postgres lint migrate clean bench

SHELL := /bin/bash

# One .venv, three sets (requirements/): the runtime set for `make run`, the test set (runtime +
# test tools, and django-celery-beat with --no-deps) for `make test` and `make lint`, the benchmark
# set on top for `make bench`.
$(VENV)/.installed: requirements/base.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/base.txt
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed requirements/base.txt requirements/test.txt requirements/celery-beat.txt
	$(PY) -m pip install --quiet -r requirements/test.txt
	$(PY) -m pip install --quiet --no-deps -r requirements/celery-beat.txt
	touch $@

migrate: $(VENV)/.installed
	$(PY) manage.py migrate --noinput

# The web app in the foreground, the scheduler beside it; Ctrl-C stops both.
run: migrate
	$(PY) manage.py ensure_admin
	@echo ""
	@echo "  Admin:     http://$(HOST):$(PORT)/admin/"
	@echo "  Dashboard: http://$(HOST):$(PORT)/scheduler/"
	@echo "  API:       http://$(HOST):$(PORT)/api/v1/scheduler/  (docs: /api/v1/schema/swagger-ui/)"
	@echo ""
	@$(PY) manage.py runscheduler & SCHEDULER=$$!; \
	trap 'kill -TERM $$SCHEDULER 2>/dev/null; wait $$SCHEDULER' EXIT INT TERM; \
	$(PY) manage.py runserver --noreload $(HOST):$(PORT)

test: test-sqlite test-postgres

test-sqlite: $(VENV)/.test-installed
	$(PY) -m pytest -m "not postgres" $(PYTEST_ARGS)

# The whole suite again on PostgreSQL, with the multi-process tests: one SKIPPED line on a laptop
# without a server at TEST_DATABASE_URL, a failure in CI.
test-postgres: $(VENV)/.test-installed
	@if reason=$$($(PY) scripts/service_check.py postgres "$(TEST_DATABASE_URL)" 2>&1); then \
		DATABASE_URL="$(TEST_DATABASE_URL)" $(PY) -m pytest $(PYTEST_ARGS); \
	elif [ -n "$$CI" ]; then \
		echo "FAILED: the PostgreSQL pass: $$reason (CI requires it)"; exit 1; \
	else \
		echo "SKIPPED the PostgreSQL pass: $$reason; start it or set TEST_DATABASE_URL (README: Running the tests)"; \
	fi

# Lint and format check (configured in pyproject.toml); `.ci/run` runs it before `make test`.
# Both always run, so that one run lists every finding, one line each (`ruff check FILE` explains
# one; `ruff format --diff FILE` shows what the formatter would change).
lint: $(VENV)/.test-installed
	@status=0; \
	echo "ruff check ."; $(VENV)/bin/ruff check --output-format concise . || status=1; \
	echo "ruff format --check ."; $(VENV)/bin/ruff format --check --output-format concise . || status=1; \
	exit $$status

# Benchmarks beside django-celery-beat and pgbench (README "Performance"); not part of `make test`.
# Needs PostgreSQL (BENCH_POSTGRES_URL; it drops and recreates the scheduler_bench database), Redis
# (BENCH_REDIS_URL, a private database number) and pgbench. BENCH_ARGS="--quick" for a smoke run.
BENCH_ARGS ?=

# --no-deps on top of the runtime set: see the comments in requirements/bench.txt and celery-beat.txt.
$(VENV)/.bench-installed: $(VENV)/.installed requirements/bench.txt requirements/celery-beat.txt
	$(PY) -m pip install --quiet --no-deps -r requirements/bench.txt
	touch $@

bench: $(VENV)/.bench-installed
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-* staticfiles
