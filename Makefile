# Quanta: `make run` serves the console with a demo account; `make test` runs every check.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1
SCHEMA := docs/api/openapi.json

.PHONY: install run run-services test lint format schema schema-check migrate demo clean

$(BIN)/.installed: pyproject.toml
	@python=$$(bin/find-python) || exit 1; \
	if [ ! -x $(BIN)/python ]; then echo "Creating $(VENV) with $$python"; "$$python" -m venv $(VENV); fi
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $@

install: $(BIN)/.installed

migrate: install
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py seed_demo

## Serve the console on http://localhost:$(PORT) with the simulated demo fleet (Procfile.dev); embedded
## default unless DATABASE_URL/REDIS_URL are set. Ctrl-C stops both.
run: demo
	@echo "Quanta is starting on http://localhost:$(PORT)"
	HOST=$(HOST) PORT=$(PORT) $(BIN)/python bin/procfile --procfile Procfile.dev run

## The production processes (Procfile) against PostgreSQL and Redis; web on http://$(HOST):$(PORT).
run-services: install
	@test -n "$$DATABASE_URL" -a -n "$$REDIS_URL" || { echo "Set DATABASE_URL and REDIS_URL (see docs/deploy.md)."; exit 1; }
	$(BIN)/python bin/procfile exec release
	PORT=$(PORT) BIND_ADDRESS=$(HOST) $(BIN)/python bin/procfile run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schema: install
	$(BIN)/python manage.py spectacular --file $(SCHEMA) --format openapi-json --validate --fail-on-warn

schema-check: install
	@tmp=$$(mktemp); trap 'rm -f $$tmp' EXIT; \
	$(BIN)/python manage.py spectacular --file $$tmp --format openapi-json --validate --fail-on-warn && \
	diff -u $(SCHEMA) $$tmp > /dev/null || { echo "The API schema drifted from $(SCHEMA): run 'make schema' and commit it."; diff -u $(SCHEMA) $$tmp | head -40; exit 1; }

## Every check CI runs: lint, migrations, schema drift, then the whole pytest suite.
test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(MAKE) --no-print-directory schema-check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var/*.sqlite3* var/static
