# One entry point. `make test` and `make dev` build .venv/ themselves on a fresh machine.
# Function Compute runs python3.10: use it when the machine has it, else the default python3.
PYTHON_BOOT ?= $(shell for p in python3.10 $$(ls -d $$HOME/.pyenv/versions/3.10*/bin/python3.10 2>/dev/null) python3; do \
	$$p -c 'import sys' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: venv fc-runtime dev test lint typecheck check clean build deploy smoke preview tables

venv: $(STAMP)

$(STAMP): requirements.txt requirements-tablestore.txt requirements-dev.txt requirements-sdk-check.txt
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -r requirements-sdk-check.txt
	touch $@

# A replica of FC's python3.10 runtime: its built-in modules (deploy/fc-runtime.txt) in a venv
# whose site-packages come after the code directory on sys.path, as on FC. The package tests run
# the built packages in it; `make bench` times their cold starts in it.
FC_VENV := .venv-fc
FC_STAMP := $(FC_VENV)/.installed-stamp
fc-runtime: $(FC_STAMP)

$(FC_STAMP): deploy/fc-runtime.txt
	@$(PYTHON_BOOT) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' || { \
		echo "fc-runtime: FC's runtime is python3.10; $(PYTHON_BOOT) is not (install python3.10)"; exit 1; }
	rm -rf $(FC_VENV)
	$(PYTHON_BOOT) -m venv $(FC_VENV)
	$(FC_VENV)/bin/python -m pip install --disable-pip-version-check -q --no-deps -r deploy/fc-runtime.txt
	$(FC_VENV)/bin/python -m pip check --disable-pip-version-check
	@# The runtime's modules come compiled: a cold start must not pay for compiling them.
	$(FC_VENV)/bin/python -m compileall -q $(FC_VENV)/lib >/dev/null 2>&1 || true
	touch $@

test: $(STAMP) $(FC_STAMP)
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
# --allow-versioned-bucket: deploy to a bucket with versioning on (docs/deploy.md says what it costs).
PREFLIGHT_ARGS ?=
NODE_STAMP := node_modules/.installed-stamp

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

build: $(STAMP)
	$(PY) -m deploy.build

deploy: build $(NODE_STAMP)
	$(PY) -m deploy.preflight $(TEMPLATE) $(PREFLIGHT_ARGS)
	npx --no -- s deploy -t $(TEMPLATE) -y

smoke: $(STAMP)
	$(PY) -m deploy.smoke

# Where OSS's documentation is silent: run each experiment on a real bucket and on the emulator,
# print both, exit 1 on a difference (docs/probe.md). Without credentials it says so, exits 0.
.PHONY: probe
probe: $(STAMP)
	$(PY) -m deploy.probe

preview: $(NODE_STAMP)
	npx --no -- s preview -t template.fc3.yml

# Benchmarks: figures, not tests. Builds the packages first so their sizes and cold starts are
# measured from dist/; prints a table and writes bench/RESULTS.md.
.PHONY: bench
bench: build $(FC_STAMP)
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) $(FC_VENV) dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
