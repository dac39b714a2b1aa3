# The two commands a newcomer needs: `make run` and `make test`. `make help` lists the rest.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000

.DEFAULT_GOAL := help
.PHONY: help run test fuzz lint fmt typecheck migrate seed bench bench-soak bench-more clean translations
# The nurse pages' compiled French catalogue (gettext .mo, built from the .po in the repository).
CATALOGUES := $(patsubst %.po,%.mo,$(wildcard backend/web/translations/*/LC_MESSAGES/messages.po))

help: ## Show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/activate
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/activate
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

run: export STAFF_BASE_URL ?= http://$(HOST):$(PORT)
run: $(VENV)/.runtime $(CATALOGUES) ## Install, migrate the SQLite database, seed a demo, serve at 127.0.0.1:5000
	APP_ENV=development $(FLASK) db upgrade
	APP_ENV=development $(FLASK) seed-on-first-run
	@echo ""
	@echo "  Pages:     http://$(HOST):$(PORT)/  (nurses: sign in with a demo login above)"
	@echo "  API:       http://$(HOST):$(PORT)/api/v1/health"
	@echo "  API docs:  http://$(HOST):$(PORT)/api/v1/docs"
	@echo "  Scheduler: running beside the server; reminders are printed here"
	@echo "  Time:      $(FLASK) demo clock advance 1d   (the demo a day later)"
	@echo ""
	@# One scheduler process next to the server (not inside it: a reloader would start two),
	@# stopped cleanly (SIGTERM) when the server stops.
	APP_ENV=development $(FLASK) scheduler run & scheduler=$$!; \
	trap 'kill -TERM $$scheduler 2>/dev/null; wait $$scheduler' EXIT; \
	APP_ENV=development $(FLASK) run --host $(HOST) --port $(PORT)

# One pytest worker per core (pytest-xdist); a test file stays on one worker, so its module
# fixtures (a served app, a browser) are built once. PYTEST_WORKERS=0 runs in this process.
PYTEST_WORKERS ?= auto
test: $(VENV)/.dev $(CATALOGUES) ## Install test dependencies and run the suite (SQLite and PostgreSQL)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The fuzzing stage runs in `make test` with a few examples per operation (about two minutes);
# before a release, many more examples per operation and persona (FUZZ_EXAMPLES=... to choose).
FUZZ_EXAMPLES ?= 300
fuzz: $(VENV)/.dev $(CATALOGUES) ## Long schemathesis run on PostgreSQL before a release (FUZZ_EXAMPLES=300)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -m fuzz $(PYTEST_ARGS)

lint: $(VENV)/.dev ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(VENV)/.dev ## Format and fix what ruff can
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(VENV)/.dev ## mypy only
	$(BIN)/mypy

migrate: $(VENV)/.runtime ## Apply migrations to DATABASE_URL (default: the SQLite file)
	APP_ENV=development $(FLASK) db upgrade

seed: $(VENV)/.runtime ## Seed the demo cohort into an empty database
	APP_ENV=development $(FLASK) demo seed

bench: $(VENV)/.dev ## Issue 17's benchmarks on PostgreSQL (about 15 minutes; BENCH_SCALE=0.1 for a quick look): one response's cost, the network-scale table with the API's memory, reminders; then every goal beside its measure
	$(BIN)/python bench/bench_alerts.py
	@command -v wrk >/dev/null || (apt-get install -y -qq wrk >/dev/null 2>&1 || echo "wrk missing (apt-get install wrk): the ingest pairs will be skipped")
	$(BIN)/python bench/bench_scale.py
	$(BIN)/python bench/bench_reminders.py
	$(BIN)/python bench/summary.py

# The memory goal's hour: make bench's soak is two minutes (a hint); this one is the goal's, on a
# scale-0.1 database, kept apart (bench/results/memory-soak.json) and read by the summary.
bench-soak: $(VENV)/.dev ## The API workers' memory over the goal's one-hour soak (about 65 minutes), then the summary
	BENCH_SCALE=$${BENCH_SCALE:-0.1} BENCH_SOAK_SECONDS=3600 $(BIN)/python bench/bench_memory.py
	$(BIN)/python bench/summary.py

bench-more: $(VENV)/.dev ## The other benchmarks: the rules simulation, research at 10,000 patients, a FHIR Bulk export
	APP_ENV=development $(FLASK) rules simulate --seed 20261201 --patients 3000 --rules 1 --rules 2 --rules 2:candidates
	$(BIN)/python bench/bench_research.py
	$(BIN)/python bench/bench_fhir.py

%.mo: %.po | $(VENV)/.runtime
	$(BIN)/pybabel compile --use-fuzzy -i $< -o $@

translations: $(VENV)/.runtime ## Extract the nurse pages' strings into the catalogues (then translate the new ones)
	$(BIN)/pybabel extract -F backend/web/babel.cfg -k lazy_gettext -k _l -k lazy_pgettext:1c,2 \
		--no-location --sort-output --omit-header -o backend/web/translations/messages.pot .
	$(BIN)/pybabel update -i backend/web/translations/messages.pot -d backend/web/translations \
		--ignore-pot-creation-date --no-fuzzy-matching

clean: ## Remove the virtual environment and the development database
	rm -rf $(VENV) instance
