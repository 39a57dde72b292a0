"""What the language knows: selectors, functions, named times, and the limits on work.

Data only, so the parser can check names and arity (with a position) before any query runs,
and `warroom dsl functions` can list them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Param:
    """One parameter of a function; keyword-only ones are written name=value."""

    name: str
    optional: bool = False
    keyword_only: bool = False


@dataclass(frozen=True)
class Signature:
    """A function's parameters and a one-line description."""

    name: str
    params: tuple[Param, ...]
    doc: str

    @property
    def usage(self) -> str:
        """How to call it, e.g. `corr(a, b, lag=...)`."""
        parts = []
        for p in self.params:
            text = f"{p.name}=..." if p.keyword_only else p.name
            parts.append(f"[{text}]" if p.optional and not p.keyword_only else text)
        return f"{self.name}({', '.join(parts)})"


@dataclass(frozen=True)
class SelectorSpec:
    """A selector: which fields it filters on, which of them may be given by position."""

    kind: str
    positional: tuple[str, ...]
    fields: tuple[str, ...]  # canonical order, used when printing an expression
    boolean: frozenset[str]
    doc: str

    @property
    def usage(self) -> str:
        """How to write it."""
        rest = [f"{f}=..." for f in self.fields if f not in self.positional]
        return f"{self.kind}({', '.join([*self.positional, *rest])})"


def _sig(name: str, params: str, doc: str) -> Signature:
    """`params` like "q x" or "a b? lag=?": ? marks optional, = keyword-only."""
    parsed = []
    for word in params.split():
        keyword = "=" in word
        name_only = word.replace("=", "").replace("?", "")
        parsed.append(Param(name_only, optional="?" in word, keyword_only=keyword))
    return Signature(name, tuple(parsed), doc)


FUNCTIONS: dict[str, Signature] = {
    s.name: s
    for s in (
        _sig("mean", "x", "mean of a metric's points"),
        _sig("median", "x", "median of a metric's points"),
        _sig("min", "x", "smallest point of a metric"),
        _sig("max", "x", "largest point of a metric"),
        _sig("sum", "x", "sum of a metric's points"),
        _sig("last", "x", "latest point of a metric"),
        _sig("p", "q x", "q-th percentile (0..100) of a metric's points"),
        _sig("count", "x", "points of a metric, or logs/spans/events selected, or templates"),
        _sig("rate", "x", "logs/spans/events per second in the selector's window"),
        _sig(
            "change",
            "a b?",
            "a / b by their natural measure (metric mean, record rate); b defaults to a over "
            "the baseline",
        ),
        _sig("delta", "a b?", "a - b by their natural measure; b defaults to a over the baseline"),
        _sig("ratio", "a b", "a / b (numbers, metric means or record rates)"),
        _sig(
            "onset",
            "x base?",
            "first time a metric leaves its baseline (robust z > 3 on two points running; base "
            "defaults to x over the baseline), or the first log/span/event selected",
        ),
        _sig(
            "zscore",
            "x base?",
            "peak robust z-score of a metric in its window against base (default: the baseline)",
        ),
        _sig(
            "corr",
            "a b lag=?",
            "strongest Pearson correlation of two metrics with b shifted by up to +-lag",
        ),
        _sig("top_templates", "x k?", "the k (default 5) commonest log templates"),
        _sig(
            "new_templates",
            "x k?",
            "up to k (default 5) log templates seen in the window but not in the baseline",
        ),
        _sig("error_ratio", "x", "share of spans in error, or of log lines at an error level"),
        _sig("latency_p", "q x", "q-th percentile (0..100) of span durations, in seconds"),
        _sig("abs", "x", "absolute value of a number"),
    )
}

SELECTORS: dict[str, SelectorSpec] = {
    s.kind: s
    for s in (
        SelectorSpec(
            "metric", ("service", "name"), ("service", "name"), frozenset(), "metric series"
        ),
        SelectorSpec(
            "logs",
            ("service",),
            ("service", "level", "message", "pod", "trace_id"),
            frozenset(),
            "log lines",
        ),
        SelectorSpec(
            "spans",
            ("service",),
            ("service", "operation", "error", "pod", "trace_id"),
            frozenset({"error"}),
            "trace spans",
        ),
        SelectorSpec(
            "events",
            ("service",),
            ("service", "kind", "description"),
            frozenset(),
            "deploys, config changes, restarts",
        ),
    )
}

# Names of the case's times: ranges (window, baseline) and points (alert, start/end of a range).
RANGES = ("window", "baseline")
POINTS = ("alert", "window.start", "window.end", "baseline.start", "baseline.end")
ANCHORS = RANGES + POINTS

# Duration units in seconds; % divides by 100.
UNITS: dict[str, float] = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "%": 0.01}

# Guards against huge work: the text, its nesting, windows, rows and queries per evaluation.
MAX_SOURCE_CHARS = 10_000
MAX_DEPTH = 100  # of the AST, counting a chain a + b + c as two levels
MAX_WINDOW_S = 31 * 86400.0
MAX_POINTS = 500_000  # metric points one selector may fetch
MAX_LINES = 100_000  # log lines one template function may mine
MAX_QUERIES = 200  # store queries one evaluation may run
MAX_LAG_STEPS = 400  # lags corr() tries on each side
MAX_K = 100  # templates a template function may return
