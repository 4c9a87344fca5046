# Voix des Quartiers — `make run` to try it, `make test` to check it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# The project's packages (as in pyproject.toml): compiled to bytecode before serving, so that a
# start does not compile them again where Python does not keep what it compiles
# (PYTHONDONTWRITEBYTECODE): 0.5 s of every start-up.
PACKAGES := voix accounts tables maps proposals votes meetings exports audit help translations followup jobs notifications
export PICCOLO_CONF := voix.piccolo_conf

.DEFAULT_GOAL := help
.PHONY: help run test lint format install install-dev lock messages migrations bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

run: install ## Install, migrate, seed the demo (once) and serve on http://127.0.0.1:$(PORT) with SQLite in ./var
	$(BIN)/python -m compileall -q $(PACKAGES)
	$(BIN)/voix serve --demo --port $(PORT)

test: install-dev ## Run the whole suite on SQLite, then on PostgreSQL (required when CI=true)
	@bash tests/run-suite

lint: install-dev ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install-dev ## Format the code with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

install: $(VENV)/.installed ## Create .venv with the pinned runtime dependencies

install-dev: $(VENV)/.installed-dev ## Add the pinned test and lint tools

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

lock: install ## Re-pin requirements*.txt from pyproject.toml
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile -q pyproject.toml --python-version 3.11 -o requirements.txt
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --python-version 3.11 -o requirements-dev.txt

messages: install ## Extract strings into locales/messages.pot and update the catalogs
	$(BIN)/pybabel extract -F babel.cfg -k N_ --no-location --sort-output --ignore-dirs=".venv tests bench var" \
		--project "Voix des Quartiers" --copyright-holder "Voix des Quartiers" -o locales/messages.pot .
	$(BIN)/pybabel update -i locales/messages.pot -d locales --no-fuzzy-matching --ignore-obsolete

migrations: install ## Generate migrations for APP (needs PostgreSQL: DATABASE_URL=postgresql://…)
	$(BIN)/piccolo migrations new $(APP) --auto

bench: install ## Issue 15's benchmark, app against its floor (needs wrk; ARGS="--quick --rows 10000 --db sqlite")
	$(BIN)/python bench/run.py $(ARGS)

clean: ## Remove the virtualenv and local data
	rm -rf $(VENV) var
