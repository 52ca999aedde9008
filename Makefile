# Two entry points do all set-up: `make run` and `make test`. Both fill a venv from uv.lock,
# so an install today and one in six months get the same versions of every package.
#
# uv (pinned below) comes from PyPI into .tools on first use; it installs with the interpreter
# it is given and never downloads one of its own (UV_PYTHON_DOWNLOADS=never).
#   make lock           after changing dependencies in pyproject.toml: update uv.lock to match
#   make lock-upgrade   move every locked package to the newest version pyproject.toml allows
#   make test PYTHON=python3.13   the checks on another interpreter, in its own venv (.venv-3.13)
#   make test-all-pythons         `make test` on each supported Python found here
PYTHON ?= python3
BOOTSTRAP_PYTHON ?= python3
# .venv for the default interpreter, .venv-3.N for another one.
VENV ?= $(if $(filter python3,$(PYTHON)),.venv,.venv-$(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])'))
BIN := $(VENV)/bin
PYTHONS := 3.11 3.12 3.13
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
UV_STAMP := $(TOOLS)/.uv-$(UV_VERSION)
# The run set (runtime dependencies only) and the dev set (plus test, lint and bench tools).
RUN_STAMP := $(VENV)/.synced-run
DEV_STAMP := $(VENV)/.synced-dev

export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run test test-slow test-all-pythons lint types unit test-plain-engine bench lock lock-upgrade
.PHONY: lock-check clean
.PHONY: graphiql-assets

$(UV_STAMP):
	rm -rf $(TOOLS)
	$(BOOTSTRAP_PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	touch $@

# --locked: stop if uv.lock does not match pyproject.toml instead of re-resolving.
# The run set syncs --inexact so that it keeps the dev tools of a venv `make test` filled.
# A new venv gets pip too (--seed), which syncs leave alone.
$(RUN_STAMP): pyproject.toml uv.lock $(UV_STAMP)
	test -x $(BIN)/python || $(UV) venv --seed --python $(PYTHON) $(VENV)
	$(UV) sync --locked --inexact --python $(PYTHON)
	touch $@

$(DEV_STAMP): pyproject.toml uv.lock $(UV_STAMP)
	test -x $(BIN)/python || $(UV) venv --seed --python $(PYTHON) $(VENV)
	$(UV) sync --locked --extra dev --extra bench --python $(PYTHON)
	touch $(RUN_STAMP) $@

run: $(RUN_STAMP) graphiql-assets
	$(BIN)/python server.py

# GraphiQL's browser files from the npm registry (versions and hashes: graphiql-assets/),
# served by the service itself; without them (offline) the page loads them from the CDN.
GRAPHIQL_ASSETS := .cache/graphiql/COMPLETE
graphiql-assets: $(GRAPHIQL_ASSETS)
$(GRAPHIQL_ASSETS): graphiql-assets/package-lock.json graphiql-assets/package.json
	$(PYTHON) graphiql-assets/fetch.py .cache/graphiql \
		|| echo 'GraphiQL assets not fetched: the page will load them from the CDN'

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(DEV_STAMP)
	$(BIN)/mypy

# pytest's exit 5 (no test ran) fails the target with a line saying so.
unit: $(DEV_STAMP)
	@$(BIN)/python -c 'import platform; print("pytest on Python", platform.python_version())'
	$(BIN)/pytest -q $(PYTEST_ARGS) || { rc=$$?; [ $$rc -ne 5 ] || echo "pytest ran no tests"; exit $$rc; }

# The schema, live, end-to-end and security suites and the savings feature through the real server
# again on the frameworks' own public behaviour (GRAPHQL_ENGINE=plain: schema/_engine's tuned parts
# off; WEBSOCKET_PROTOCOL=uvicorn: uvicorn's WebSocket protocol instead of
# runtime/websocket_edge.py's), with the same assertions. Servers the tests start inherit both.
PLAIN_ENGINE_SUITES := tests/schema tests/live tests/e2e tests/security tests/runtime/test_savings_feature.py
test-plain-engine: $(DEV_STAMP)
	GRAPHQL_ENGINE=plain WEBSOCKET_PROTOCOL=uvicorn $(BIN)/pytest -q $(PYTEST_ARGS) $(PLAIN_ENGINE_SUITES)

test: lint types unit test-plain-engine

test-slow: $(DEV_STAMP)
	$(BIN)/pytest -q -m slow $(PYTEST_ARGS) || { rc=$$?; [ $$rc -ne 5 ] || echo "pytest ran no tests"; exit $$rc; }

# One after the other (never at once), each in its own venv. A version not found is named and
# skipped; a failure on one version does not stop the others, and fails the target at the end.
test-all-pythons:
	@failed=""; tested=""; \
	for version in $(PYTHONS); do \
	    python=$$(.ci/find-python $$version) || { echo "SKIPPED: Python $$version not found"; continue; }; \
	    echo "== make test on Python $$version ($$python)"; \
	    tested="$$tested $$version"; \
	    $(MAKE) --no-print-directory test PYTHON=$$python || failed="$$failed $$version"; \
	done; \
	if [ -z "$$tested" ]; then echo "FAILED: none of $(PYTHONS) found"; exit 1; fi; \
	if [ -n "$$failed" ]; then echo "make test FAILED on Python$$failed"; exit 1; fi; \
	echo "make test passed on Python$$tested"

bench: $(DEV_STAMP)
	$(BIN)/python -m bench.run_all

lock: $(UV_STAMP)
	$(UV) lock

lock-upgrade: $(UV_STAMP)
	$(UV) lock --upgrade

# Fails when pyproject.toml and uv.lock disagree.
lock-check: $(UV_STAMP)
	$(UV) lock --check

clean:
	rm -rf $(VENV) .venv-3.* $(TOOLS) .data .pytest_cache .mypy_cache .ruff_cache
