"""Number grounding: every number a model writes must be one the evidence holds.

A printed number is grounded when, read at its printed precision, it equals an allowed value:
"7.9" matches 7.916 (printed to 0.1), "8" matches 7.916 too, "7.95" does not. Allowed values
are the evidence values and baselines, what we compute from them (ratio, difference, relative
change), and every number printed in the evidence statements and the extra facts the prompt
gave (confidence, share explained). Units convert: "42 %" also reads as 0.42, "450 ms" as
0.45 s, "0.45 s" as 450 ms, "2 min" as 120 s, "1.2k" as 1200. Signs are ignored.

Clock times and dates are checked as text: "10:03" is grounded by a fact holding "10:03:20".

Decision on trivially safe numbers: a bare integer from 0 to 10 (no unit, no decimals) needs no
grounding. Narratives use such numbers for counts and ordinals ("3 services", "step 2") where a
mistake is harmless; anything with a unit, a fraction or above 10 must be found in the evidence.

Not checked: numbers inside identifiers (orders-db-2, p99, v1.2, 5xx, 0x1f), dotted versions,
and numbers written as words ("seven").
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from warroom.model import Evidence

SAFE_MAX = 10  # bare integers 0..SAFE_MAX need no grounding
MAX_EXPONENT = 308  # of a float
_REL_EPS = 1e-9

_DATETIME = re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?)?")
_CLOCK = re.compile(r"(?<![\w:.])\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?![\w:])")
_NUMBER = re.compile(
    r"(?<![\w.])(?P<x>[x×](?=\d))?(?P<sign>[-+−](?=\d))?"
    r"(?P<int>\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?P<frac>\.\d+)?(?P<exp>[eE][-+]?\d+)?(?!\.\d)"
    r"(?:\s?(?P<unit>%|[A-Za-zµ×]+))?(?![\w])"
)
# unit -> factors the printed value may be read at (1 is always included)
_SCALES: dict[str, tuple[float, ...]] = {
    "%": (0.01,),
    "percent": (0.01,),
    "ms": (0.001,),
    "s": (1000.0,),
    "sec": (1000.0,),
    "secs": (1000.0,),
    "second": (1000.0,),
    "seconds": (1000.0,),
    "min": (60.0,),
    "mins": (60.0,),
    "minute": (60.0,),
    "minutes": (60.0,),
    "k": (1000.0,),
    "K": (1000.0,),
}
_SCALED_UNITS = frozenset({*_SCALES, "x", "×"})


@dataclass(frozen=True)
class PrintedNumber:
    """A number as written: its text, value, unit and the half-width of its rounding."""

    text: str
    value: float
    unit: str
    tolerance: float
    integer: bool

    @property
    def trivially_safe(self) -> bool:
        """A bare small integer (a count or an ordinal): no grounding needed."""
        return self.integer and self.unit not in _SCALED_UNITS and abs(self.value) <= SAFE_MAX


@dataclass(frozen=True)
class Grounding:
    """Which numbers and times a text states, and which of them the evidence does not hold."""

    checked: tuple[str, ...]
    ungrounded: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when every number is grounded."""
        return not self.ungrounded


def numbers_in(text: str, strict: bool = True) -> list[PrintedNumber]:
    """The numbers printed in `text` (clock times and dates excluded; see times_in).

    strict skips numbers glued to a word by '-' or '/' (service-2, /api/3), as in model text;
    non-strict keeps them, to collect every number a fact mentions (12/340 lines).
    """
    text = _mask_times(text)
    found = []
    for m in _NUMBER.finditer(text):
        before = text[m.start() - 1] if m.start() else " "
        if strict and not m.group("sign") and before in "-/" and not _fraction(text, m.start()):
            continue
        found.append(_printed(m))
    return found


def times_in(text: str) -> list[str]:
    """Dates (YYYY-MM-DD) and clock times (HH:MM[:SS]) printed in `text`, as written."""
    found: list[str] = []
    for m in _DATETIME.finditer(text):
        date, _, clock = m.group(0).replace("T", " ").partition(" ")
        found += [date, clock.rstrip("Z")] if clock else [date]
    found += [m.group(0) for m in _CLOCK.finditer(_DATETIME.sub(" ", text))]
    return found


def allowed_values(evidence: Sequence[Evidence], facts: Iterable[str] = ()) -> list[float]:
    """Every value a grounded number may match."""
    values: list[float] = []
    for e in evidence:
        values.append(e.value)
        if e.baseline is not None:
            values += [e.baseline, e.value - e.baseline]
            if e.baseline:
                values += [e.value / e.baseline, (e.value - e.baseline) / e.baseline]
    for text in [*(e.statement for e in evidence), *facts]:
        for n in numbers_in(text, strict=False):  # "80 %" in a fact also grounds 0.8
            values += [n.value, *(n.value * f for f in _SCALES.get(n.unit, ()))]
    return [abs(v) for v in values if math.isfinite(v)]


def check(text: str, evidence: Sequence[Evidence], facts: Sequence[str] = ()) -> Grounding:
    """Check every number and time in `text` against the evidence and facts."""
    allowed = sorted(set(allowed_values(evidence, facts)))
    known_times = {
        _time_key(t) for x in (*(e.statement for e in evidence), *facts) for t in times_in(x)
    }
    checked: list[str] = []
    ungrounded: list[str] = []
    for n in numbers_in(text):
        if n.trivially_safe:
            continue
        checked.append(n.text)
        if not math.isfinite(n.value) or not _matches(n, allowed):  # no evidence is infinite
            ungrounded.append(n.text)
    for t in times_in(text):
        checked.append(t)
        if not _time_grounded(t, known_times):
            ungrounded.append(t)
    return Grounding(tuple(checked), tuple(ungrounded))


def _matches(n: PrintedNumber, allowed: list[float]) -> bool:
    value = abs(n.value)
    for factor in (1.0, *_SCALES.get(n.unit, ())):
        target, tol = value * factor, n.tolerance * factor
        slack = tol + _REL_EPS * max(target, 1.0)
        if any(abs(a - target) <= slack for a in _near(allowed, target, slack)):
            return True
    return False


def _near(allowed: list[float], target: float, slack: float) -> list[float]:
    """The allowed values within slack of target (allowed is sorted)."""
    lo = bisect.bisect_left(allowed, target - slack)
    hi = bisect.bisect_right(allowed, target + slack)
    return allowed[lo:hi]


def _printed(m: re.Match[str]) -> PrintedNumber:
    digits = m.group("int").replace(",", "")
    frac = m.group("frac") or ""
    exponent = _exponent(m.group("exp"))
    value = float(f"{digits}{frac}e{exponent}")  # inf past the float range, never an error
    decimals = max(len(frac) - 1, 0) - exponent
    unit = m.group("unit") or ("x" if m.group("x") else "")
    text = m.group(0)[: m.start("unit") - m.start()] if m.group("unit") else m.group(0)
    if unit in _SCALED_UNITS:
        text = m.group(0)
    if unit in ("k", "K"):  # 1.2k: the precision is of the printed digits, in thousands
        value, decimals = value * 1000.0, decimals - 3
        unit = "k*"
    return PrintedNumber(
        text=text.strip(),
        value=value,
        unit=unit,
        tolerance=0.5 * 10.0 ** min(-decimals, MAX_EXPONENT),
        integer=not frac and not exponent and unit != "k*",
    )


def _exponent(text: str | None) -> int:
    """The exponent of 'e-5', bounded: a model may print 1e99999, or more digits than Python
    turns into an int."""
    if not text:
        return 0
    sign, digits = (-1 if text[1:2] == "-" else 1), text[1:].lstrip("+-").lstrip("0") or "0"
    return sign * (int(digits) if len(digits) <= 4 else 10 * MAX_EXPONENT)


def _fraction(text: str, start: int) -> bool:
    """True for the 340 of 12/340: a slash with a digit before it."""
    return start >= 2 and text[start - 1] == "/" and text[start - 2].isdigit()


def _mask_times(text: str) -> str:
    text = _DATETIME.sub(lambda m: " " * len(m.group(0)), text)
    return _CLOCK.sub(lambda m: " " * len(m.group(0)), text)


def _time_key(t: str) -> tuple[str | int, ...]:
    """A date as itself; a clock time as (hour, minute[, whole second]): 9:05 == 09:05."""
    if "-" in t:
        return (t,)
    parts = t.split(":")
    return tuple(int(float(p)) for p in parts)


def _time_grounded(t: str, known: set[tuple[str | int, ...]]) -> bool:
    """A time is grounded by a known one it equals, or is a coarser reading of (10:03 by
    10:03:20); a finer one is not (10:03:20 is not grounded by 10:03)."""
    key = _time_key(t)
    return any(k[: len(key)] == key for k in known)
