# The two commands a newcomer needs: `make demo` and `make test`. Both create the venv on first use.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
DATA    ?= ../shared/data
STAMP   := $(VENV)/.installed

.PHONY: demo test fuzz check bench-nezha bench-petshop clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/warroom demo

test: $(STAMP)
	$(BIN)/pytest

# Every reader and parser over FUZZ_N generated hostile inputs (`make test` runs a few hundred):
# the data readers (tests/fuzz, a per-reader table at the end) and the DSL, model-edge and
# runbook fuzz tests (each prints its count and slowest call).
FUZZ_N     ?= 10000
FUZZ_TESTS ?= tests/fuzz tests/unit/dsl/test_fuzz.py tests/unit/llm/test_fuzz.py \
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
