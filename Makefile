# The two commands a newcomer needs: `make demo` and `make test`. Both create the venv on first use.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
DATA    ?= ../shared/data
STAMP   := $(VENV)/.installed

.PHONY: demo test servers fuzz check bench-nezha bench-petshop clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/warroom demo

# The real servers integration tests start (Prometheus, VictoriaMetrics...; Debian packages):
# installed once, started by the tests on 127.0.0.1 and stopped by PID. Without apt-get the
# tests that need them skip, saying so.
servers:
	@scripts/install-servers.sh || echo "make: servers not installed; the tests that need them skip"

test: $(STAMP) servers
	$(BIN)/pytest

# Every reader and parser over FUZZ_N generated hostile inputs (`make test` runs a few hundred):
# the data readers (tests/fuzz, a per-reader table at the end) and the DSL, model-edge and
# runbook fuzz tests (each prints its count and slowest call).
FUZZ_N     ?= 10000
FUZZ_TESTS ?= tests/fuzz tests/unit/dsl/test_fuzz.py tests/unit/llm/test_fuzz.py \
              tests/unit/server/test_alerts.py \
              tests/unit/runbooks/test_fuzz.py
fuzz: $(STAMP)
	WARROOM_FUZZ_N=$(FUZZ_N) $(BIN)/pytest $(FUZZ_TESTS) -q

check: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy src

bench-nezha: $(STAMP)
	$(BIN)/warroom bench nezha --root $(DATA)/nezha

bench-petshop: $(STAMP)
	$(BIN)/warroom bench petshop --root $(DATA)/petshop

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
