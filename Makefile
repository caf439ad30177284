# customer-graph: `make run` serves the API, `make test` runs every check. Both set up what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp

.PHONY: install node-deps graphiql graphiql-check run test lint typecheck pytest bench bench-1m neo4j-start neo4j-stop system-deps clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

# Node is for the tests and the GraphiQL build only; `make run` serves the committed bundle.
node-deps: $(NODE_STAMP)

# Rebuild customer_graph/static/graphiql/ from the npm packages (commit the result).
graphiql: node-deps
	node scripts/build-graphiql.mjs

# Fails when the committed GraphiQL bundle differs from a fresh build.
graphiql-check: node-deps
	node scripts/build-graphiql.mjs --check

install: $(STAMP)

# Debian packages the tests need (headless Chromium, docker-compose for validating the compose file).
system-deps:
	bash scripts/system-deps.sh

run: install
	$(BIN)/customer-graph serve --dev

neo4j-start: install
	$(BIN)/customer-graph neo4j start

neo4j-stop: install
	$(BIN)/customer-graph neo4j stop

lint: install
	$(BIN)/ruff check customer_graph tests bench
	$(BIN)/ruff format --check customer_graph tests bench

typecheck: install
	$(BIN)/mypy customer_graph

pytest: install
	$(BIN)/pytest $(PYTEST_ARGS)

test: install system-deps node-deps lint typecheck graphiql-check
	$(BIN)/pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

# The scale figure at 1M customer records (about 30 minutes on 2 cores; writes bench/results-1m.json).
bench-1m: install
	$(BIN)/python -m bench --size 1m $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
