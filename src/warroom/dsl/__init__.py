"""A small, safe language for evidence: selectors, window arithmetic and RCA functions.

    change(metric("orders-db", "db_pool_connections_in_use"))          # window mean / baseline
    count(logs("checkout", level="ERROR")[alert - 5m .. alert + 2m]) > 10
    onset(metric("orders-db", "cpu")) < onset(spans("checkout", error=true))
    corr(metric("db", "conns"), metric("checkout", "latency"), lag=1m)
    top_templates(logs("checkout", message~"timeout"), 3)

parse() turns text into a frozen AST (syntax.py) and checks names and arity; run() and
evaluate() walk it against a Context (store + incident times) and return Evidence whose source
is the normalised expression. Bad input raises DslError (an InputError) with a caret picture;
missing data is a value ("no data"), not an error.
"""

from __future__ import annotations

from warroom.dsl.errors import DslError
from warroom.dsl.interpreter import Context, Outcome, evaluate, evidence_id, run
from warroom.dsl.parser import parse
from warroom.dsl.syntax import unparse

__all__ = ["Context", "DslError", "Outcome", "evaluate", "evidence_id", "parse", "run", "unparse"]
