# pdp: `make help` lists the targets. Each target sets up what it needs (a venv in .venv).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml clients/python/pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: help install proxies test check lint format bench loadtest serve clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[serve,test]' -e 'clients/python[flask]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)  ## create .venv and install pdp with its test extras

test: $(STAMP) proxies  ## run the whole test suite
	$(BIN)/python -m pytest

# tests/integration/test_proxies.py runs nginx and Caddy in front of pdp; where apt-get cannot
# install them (not root, no network), those tests skip and say why
proxies:  ## install nginx and Caddy (Debian packages) for the forward-auth tests
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx && command -v caddy >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx caddy \
	    >/dev/null) || echo "nginx and caddy could not be installed: the proxy tests will skip"

check: $(STAMP)  ## lint and types (ruff check, ruff format --check, mypy --strict on pdp/)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)  ## print engine, store, reload and serving figures (not part of make test)
	$(BIN)/python bench/bench_engine.py
	$(BIN)/python bench/bench_store.py
	$(BIN)/python bench/chain.py
	$(BIN)/python bench/bench_reload.py
	$(BIN)/python bench/managed_load.py
	$(BIN)/python bench/impact.py
	$(BIN)/python bench/diff.py
	$(BIN)/python bench/explain.py
	$(BIN)/python bench/queries.py
	@command -v wrk >/dev/null && command -v h2load >/dev/null || \
	  (apt-get update -qq && apt-get install -y -qq wrk nghttp2-client)
	$(BIN)/python bench/bench_serving.py
	$(BIN)/python bench/bench_serving.py --cache-size 100000
	$(BIN)/python bench/gateway.py
	$(BIN)/python bench/bench_memory.py

loadtest: $(STAMP)  ## locust against HTTP and gRPC on a generated store: loadtests/results/
	$(BIN)/python loadtests/run.py

serve: $(STAMP)  ## run the service on examples/store
	$(BIN)/pdp serve --store examples/store

clean:  ## remove the venv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build *.egg-info
