# paycenter — `make run` sets up everything and runs the demo; `make test` sets up and runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint deps venv clickhouse chromium uplot vendor-uplot bench clean help

help:
	@echo "make run    set up (venv, ClickHouse package) and run broker, ClickHouse, simulators, workers and demo traffic"
	@echo "make test   set up, lint, and run the whole test suite against real services"
	@echo "make lint   ruff, mypy and the import layers (lint-imports), as CI runs them"
	@echo "make bench  run the benchmarks (table, JSON and PNG chart in bench-results/)"
	@echo "make clean  remove the venv and local data"

deps: venv clickhouse chromium uplot

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,lint]'
	@touch $(STAMP)

# Debian's clickhouse-server (18.16) is the embedded ClickHouse; install it when missing.
clickhouse:
	@if ! command -v clickhouse-server >/dev/null 2>&1; then \
	  echo "installing Debian's clickhouse-server ..."; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq clickhouse-server clickhouse-client >/dev/null; \
	fi
	@command -v clickhouse-server >/dev/null || { echo "clickhouse-server is still missing: install Debian's clickhouse-server package"; exit 1; }

# Debian's chromium: the dashboard's end-to-end test drives it headless.
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  echo "installing Debian's chromium (for the dashboard test) ..."; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi
	@if ! dpkg -s fonts-wqy-zenhei >/dev/null 2>&1; then \
	  echo "installing Debian's fonts-wqy-zenhei (the cashier's Chinese pages in the browser tests) ..."; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq fonts-wqy-zenhei >/dev/null; \
	fi

# uPlot, the dashboard's chart library: vendored from its npm package at build time (the page never
# loads a CDN). Pinned version and tarball checksum; bump both together.
UPLOT_VERSION := 1.6.32
UPLOT_SHA256  := 4b8a8191e425658e3ea8c8c1314b0fc679c861ee3a1af2b20c7b16ba50b5133d
UPLOT_STATIC  := paycenter/dashboard/static
UPLOT_STAMP   := $(UPLOT_STATIC)/.uplot-$(UPLOT_VERSION)

uplot:
	@if [ ! -f $(UPLOT_STAMP) ] || [ ! -f $(UPLOT_STATIC)/uPlot.iife.min.js ] || [ ! -f $(UPLOT_STATIC)/uPlot.min.css ]; then \
	  $(MAKE) --no-print-directory vendor-uplot; fi

vendor-uplot:
	@command -v npm >/dev/null 2>&1 || { echo "npm is missing: install Node.js with npm (Debian: apt-get install npm) to vendor uPlot for the dashboard"; exit 1; }
	rm -rf build/uplot && mkdir -p build/uplot $(UPLOT_STATIC)
	cd build/uplot && npm pack --silent uplot@$(UPLOT_VERSION) >/dev/null
	@echo "$(UPLOT_SHA256)  build/uplot/uplot-$(UPLOT_VERSION).tgz" | sha256sum -c --quiet - || { echo "uplot-$(UPLOT_VERSION).tgz does not match the pinned checksum"; exit 1; }
	tar -xzf build/uplot/uplot-$(UPLOT_VERSION).tgz -C build/uplot package/dist/uPlot.iife.min.js package/dist/uPlot.min.css package/LICENSE
	cp build/uplot/package/dist/uPlot.iife.min.js build/uplot/package/dist/uPlot.min.css $(UPLOT_STATIC)/
	cp build/uplot/package/LICENSE $(UPLOT_STATIC)/uPlot.LICENSE
	rm -f $(UPLOT_STATIC)/.uplot-* && touch $(UPLOT_STAMP)

run: deps
	$(BIN)/paycenter run

# ruff (pyflakes, bugbear, isort), mypy (processors, schemas, streams/runtime) and import-linter's layer
# contract: no import against paycenter > streams > sinks > connectors > infra > processors > schemas.
# All configured in pyproject.toml; PYTHONPATH=. so the checkout is checked, not an installed copy.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	PYTHONPATH=. $(BIN)/lint-imports --no-cache

test: deps lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

# the bench extra (matplotlib, for the chart), installed once per change of pyproject.toml
$(VENV)/.bench-stamp: pyproject.toml
	$(BIN)/python -m pip install -q -e '.[test,lint,bench]'
	@touch $@

bench: deps $(VENV)/.bench-stamp
	$(BIN)/python bench/bench_router.py
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .data build/uplot $(UPLOT_STATIC)
