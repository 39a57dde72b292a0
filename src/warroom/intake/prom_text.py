"""Prometheus text exposition format (version 0.0.4): metric series out, sample lines in.

    text = series_to_text(store.metric_series(window))     # '# TYPE cpu gauge\\ncpu{...} 3.5 ...'
    samples = parse_text(text, source="metrics.prom")       # PromSample(name, labels, value, ts)

Our own parser rather than prometheus_client's: that one calls itself laxer than the Go parser,
reports no line numbers, renames counters (adds or drops `_total`) and, in the versions we read,
drops timestamps; an incident's metrics are nothing but timestamped samples.

Timestamps are integer milliseconds in the file and epoch seconds inside warroom (1970..3000,
else the line is an error). The writer puts every sample of a series in one family, as backfill
files do; a scrape would keep only one sample per series.

Two samples of one series at one time: the same value twice is one sample (as Prometheus
ingests it; the repeat is counted in `notes` when a list is given), two different values are
an error naming both lines, since either could be the true one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from warroom.errors import InputError
from warroom.intake.files import read_text
from warroom.model import Series, time_problem

SERVICE_LABEL = "service"
# A sample line longer than this is no measurement; the bound keeps the line regex cheap.
MAX_LINE_CHARS = 1 << 20
METRIC_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
# Sample lines of a histogram or summary family carry a suffix after the family name.
FAMILY_SUFFIXES = {
    "_bucket": ("histogram",),
    "_sum": ("histogram", "summary"),
    "_count": ("histogram", "summary"),
}
_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(
    rf"(?P<name>{_NAME})"
    r"(?:[ \t]*\{(?P<labels>(?:[^\"}]|\"(?:[^\"\\]|\\.)*\")*)\}[ \t]*|[ \t]+)"
    r"(?P<value>\S+)(?:[ \t]+(?P<ts>\S+))?[ \t]*"
)
_LABEL = re.compile(r"[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*\"((?:[^\"\\]|\\.)*)\"[ \t]*")
_VALUE = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)", re.I)
_TIMESTAMP = re.compile(r"-?\d{1,18}")  # milliseconds; 18 digits reach far past the year 3000
_COMMENT = re.compile(r"#[ \t]*(HELP|TYPE)(?:[ \t]+(\S*))?(?:[ \t]+(.*))?")
_ESCAPE = re.compile(r"\\(.)")
_UNESCAPE = {"\\": "\\", '"': '"', "n": "\n"}
_INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_:]")
_LABELLED_NAME = re.compile(r"([^{]+)\{(.*)\}", re.DOTALL)


@dataclass(frozen=True)
class PromSample:
    """One sample line: metric name, labels, value, and time (epoch seconds; None if absent)."""

    name: str
    labels: dict[str, str]
    value: float
    ts: float | None = None
    type: str = "untyped"  # the family's TYPE (a histogram's _bucket lines say "histogram")


# --- writing ---------------------------------------------------------------------------------


def series_to_text(series: Iterable[Series]) -> str:
    """Every sample of every series as gauges, one family per metric name, label `service`.

    Names outside the format's alphabet are written with `_` in place of each other character
    (as the OpenTelemetry-to-Prometheus exporters do); the HELP line keeps the original name.
    A name that carries labels (`latency{peer="db"}`, as the readers keep them) is written as
    its family with those labels, so they read back as they were.
    """
    families: dict[str, list[tuple[Series, str]]] = {}
    for s in series:
        family, labels = split_labels(s.name)
        extra = "".join(f',{k}="{escape_label(v)}"' for k, v in sorted(labels.items()))
        families.setdefault(family, []).append((s, extra))
    lines: list[str] = []
    for original in sorted(families):
        name = metric_name(original)
        lines.append(f"# HELP {name} {escape_help(original)}, exported by warroom")
        lines.append(f"# TYPE {name} gauge")
        for s, extra in sorted(families[original], key=lambda item: (item[0].service, item[1])):
            head = f'{name}{{{SERVICE_LABEL}="{escape_label(s.service)}"{extra}}}'
            times, values = s.times.tolist(), s.values.tolist()
            lines.extend(
                f"{head} {format_value(v)} {round(t * 1000.0)}"
                for t, v in zip(times, values, strict=True)
            )
    return "\n".join(lines) + "\n" if lines else ""


def split_labels(name: str) -> tuple[str, dict[str, str]]:
    """A stored metric name's family and the labels it carries (none when it carries none,
    or carries something that is not a label set, or a `service` label of its own)."""
    match = _LABELLED_NAME.fullmatch(name)
    if match is None:
        return name, {}
    try:
        labels = parse_labels(match[2])
    except ValueError:
        return name, {}
    return (match[1], labels) if labels and SERVICE_LABEL not in labels else (name, {})


def metric_name(name: str) -> str:
    """`name` made a valid metric name: other characters become `_`, a leading digit gets one."""
    cleaned = _INVALID_NAME_CHARS.sub("_", name) or "_"
    return f"_{cleaned}" if cleaned[0].isdigit() else cleaned


def escape_label(value: str) -> str:
    """A label value escaped for the inside of double quotes."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def escape_help(text: str) -> str:
    """A HELP docstring escaped (backslash and newline only, as the format says)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value as Go's ParseFloat reads it back exactly: NaN, +Inf, -Inf or repr."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


# --- reading ---------------------------------------------------------------------------------


def read_prom(path: Path, notes: list[str] | None = None) -> list[PromSample]:
    """Every sample in a text-format file."""
    return parse_text(read_text(path), str(path), notes)


def parse_text(
    text: str, source: str = "<text>", notes: list[str] | None = None
) -> list[PromSample]:
    """Every sample of a text exposition; a malformed line raises InputError with its number.

    Repeated samples (same series, time and value) are kept once and counted in `notes`.
    """
    parser = _Parser()
    for number, line in enumerate(text.split("\n"), start=1):
        try:
            parser.line(line.rstrip("\r"), number)
        except ValueError as err:
            raise InputError(f"{source}:{number}: {err}: {line[:120]!r}") from None
    if parser.repeats and notes is not None:
        notes.append(f"{source}: {parser.repeats} repeated sample(s) (same series, time, value)")
    return parser.samples


class _Parser:
    """Line-by-line state: the families' TYPE and HELP lines seen so far, and the samples."""

    def __init__(self) -> None:
        self.samples: list[PromSample] = []
        self.types: dict[str, str] = {}
        self.helps: set[str] = set()
        self.sampled: set[str] = set()  # families that already have samples
        # (name, labels, time) -> (value, line) of every sample so far, to find repeats
        self.seen: dict[tuple[str, tuple[tuple[str, str], ...], float | None], tuple[float, int]]
        self.seen = {}
        self.repeats = 0

    def line(self, line: str, number: int = 0) -> None:
        if len(line) > MAX_LINE_CHARS:
            raise ValueError(f"a line of {len(line)} characters (at most {MAX_LINE_CHARS})")
        stripped = line.strip(" \t")
        if not stripped:
            return
        if stripped.startswith("#"):
            self.comment(stripped)
            return
        match = _SAMPLE.fullmatch(stripped)
        if not match:
            raise ValueError("not a sample line (name{labels} value [timestamp])")
        name = match["name"]
        family, kind = self.family(name)
        self.sampled.add(family)
        sample = PromSample(
            name=name,
            labels=parse_labels(match["labels"] or ""),
            value=_value(match["value"]),
            ts=_timestamp(match["ts"]) if match["ts"] is not None else None,
            type=kind,
        )
        if self.first_time(sample, number):
            self.samples.append(sample)

    def first_time(self, sample: PromSample, number: int) -> bool:
        """False for a repeat of an earlier sample; a conflicting one raises ValueError."""
        key = (sample.name, tuple(sorted(sample.labels.items())), sample.ts)
        earlier = self.seen.get(key)
        if earlier is None:
            self.seen[key] = (sample.value, number)
            return True
        value, line = earlier
        if value == sample.value or (math.isnan(value) and math.isnan(sample.value)):
            self.repeats += 1
            return False
        raise ValueError(
            f"value {format_value(sample.value)} conflicts with {format_value(value)} for the "
            f"same series and time on line {line}"
        )

    def comment(self, line: str) -> None:
        match = _COMMENT.fullmatch(line)
        if not match:
            return  # any other comment
        keyword, name, rest = match[1], match[2] or "", match[3] or ""
        if not re.fullmatch(_NAME, name):
            raise ValueError(f"{keyword} line without a valid metric name")
        if keyword == "HELP":
            if name in self.helps:
                raise ValueError(f"second HELP line for {name}")
            self.helps.add(name)
            return
        if rest.strip() not in METRIC_TYPES:
            raise ValueError(f"unknown metric type {rest.strip()!r} (known: {METRIC_TYPES})")
        if name in self.types:
            raise ValueError(f"second TYPE line for {name}")
        if name in self.sampled:
            raise ValueError(f"TYPE line for {name} after its samples")
        self.types[name] = rest.strip()

    def family(self, name: str) -> tuple[str, str]:
        """The family a sample name belongs to, and its type."""
        if name in self.types:
            return name, self.types[name]
        for suffix, kinds in FAMILY_SUFFIXES.items():
            base = name.removesuffix(suffix)
            if base != name and self.types.get(base) in kinds:
                return base, self.types[base]
        return name, "untyped"


def parse_labels(text: str) -> dict[str, str]:
    """The inside of `{...}`: name="value" pairs, comma separated, a trailing comma allowed."""
    labels: dict[str, str] = {}
    pos = 0
    while pos < len(text) and text[pos:].strip(" \t"):
        match = _LABEL.match(text, pos)
        if not match:
            raise ValueError(f"bad label at character {pos + 1} of the label set")
        name = match[1]
        if name in labels:
            raise ValueError(f"label {name} given twice")
        labels[name] = _ESCAPE.sub(_unescape, match[2])
        pos = match.end()
        if pos < len(text):
            if text[pos] != ",":
                raise ValueError(f"expected ',' between labels at character {pos + 1}")
            pos += 1
    return labels


def _unescape(match: re.Match[str]) -> str:
    char = match[1]
    if char not in _UNESCAPE:
        raise ValueError(f"invalid escape \\{char} in a label value")
    return _UNESCAPE[char]


def _value(text: str) -> float:
    if not _VALUE.fullmatch(text):
        raise ValueError(f"value {text[:40]!r} is not a number")
    return float(text)


def _timestamp(text: str) -> float:
    if not _TIMESTAMP.fullmatch(text):
        raise ValueError(f"timestamp {text[:40]!r} is not an integer of milliseconds")
    seconds = int(text) / 1000.0
    problem = time_problem(seconds)
    if problem:
        raise ValueError(f"timestamp {text} ms: {problem}")
    return seconds
