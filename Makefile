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

# Every reader over FUZZ_N generated hostile inputs (test runs 200); prints the per-reader table.
FUZZ_N  ?= 10000
fuzz: $(STAMP)
	WARROOM_FUZZ_N=$(FUZZ_N) $(BIN)/pytest tests/fuzz -q

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
