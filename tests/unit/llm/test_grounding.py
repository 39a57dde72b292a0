from __future__ import annotations

import pytest

from warroom.llm.grounding import check, numbers_in, times_in
from warroom.model import Evidence

EVIDENCE = (
    Evidence(
        "metric:orders-db:connections",
        "orders-db connections 12 -> 95 (x7.92, 8.1 robust sigma) from 2023-01-29T10:03:20Z",
        value=95.0,
        baseline=12.0,
        unit="connections",
    ),
    Evidence(
        "log:checkout:Timeout",
        "checkout: error log 'Timeout' new: 0/340 lines (0.0%) fault-free vs 12/350 (3.4%) now",
        value=0.0343,
        baseline=0.0,
    ),
    Evidence("trace:checkout:latency", "checkout p99 0.4512 s", value=0.4512, baseline=0.1),
    Evidence("metric:api:requests", "api requests 1234.5 -> 2.5e+04", value=25000, baseline=1234.5),
)
FACTS = ("confidence: 0.72 (high)", "explains 80% of the anomalous services")


@pytest.mark.parametrize(
    "text",
    [
        "connections rose from 12 to 95",
        "a x7.9 jump, about 8x the baseline",  # printed precision: 7.9 and 8 both match 7.92
        "connections rose by 83",  # the difference value - baseline is computed, so allowed
        "up 692 %",  # relative change (95 - 12) / 12
        "p99 latency 451 ms (0.45 s, 0.4512 s)",  # ms <-> s
        "3.4 % of 350 checkout lines were timeouts",  # share printed in a statement
        "0.0343 of lines, i.e. 3.43%",  # ratio <-> percent
        "confidence 0.72, explaining 80 % (0.8) of services",  # facts count
        "requests 25,000 (25k, 2.5e+04) against 1,234.5 before",  # separators, k, exponent
        "it started at 10:03, 10:03:20, on 2023-01-29",
        "orders-db-2 returned 5xx at p99 in v1.2.3 for 3 services (step 2)",  # not claims
        "nothing numeric here",
    ],
)
def test_grounded_text_passes(text: str) -> None:
    result = check(text, EVIDENCE, FACTS)
    assert result.ok, result.ungrounded


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("the pool hit 250 connections", "250"),
        ("x7.95 more connections", "x7.95"),  # finer than anything printed: 7.92 != 7.95
        ("latency 900 ms", "900 ms"),
        ("errors at 42 %", "42 %"),
        ("it started at 10:05", "10:05"),
        ("on 2023-01-30", "2023-01-30"),
        ("11 pods restarted", "11"),  # above the trivially safe range
        ("2 s of delay", "2 s"),  # small, but with a unit
        ("0.9 of requests", "0.9"),  # small, but a fraction
    ],
)
def test_hallucinated_numbers_are_named(text: str, bad: str) -> None:
    result = check(text, EVIDENCE, FACTS)
    assert not result.ok
    assert bad in result.ungrounded


def test_trivially_safe_is_0_to_10_bare_integers() -> None:
    assert check("0, 1, 2, 3 and 10 things", ()).ok
    assert not check("11 things", ()).ok


def test_sign_does_not_matter() -> None:
    assert check("connections changed by -83 and +83", EVIDENCE).ok


def test_numbers_in_reads_units_and_precision() -> None:
    [n] = numbers_in("p99 at 1,234.50 ms")
    assert (n.value, n.unit, n.tolerance) == (1234.5, "ms", pytest.approx(0.005))
    [k] = numbers_in("1.2k req")
    assert (k.value, k.tolerance) == (pytest.approx(1200), pytest.approx(50))


def test_strict_extraction_skips_identifiers_but_not_fractions() -> None:
    assert [n.text for n in numbers_in("pod-3 /api/7 12/340 p99 x7.9 0x1f")] == [
        "12",
        "340",
        "x7.9",
    ]
    assert [n.text for n in numbers_in("pod-3", strict=False)] == ["3"]


def test_times_in_splits_datetimes() -> None:
    assert times_in("at 2023-01-29T10:03:20Z and 11:00") == ["2023-01-29", "10:03:20", "11:00"]


def test_times_match_at_the_printed_precision() -> None:
    facts = ["onset 2023-01-29T09:05:07Z"]
    assert check("at 9:05, 09:05 and 09:05:07", (), facts).ok
    assert not check("at 09:05:08", (), facts).ok
    assert not check("at 09:05:07", (), ["onset 09:05"]).ok  # finer than the fact
