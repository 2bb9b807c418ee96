# paycenter — `make run` sets up everything and runs the demo; `make test` sets up and runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test deps venv clickhouse chromium bench clean help

help:
	@echo "make run    set up (venv, ClickHouse package) and run broker, ClickHouse, simulators, workers and demo traffic"
	@echo "make test   set up and run the whole test suite against real services"
	@echo "make bench  run the benchmarks (table, JSON and PNG chart in bench-results/)"
	@echo "make clean  remove the venv and local data"

deps: venv clickhouse chromium

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
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

run: deps
	$(BIN)/paycenter run

test: deps
	$(BIN)/python -m pytest -q -p no:cacheprovider

# the bench extra (matplotlib, for the chart), installed once per change of pyproject.toml
$(VENV)/.bench-stamp: pyproject.toml
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	@touch $@

bench: deps $(VENV)/.bench-stamp
	$(BIN)/python bench/bench_router.py
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .data
