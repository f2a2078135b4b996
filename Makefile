# Two commands for a newcomer:  `make run`  and  `make test`.
# Everything else here is what those two are made of.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PY_RUNTIME   := 3.13
UV_VERSION   := 0.13.9
TOOLS        := .tools
UV           := $(TOOLS)/uv/bin/uv
SAM          := $(TOOLS)/sam/bin/sam
PYTHON       := .venv/bin/python
BUILD_DIR    ?= .aws-sam/build

export PYTHONPATH := $(CURDIR)/layers/invite_lib:$(CURDIR)/local
export SAM_CLI_TELEMETRY := 0
export UV_PYTHON_DOWNLOADS := never

.PHONY: help install install-sam run invoke admin-token deploy delete smoke test check lint typecheck pytest validate build lock requirements bench faults-doc openapi clean

help:
	@echo "make run    install what is needed, then run the API on http://127.0.0.1:3000 (PORT overrides)"
	@echo "make test   install what is needed, then run every check: lint, types, tests, sam validate and build"
	@echo "make invoke FUNCTION=RevokerFunction EVENT=events/revoke_rule_sweep.json   one local invocation"
	@echo "make admin-token NAME=dashboard   a new admin token for DELETE, and its secret entry"
	@echo "make lock   re-resolve uv.lock and regenerate layers/invite_lib/requirements.txt from it"
	@echo "make bench  run the benchmarks; every figure lands in bench/results.json"
	@echo "make deploy / make delete   the stack in your AWS account (docs/deploy.md)"
	@echo "make smoke API_URL=... CODE=... ORIGIN=...   check a deployed API as a browser would"
	@echo "make faults-doc   regenerate docs/faults.md from the fault matrix's rows"
	@echo "make openapi      regenerate functions/docs/openapi.json from the code"

$(UV):
	python3 -m venv $(TOOLS)/uv
	$(TOOLS)/uv/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# The project's environment, exactly as uv.lock pins it, on the Lambda runtime's Python.
.venv/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --python "$$(scripts/find-python $(PY_RUNTIME))"
	@touch $@

install: .venv/.synced

# aws-sam-cli pins its own boto3 and pydantic, so it lives in a virtual environment of its own.
$(TOOLS)/sam/.synced: $(UV) tools/sam/requirements.txt
	$(UV) venv --quiet --allow-existing --python "$$(scripts/find-python $(PY_RUNTIME))" $(TOOLS)/sam
	$(UV) pip sync --quiet --python $(TOOLS)/sam/bin/python tools/sam/requirements.txt
	@touch $@

install-sam: $(TOOLS)/sam/.synced

run: install
	$(PYTHON) -m invite_proxy_local

# A new admin token for DELETE, and the entry for the admin token secret: make admin-token NAME=dashboard
admin-token: install
	$(PYTHON) -m invite_proxy.domain.admin_tokens $(NAME)

# `sam local invoke` without Docker: make invoke FUNCTION=RevokerFunction EVENT=events/revoke_rule_sweep.json
invoke: install
	$(PYTHON) -m invite_proxy_local.invoke $(FUNCTION) $(EVENT)

test: install install-sam
	$(MAKE) --no-print-directory check

check: lint typecheck requirements-check pytest

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

typecheck:
	$(PYTHON) -m mypy

requirements-check:
	@$(UV) export --quiet --frozen --no-dev --no-emit-project --format requirements-txt \
	  -o /tmp/invite-proxy-requirements.txt && \
	  diff -I '^#' -q /tmp/invite-proxy-requirements.txt layers/invite_lib/requirements.txt >/dev/null || \
	  { echo "layers/invite_lib/requirements.txt is out of date with uv.lock: run 'make lock'"; exit 1; }

# The sam tests (validate --lint, build) find the CLI here. One worker per core; a test
# file stays on one worker, so a file's servers and processes are never shared.
PYTEST_ARGS ?= -n auto --dist loadfile
pytest:
	SAM_BIN=$(CURDIR)/$(SAM) SAM_PYTHON_BIN=$$(dirname "$$(scripts/find-python $(PY_RUNTIME))") \
	  $(PYTHON) -m pytest $(PYTEST_ARGS)

# The API's OpenAPI document, generated from the code and committed (the suite fails when the two differ).
openapi: install
	$(PYTHON) -m invite_proxy_local.openapi

# docs/faults.md, from the fault matrix's rows (the suite fails when the two disagree).
faults-doc: install
	WRITE_FAULTS_DOC=1 $(PYTHON) -m pytest tests/e2e/test_fault_matrix.py -q -p no:cacheprovider

lock: $(UV)
	$(UV) lock --python "$$(scripts/find-python $(PY_RUNTIME))"
	$(MAKE) --no-print-directory requirements

requirements: $(UV)
	$(UV) export --quiet --frozen --no-dev --no-emit-project --format requirements-txt \
	  -o layers/invite_lib/requirements.txt

validate: install-sam
	$(SAM) validate --lint --region us-east-1

# sam build needs the runtime's Python (3.13) on PATH: this finds one, under pyenv too.
RUNTIME_PATH = PATH="$$(dirname "$$(scripts/find-python $(PY_RUNTIME))"):$$PATH"

build: install install-sam
	$(PYTHON) -m invite_proxy_local.openapi --check
	$(RUNTIME_PATH) $(SAM) build --build-dir $(BUILD_DIR)

# To your AWS account: see docs/deploy.md. The first deploy asks for each parameter
# (sam deploy --guided) and saves the answers in samconfig.toml; later ones reuse them.
deploy: install install-sam
	$(PYTHON) -m invite_proxy_local.openapi --check
	$(RUNTIME_PATH) BUILD_DIR=$(BUILD_DIR) $(PYTHON) -m invite_proxy_local.deploy deploy $(ARGS)

# A deployed API, checked as a browser calls it (make run's too: API_URL=http://127.0.0.1:3000).
smoke: install
	@test -n "$(API_URL)" -a -n "$(CODE)" || { \
	  echo "usage: make smoke API_URL=<the stack's ApiUrl> CODE=<an invite> [ORIGIN=<your site>]"; \
	  exit 2; }
	$(PYTHON) -m invite_proxy_local.smoke "$(API_URL)" "$(CODE)" $(ORIGIN)

# Deletes the stack, and names the secrets it leaves (they were never the stack's).
delete: install install-sam
	$(PYTHON) -m invite_proxy_local.deploy delete $(ARGS)

bench: install install-sam
	$(PYTHON) -m pytest benchmarks --benchmark-only -p no:cacheprovider $(BENCH_ARGS)

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .benchmarks
