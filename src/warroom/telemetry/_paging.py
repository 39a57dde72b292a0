"""What the Loki, Tempo and Jaeger sources share: exact time units, one lazily made HTTP client
per source, skip counts that become degraded notes, bounded fan-out, and store columns.

    units = to_units(window.start, NANOS)          # 1700000000.5 -> 1700000000500000000, exactly
    seconds = from_units(1700000000123456789, NANOS)
    with ThreadPoolExecutor(...)  ->  fan_out(fetch_one, trace_ids, workers=4)
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from typing import Any, TypeVar

import httpx

from warroom.intake.case_dir import LOG_COLUMNS, SPAN_COLUMNS
from warroom.model import LogRecord, Span, is_valid_time
from warroom.telemetry.http import Endpoint, connect

NANOS = 1_000_000_000
MICROS = 1_000_000
_T = TypeVar("_T")
_R = TypeVar("_R")


def to_units(seconds: float, per_second: int) -> int:
    """Epoch seconds as the nearest whole number of units.

    Computed on the float's exact value: `seconds * 1e9` would round at today's epoch (by up to
    128 ns). The nearest unit is the one whose own time reads back as this float, so a line at
    a window's first unit is asked for (the Fetcher drops what falls outside the window)."""
    return round(Fraction(seconds) * per_second)


def from_units(count: int, per_second: int) -> float | None:
    """A whole number of units since the epoch as seconds (None outside 1970..3000).

    int / int rounds once, so the value equals what the OTLP reader makes of the same instant."""
    seconds = count / per_second
    return seconds if is_valid_time(seconds) else None


def integer(value: Any) -> int | None:
    """A JSON integer or a decimal string of one (as backends write 64-bit numbers), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and 0 < len(value) <= 24 and value.isascii() and value.isdigit():
        return int(value)
    return None


def tenant(endpoint: Endpoint) -> str:
    """The X-Scope-OrgID header's value (Loki's, Tempo's, Mimir's tenant), or ''."""
    return {k.lower(): v for k, v in endpoint.headers.items()}.get("x-scope-orgid", "")


class LazyClient:
    """One httpx client per source, made on first use: constructors do no I/O (a token file is
    read only when the first fetch needs it), and threads that fetch at once share it."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def get(self) -> httpx.Client:
        """The client, made once."""
        with self._lock:
            if self._client is None:
                self._client = connect(self._endpoint)
            return self._client

    def close(self) -> None:
        """Release the connections (a later fetch makes a new client)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


class HttpSource:
    """What every HTTP source here holds: its settings and one lazily made client."""

    config: Endpoint  # each source narrows it to its own Config

    def __init__(self, config: Endpoint) -> None:
        self.config = config
        self._client = LazyClient(config)

    def close(self) -> None:
        """Release the HTTP connections."""
        self._client.close()


class Skips:
    """Counts of what one fetch dropped, by reason, to become its degraded notes."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._examples: dict[str, str] = {}

    def add(self, reason: str, example: str = "", n: int = 1) -> None:
        """Count `n` items dropped for `reason` (the first example is kept for the note)."""
        self._counts[reason] += n
        if example:
            self._examples.setdefault(reason, example[:200])

    def notes(self, backend: str) -> tuple[str, ...]:
        """One note per reason: 'loki: 2 malformed entries skipped (first: ...)'."""
        out = []
        for reason, n in self._counts.items():
            example = self._examples.get(reason)
            out.append(f"{backend}: {n} {reason}" + (f" (first: {example})" if example else ""))
        return tuple(out)


def fan_out(fn: Callable[[_T], _R], items: Sequence[_T], workers: int) -> list[_R]:
    """`fn` over `items` on at most `workers` threads, results in order; the first error raised
    is raised here (each call is bounded by the fetch's deadline, so waiting for the rest ends)."""
    if len(items) <= 1 or workers <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


def span_columns(spans: Iterable[Span]) -> dict[str, list[Any]]:
    """Spans as the store's spans columns."""
    return _columns(list(spans), SPAN_COLUMNS)


def log_columns(records: Iterable[LogRecord]) -> dict[str, list[Any]]:
    """Log records as the store's logs columns."""
    return _columns(list(records), LOG_COLUMNS)


def _columns(items: Sequence[object], fields: dict[str, str]) -> dict[str, list[Any]]:
    return {column: [getattr(item, name) for item in items] for column, name in fields.items()}
