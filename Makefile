# One entry point. `make test` and `make dev` build .venv/ themselves on a fresh machine.
# Function Compute runs python3.10: use it when the machine has it, else the default python3.
PYTHON_BOOT ?= $(shell for p in python3.10 $$(ls -d $$HOME/.pyenv/versions/3.10*/bin/python3.10 2>/dev/null) python3; do \
	$$p -c 'import sys' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: venv dev test lint typecheck check clean build deploy smoke preview tables

venv: $(STAMP)

$(STAMP): requirements.txt requirements-tablestore.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

check: lint typecheck test

# The local stack in the foreground (Ctrl-C stops it): OSS emulator, sign function + demo page,
# callback function. Ports, data dir and every setting come from the environment (README).
dev: $(STAMP)
	$(PY) -m local.dev

# Create the record table and the grant ledger (Tablestore: tables + indexes; SQLite: the file),
# idempotently.
tables: $(STAMP)
	$(PY) -m tools.tables

# Sweep the grants that ended without a record: backfill lost callbacks, release unused quota
# (docs/reliability.md); the deployed settings when OSS_BUCKET is in the environment, else the
# `make dev` stack's. Options go in RECONCILE_ARGS: --dry-run; --full audits the whole bucket, e.g.
# make reconcile RECONCILE_ARGS="--full --dry-run --since 2024-01-01 --prefix uploads/alice/"
.PHONY: reconcile
RECONCILE_ARGS ?=
reconcile: $(STAMP)
	$(PY) -m $(if $(OSS_BUCKET),tools.reconcile,local.reconcile) $(RECONCILE_ARGS)

# Deployment (docs/deploy.md). The Serverless Devs CLI is pinned in package.json.
TEMPLATE ?= template.yml
NODE_STAMP := node_modules/.installed-stamp

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

build: $(STAMP)
	$(PY) -m deploy.build

deploy: build $(NODE_STAMP)
	$(PY) -m deploy.preflight $(TEMPLATE)
	npx --no -- s deploy -t $(TEMPLATE) -y

smoke: $(STAMP)
	$(PY) -m deploy.smoke

preview: $(NODE_STAMP)
	npx --no -- s preview -t template.fc3.yml

# Benchmarks: figures, not tests. Builds the packages first so their sizes and cold starts are
# measured from dist/; prints a table and writes bench/RESULTS.md.
.PHONY: bench
bench: build
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
