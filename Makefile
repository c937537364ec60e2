# The two commands of the README: `make run` (the app on embedded defaults) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# `make run PORT=8001 EMULATOR_PORT=5056`: a second checkout beside the first.
PORT ?= 8000
EMULATOR_PORT ?= 5055

.PHONY: run test lint format install install-test install-e2e clean system-deps-run system-deps-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[demo]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $(VENV)/.installed $@

# axe-core for the browser tests' accessibility checks, from the npm registry at the version
# tests/e2e/package-lock.json pins (npm ci checks its integrity hash).
AXE := tests/e2e/node_modules/axe-core/axe.min.js
$(AXE): tests/e2e/package.json tests/e2e/package-lock.json
	npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error
	touch $@

# Debian packages outside the venv: installed when this user may, else the exact command to run.
system-deps-run:
	@PYTHON=$(PYTHON) bash scripts/system-deps.sh run
system-deps-test:
	@PYTHON=$(PYTHON) bash scripts/system-deps.sh test

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test $(AXE)
install-e2e: $(AXE)

run: system-deps-run install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python manage.py create_signing_cert --if-missing --common-name "Readiness demo"
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py serve --demo-aws --bind 127.0.0.1:$(PORT) --moto-port $(EMULATOR_PORT)

test: system-deps-test install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python manage.py makemigrations --check --dry-run -v0
	DATA_DIR=$(CURDIR)/data/test $(BIN)/pytest $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) data .pytest_cache tests/e2e/node_modules
