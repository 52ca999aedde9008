# Two entry points do all set-up: `make run` and `make test`. Both create and fill .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-slow lint types unit bench clean graphiql-assets

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

run: $(STAMP) graphiql-assets
	$(BIN)/python server.py

# GraphiQL's browser files from the npm registry (versions and hashes: graphiql-assets/),
# served by the service itself; without them (offline) the page loads them from the CDN.
GRAPHIQL_ASSETS := .cache/graphiql/COMPLETE
graphiql-assets: $(GRAPHIQL_ASSETS)
$(GRAPHIQL_ASSETS): graphiql-assets/package-lock.json graphiql-assets/package.json
	$(PYTHON) graphiql-assets/fetch.py .cache/graphiql \
		|| echo 'GraphiQL assets not fetched: the page will load them from the CDN'

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint types unit

test-slow: $(STAMP)
	$(BIN)/pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
