# The two commands a newcomer needs: `make demo` and `make test`. Both create the venv on first use.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
DATA    ?= ../shared/data
STAMP   := $(VENV)/.installed

.PHONY: demo test check bench-nezha bench-petshop clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/warroom demo

test: $(STAMP)
	$(BIN)/pytest

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
