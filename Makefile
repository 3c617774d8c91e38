# Two commands on a fresh machine with Python 3.11+ and make:
#   make run    create .venv, install, migrate, seed the demo when the database is empty, serve
#   make test   create .venv, install with test extras, run ruff and the whole suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
CHROMIUM ?= $(shell command -v chromium 2>/dev/null || echo /usr/bin/chromium)
T := src/computelease/web/translations

.PHONY: run test lint install i18n bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "computelease needs Python 3.11 or newer; run: make PYTHON=python3.11 ..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/computelease serve --demo --host $(HOST) --port $(PORT)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks

test: lint
	@if [ -x "$(CHROMIUM)" ]; then echo "browser tests: using $(CHROMIUM)"; \
	else echo "browser tests: SKIPPED, no Chromium found (apt-get install chromium chromium-driver)"; fi
	@if [ -n "$$COMPUTELEASE_TEST_POSTGRES_URL" ]; then echo "database tests: SQLite and PostgreSQL"; \
	else echo "database tests: SQLite only (set COMPUTELEASE_TEST_POSTGRES_URL to add PostgreSQL)"; fi
	COMPUTELEASE_CHROMIUM=$(CHROMIUM) $(BIN)/pytest

# Re-extract translatable strings and merge them into the catalogs; then translate the new zh_CN entries.
i18n: $(VENV)/.installed-test
	$(BIN)/pybabel extract -F babel.cfg -k N_ --no-location --sort-output --project computelease \
		--copyright-holder "computelease developers" -o $(T)/messages.pot .
	$(BIN)/pybabel update -i $(T)/messages.pot -d $(T) --no-fuzzy-matching --ignore-obsolete

bench: $(VENV)/.installed-test
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b; done

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache .hypothesis
