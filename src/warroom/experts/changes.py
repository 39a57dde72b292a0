"""Changes near the onset: deploys, config pushes, restarts. Pure functions over events.

A change is not an anomaly: an unrelated deploy happens near most incidents. So changes never
nominate a culprit on their own; they are evidence for (and name the fault type of) a candidate
that the telemetry already points at, when they land shortly before its anomaly began.
"""

from __future__ import annotations

from collections.abc import Sequence

from warroom.model import Event, Evidence, iso

# A change this long before the onset can still be its cause (a slow leak, a cache warming).
LOOKBACK_S = 15 * 60.0
# Clocks differ and onsets are sampled every 10-60 s: a change just after the onset counts too.
SLACK_S = 60.0
CHANGE_KINDS = ("deploy", "config", "rollout", "scale", "feature-flag")


def changes_before(events: Sequence[Event], service: str, onset: float | None) -> list[Event]:
    """The service's changes from LOOKBACK_S before its onset to SLACK_S after, latest first."""
    if onset is None:
        return []
    near = [
        e
        for e in events
        if e.service == service
        and e.kind in CHANGE_KINDS
        and onset - LOOKBACK_S <= e.time <= onset + SLACK_S
    ]
    return sorted(near, key=lambda e: -e.time)


def change_evidence(change: Event, onset: float) -> Evidence:
    """The change as evidence, with its distance from the onset."""
    before = onset - change.time
    return Evidence(
        id=f"event:{change.service}:{change.kind}:{change.time:.0f}",
        statement=(
            f"{change.service}: {change.kind} at {iso(change.time)} ({before:+.0f} s before the "
            f"anomaly began): {change.description}"
        ),
        value=before,
        unit="s before onset",
        source=f"experts.changes.changes_before(service={change.service}, onset={iso(onset)})",
    )
