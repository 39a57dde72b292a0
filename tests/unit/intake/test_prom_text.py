"""Prometheus text format 0.0.4: series written read back the same; bad lines name their number."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from warroom.errors import InputError
from warroom.intake.prom_text import (
    escape_label,
    format_value,
    metric_name,
    parse_labels,
    parse_text,
    read_prom,
    series_to_text,
)
from warroom.model import Series

T0 = 1_750_000_000.0


def _s(service: str, name: str, times: list[float], values: list[float]) -> Series:
    return Series(service, name, np.array(times), np.array(values))


def test_series_round_trip_with_escaped_labels_nan_and_infinities() -> None:
    odd = 'pay"ment\\eu\nwest'
    series = [
        _s("checkout", "cpu", [T0, T0 + 10], [3.5, math.nan]),
        _s(odd, "cpu", [T0], [math.inf]),
        _s("checkout", "latency_p90_ms", [T0 + 0.25], [-math.inf]),
    ]
    text = series_to_text(series)
    assert "# TYPE cpu gauge" in text
    assert 'cpu{service="pay\\"ment\\\\eu\\nwest"} +Inf 1750000000000' in text
    assert 'cpu{service="checkout"} NaN 1750000010000' in text
    rows = parse_text(text)
    got = {(r.name, r.labels["service"], r.ts): r.value for r in rows}
    assert got[("cpu", odd, T0)] == math.inf
    assert got[("cpu", "checkout", T0)] == 3.5
    assert math.isnan(got[("cpu", "checkout", T0 + 10)])
    assert got[("latency_p90_ms", "checkout", T0 + 0.25)] == -math.inf
    assert {r.type for r in rows} == {"gauge"}


@given(st.text(), st.floats(allow_nan=False))
def test_any_label_value_and_number_survive(label: str, value: float) -> None:
    row = parse_text(series_to_text([_s(label, "m", [T0], [value])]))[0]
    assert row.labels == {"service": label} and row.value == value


def test_names_outside_the_alphabet_are_made_valid() -> None:
    assert metric_name("http.server.duration") == "http_server_duration"
    assert metric_name("99th-percentile") == "_99th_percentile"
    text = series_to_text([_s("a", "jvm.gc.pause", [T0], [1.0])])
    assert text.startswith("# HELP jvm_gc_pause jvm.gc.pause")
    assert parse_text(text)[0].name == "jvm_gc_pause"


def test_parses_what_exporters_write() -> None:
    text = "\r\n".join(
        [
            "# A free comment",
            "# HELP http_request_duration_seconds Request time.\\nIn seconds.",
            "# TYPE http_request_duration_seconds histogram",
            'http_request_duration_seconds_bucket{le="0.1",path="/a"} 3 1750000000000',
            'http_request_duration_seconds_bucket{le="+Inf",path="/a",} 5 1750000000000',
            'http_request_duration_seconds_sum{path="/a"}\t1.25',
            'http_request_duration_seconds_count{path="/a"} 5',
            "# TYPE rpc summary",
            'rpc{quantile="0.99"} NaN',
            "rpc_count 10",
            "",
            "up 1 1000",
            'temperature { room = "kitchen" } -Inf',
            "ratio 1e-05",
        ]
    )
    rows = parse_text(text)
    assert [(r.name, r.type) for r in rows[:4]] == [
        ("http_request_duration_seconds_bucket", "histogram"),
        ("http_request_duration_seconds_bucket", "histogram"),
        ("http_request_duration_seconds_sum", "histogram"),
        ("http_request_duration_seconds_count", "histogram"),
    ]
    assert rows[1].labels == {"le": "+Inf", "path": "/a"} and rows[1].ts == T0
    assert rows[2].value == 1.25 and rows[2].ts is None
    assert rows[4].type == "summary" and math.isnan(rows[4].value)
    assert rows[5].type == "summary"
    assert (rows[6].name, rows[6].type, rows[6].ts) == ("up", "untyped", 1.0)
    assert rows[7].labels == {"room": "kitchen"} and rows[7].value == -math.inf
    assert rows[8].value == 1e-05


def test_label_parsing_handles_escapes_and_commas_inside_values() -> None:
    assert parse_labels(r'a="x,y}",b="q\"uote",c="back\\slash",d="new\nline"') == {
        "a": "x,y}",
        "b": 'q"uote',
        "c": "back\\slash",
        "d": "new\nline",
    }
    assert escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert format_value(math.nan) == "NaN" and format_value(0.1) == "0.1"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('cpu{service="a"} fast', "value 'fast' is not a number"),
        ('cpu{service="a\\q"} 1', "invalid escape \\q"),
        ('cpu{service="a"', "not a sample line"),
        ('cpu{service="a",service="b"} 1', "label service given twice"),
        ('cpu{service="a" zone="b"} 1', "expected ','"),
        ("cpu 1 1.5", "timestamp '1.5' is not an integer"),
        ("cpu 1_000", "is not a number"),
        ("cpu", "not a sample line"),
        ("# TYPE cpu meter", "unknown metric type 'meter'"),
        ("# HELP", "HELP line without a valid metric name"),
    ],
)
def test_a_malformed_line_is_named_by_its_number(line: str, message: str) -> None:
    text = f"# TYPE ok gauge\nok 1\n{line}\n"
    with pytest.raises(InputError, match="metrics.prom:3: ") as err:
        parse_text(text, "metrics.prom")
    assert message in str(err.value)


def test_type_lines_must_come_once_and_first() -> None:
    with pytest.raises(InputError, match=r"x:3: second TYPE line for cpu"):
        parse_text("# TYPE cpu gauge\ncpu 1\n# TYPE cpu gauge\n", "x")
    with pytest.raises(InputError, match=r"x:2: TYPE line for cpu after its samples"):
        parse_text("cpu 1\n# TYPE cpu gauge\n", "x")
    with pytest.raises(InputError, match=r"x:2: second HELP line for cpu"):
        parse_text("# HELP cpu a\n# HELP cpu b\n", "x")


def test_read_prom_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "m.prom"
    path.write_bytes(b"cpu 1\n\xff\n")
    with pytest.raises(InputError, match="m.prom:2: not UTF-8"):
        read_prom(path)
    with pytest.raises(InputError, match="cannot read"):
        read_prom(tmp_path / "missing.prom")
    path.write_text("")
    assert read_prom(path) == []


def test_conflicting_samples_are_an_error_naming_both_lines() -> None:
    text = 'lat{service="a"} 10 1750000000000\nlat{service="b"} 3 1750000000000\n'
    text += 'lat{service="a"} 200 1750000000000\n'
    with pytest.raises(InputError, match=r"m.prom:3: value 200.0 conflicts with 10.0 .* line 1"):
        parse_text(text, "m.prom")


def test_repeated_samples_are_kept_once_and_counted() -> None:
    text = 'up{service="a"} 1 1750000000000\n' * 3 + 'up{service="a"} NaN\nup{service="a"} NaN\n'
    notes: list[str] = []
    rows = parse_text(text, "m.prom", notes)
    assert len(rows) == 2
    assert notes == ["m.prom: 3 repeated sample(s) (same series, time, value)"]


@pytest.mark.parametrize(
    ("timestamp", "message"),
    [
        ("9" * 5000, "is not an integer of milliseconds"),
        ("-1000", "outside 1970..3000"),
        ("99999999999999999", "outside 1970..3000"),
    ],
)
def test_timestamps_outside_the_sane_range_are_errors(timestamp: str, message: str) -> None:
    with pytest.raises(InputError, match=f"m.prom:1: timestamp .*{message}"):
        parse_text(f"up 1 {timestamp}\n", "m.prom")


def test_an_overlong_line_is_refused_before_the_regex_runs() -> None:
    with pytest.raises(InputError, match=r"m.prom:2: a line of 2000005 characters"):
        parse_text("up 1\ncpu{" + "a" * 2_000_001 + "\n", "m.prom")
