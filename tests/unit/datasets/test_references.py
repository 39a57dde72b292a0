"""Reference windows: same length, clear of what to avoid, capped, none without room; each loader's
rule (inside the metric baseline allowed, never over the incident window)."""

from __future__ import annotations

from warroom.datasets.references import COUNT, free_stretches, pick_references
from warroom.model import TimeRange


def _overlaps(a: TimeRange, b: TimeRange) -> bool:
    return a.start < b.end and b.start < a.end


def test_windows_avoid_the_incident_and_its_baseline_and_keep_its_length() -> None:
    incident = TimeRange(10_000.0, 10_300.0)
    baseline = TimeRange(7_000.0, 10_000.0)
    data = TimeRange(0.0, 10_300.0)
    picked = pick_references(incident.seconds, [data], [incident, baseline])
    assert len(picked) == COUNT
    for window in picked:
        assert window.seconds == incident.seconds
        assert not _overlaps(window, incident) and not _overlaps(window, baseline)
        assert data.start <= window.start and window.end <= data.end
    assert all(a.end <= b.start for a, b in zip(picked, picked[1:], strict=False))


def test_windows_spread_over_the_room_from_its_far_end() -> None:
    # 23 blocks of 300 s fit before the baseline: the first, the last and two between.
    picked = pick_references(300.0, [TimeRange(0.0, 7_000.0)], [])
    assert [w.start for w in picked] == [0.0, 2_100.0, 4_500.0, 6_600.0]


def test_count_caps_the_windows() -> None:
    picked = pick_references(60.0, [TimeRange(0.0, 6_000.0)], [], count=2)
    assert [(w.start, w.end) for w in picked] == [(0.0, 60.0), (5_940.0, 6_000.0)]


def test_fewer_windows_when_fewer_fit() -> None:
    picked = pick_references(100.0, [TimeRange(0.0, 250.0)], [])
    assert [(w.start, w.end) for w in picked] == [(0.0, 100.0), (100.0, 200.0)]


def test_none_when_the_data_has_no_room() -> None:
    incident = TimeRange(1_440.0, 1_740.0)
    baseline = TimeRange(0.0, 1_440.0)  # every fault-free row is already the baseline
    assert pick_references(incident.seconds, [TimeRange(0.0, 1_740.0)], [incident, baseline]) == ()
    # Room shorter than the incident window is no room either.
    assert pick_references(300.0, [TimeRange(0.0, 299.0)], []) == ()
    assert pick_references(300.0, [], []) == ()
    assert pick_references(0.0, [TimeRange(0.0, 900.0)], []) == ()


def test_a_window_never_straddles_an_avoided_range() -> None:
    # 0..250 and 350..600 are free; a 200 s block fits in each, none across the hole.
    picked = pick_references(200.0, [TimeRange(0.0, 600.0)], [TimeRange(250.0, 350.0)])
    assert [(w.start, w.end) for w in picked] == [(0.0, 200.0), (350.0, 550.0)]


def test_free_stretches_merges_touching_and_overlapping_data() -> None:
    free = free_stretches(
        [TimeRange(500.0, 900.0), TimeRange(0.0, 300.0), TimeRange(300.0, 600.0)],
        [TimeRange(700.0, 800.0)],
    )
    assert [(r.start, r.end) for r in free] == [(0.0, 700.0), (800.0, 900.0)]


def test_a_stretch_exactly_one_window_long_holds_it_at_epoch_seconds() -> None:
    # 1e9 s: a tolerance of 1e-9 is below a float's resolution there (np.arange found nothing).
    start = 1_674_981_780.0
    picked = pick_references(180.0, [TimeRange(start, start + 180.0)], [])
    assert picked == (TimeRange(start, start + 180.0),)
    minutes = [TimeRange(start + 60.0 * k, start + 60.0 * (k + 1)) for k in range(6)]
    assert len(pick_references(180.0, minutes, [])) == 2
