"""The live command line: times as people write them, the window's defaults, references."""

from __future__ import annotations

import pytest

from warroom.cli.live import LiveRequest, _references, live_window, parse_time
from warroom.errors import InputError
from warroom.model import TimeRange

NOW = 1_764_730_000.0  # 2025-12-03T02:46:40Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("-30m", NOW - 1800),
        ("-1.5h", NOW - 5400),
        ("-2d", NOW - 172_800),
        ("1764729000", 1_764_729_000.0),
        ("2025-12-03T02:30:00Z", 1_764_729_000.0),
        ("2025-12-03T02:30:00", 1_764_729_000.0),  # naive: UTC
        ("2025-12-03T03:30:00+01:00", 1_764_729_000.0),
    ],
)
def test_times_in_the_forms_people_type(text: str, expected: float) -> None:
    assert parse_time(text, NOW, "--start") == expected


def test_a_bad_time_names_the_option() -> None:
    with pytest.raises(InputError, match=r"--end 'yesterday': not a time"):
        parse_time("yesterday", NOW, "--end")


def test_the_window_from_whatever_was_given() -> None:
    assert live_window(LiveRequest(), NOW) == (TimeRange(NOW - 1800, NOW), NOW)
    alert = NOW - 3600
    window, at = live_window(LiveRequest(alert=str(alert)), NOW)
    assert (window, at) == (TimeRange(alert - 1800, alert + 600), alert)
    window, at = live_window(LiveRequest(alert="-1m"), NOW)
    assert window.end == NOW and at == NOW - 60  # never past now
    with pytest.raises(InputError, match="ends .* before it starts"):
        live_window(LiveRequest(start="-10m", end="-20m"), NOW)
    with pytest.raises(InputError, match="outside the window"):
        live_window(LiveRequest(start="-10m", end="-5m", alert="-1m"), NOW)


def test_references_lie_before_the_metric_history_and_never_overlap() -> None:
    window = TimeRange(NOW - 1800, NOW)
    refs = _references(window, 3)
    assert [r.seconds for r in refs] == [1800.0] * 3
    assert refs[0].end <= window.start - 3600  # clear of the hour of metric history
    assert all(a.start >= b.end for a, b in zip(refs, refs[1:], strict=False))


def test_since_is_a_start_before_now() -> None:
    assert live_window(LiveRequest(since="2h"), NOW)[0] == TimeRange(NOW - 7200, NOW)
    with pytest.raises(InputError, match="--since or --start, not both"):
        live_window(LiveRequest(since="2h", start="-1h"), NOW)
    with pytest.raises(InputError, match="--since '-fortnight'"):
        live_window(LiveRequest(since="fortnight"), NOW)
