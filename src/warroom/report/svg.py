"""Inline SVG for the HTML report: a line chart of one series and a propagation chain.

Drawn by hand rather than with a plotting library: two small pictures do not justify a
dependency, and hand-written SVG stays crisp, tiny, printable and styleable by the page's CSS
(classes, not colours, so a dark theme and print work).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

import numpy as np

from warroom.model import FloatArray
from warroom.report.charts import Chart

WIDTH, HEIGHT = 720, 250
LEFT, RIGHT, TOP, BOTTOM = 64, 18, 30, 34
# Time-axis steps (seconds) a person reads easily; the first that gives <= MAX_X_TICKS wins.
TIME_STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604800)
MAX_X_TICKS = 7
LABEL_W = 110  # room a marker label needs ("onset 12:34:56")
Y_TICKS = 4
# Above this many points a series is thinned to each pixel column's min and max.
MAX_POINTS = 2 * (WIDTH - LEFT - RIGHT)


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def hhmm(ts: float, seconds: bool = False) -> str:
    """A UTC clock time: HH:MM (or HH:MM:SS)."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%H:%M:%S" if seconds else "%H:%M")


def fmt_number(value: float) -> str:
    """A short, readable number: 0.034, 12.5, 980, 2500, 12.3k, 4.5M (never 1e+03)."""
    if not math.isfinite(value):
        return str(value)
    size = abs(value)
    for limit, unit, suffix in ((1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if size >= limit:
            return _short(value / unit) + suffix
    if 0 < size < 1e-3:
        return f"{value:.2e}"
    return _short(value)


def _short(value: float) -> str:
    """Three significant digits, but whole numbers from 100 up (.3g would write 1.23e+03)."""
    return f"{value:.0f}" if abs(value) >= 99.95 else f"{value:.3g}"


def nice_ticks(lo: float, hi: float, count: int = Y_TICKS) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 x 10^k) covering [lo, hi]."""
    if not hi > lo:
        pad = abs(lo) * 0.1 or 1.0
        # A flat non-negative series (an error ratio of 0) needs no negative axis.
        lo, hi = (lo - pad if lo - pad >= 0 or lo < 0 else 0.0), hi + pad
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(lo / step) * step
    ticks = [first]
    while ticks[-1] < hi - 1e-9 * step:
        ticks.append(first + len(ticks) * step)
    return ticks


def time_ticks(start: float, end: float) -> list[float]:
    """Tick times on round clock steps inside [start, end]."""
    span = max(end - start, 1.0)
    step = next((s for s in TIME_STEPS if span / s <= MAX_X_TICKS), TIME_STEPS[-1])
    first = math.ceil(start / step) * step
    return [float(t) for t in np.arange(first, end + 1e-9, step)]


def thin(times: FloatArray, values: FloatArray, buckets: int) -> tuple[FloatArray, FloatArray]:
    """Keep each time bucket's min and max (in time order) so spikes survive thinning."""
    if len(times) <= 2 * buckets:
        return times, values
    edges = np.searchsorted(times, np.linspace(times[0], times[-1], buckets + 1)[1:-1])
    keep: list[int] = []
    for chunk in np.split(np.arange(len(times)), edges):
        finite = chunk[np.isfinite(values[chunk])]
        if len(finite) == 0:
            keep.extend(chunk[:1].tolist())  # a NaN keeps the gap visible
            continue
        keep.extend(
            sorted({int(finite[np.argmin(values[finite])]), int(finite[np.argmax(values[finite])])})
        )
    index = np.asarray(keep, dtype=np.int64)
    return times[index], values[index]


class _Frame:
    """Maps data coordinates to the plot area."""

    def __init__(self, x0: float, x1: float, y0: float, y1: float) -> None:
        self.x0, self.x1 = x0, (x1 if x1 > x0 else x0 + 1.0)
        self.y0, self.y1 = y0, (y1 if y1 > y0 else y0 + 1.0)

    def x(self, t: float) -> float:
        return LEFT + (t - self.x0) / (self.x1 - self.x0) * (WIDTH - LEFT - RIGHT)

    def y(self, v: float) -> float:
        return TOP + (self.y1 - v) / (self.y1 - self.y0) * (HEIGHT - TOP - BOTTOM)


def line_chart(chart: Chart, ident: str) -> str:
    """An accessible inline SVG line chart: window shaded, alert and onset as vertical lines."""
    times, values = chart.times, chart.values
    x0, x1 = _x_extent(chart)
    finite = values[np.isfinite(values)]
    levels = [float(v) for v in finite]
    if chart.baseline_value is not None and math.isfinite(chart.baseline_value):
        levels.append(chart.baseline_value)
    ticks = nice_ticks(min(levels), max(levels)) if levels else [0.0, 1.0]
    frame = _Frame(x0, x1, ticks[0], ticks[-1])
    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" xmlns="http://www.w3.org/2000/svg" '
        f'aria-labelledby="{ident}-t {ident}-d">',
        f'<title id="{ident}-t">{_e(chart.title)}</title>',
        f'<desc id="{ident}-d">{_e(_describe(chart, finite))}</desc>',
        _window(chart, frame),
        _y_axis(ticks, frame),
        _x_axis(frame),
    ]
    if len(finite):
        parts.append(_line(*thin(times, values, MAX_POINTS // 2), frame))
    else:
        parts.append(
            f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT / 2}" text-anchor="middle" '
            'class="muted">no samples in this range</text>'
        )
    parts += [_baseline(chart, frame), _markers(chart, frame), "</svg>"]
    return "".join(p for p in parts if p)


def _x_extent(chart: Chart) -> tuple[float, float]:
    if chart.span is not None:
        # Data that starts late (a short history) should not leave the left half empty.
        first = float(chart.times[0]) if len(chart.times) else chart.span.start
        return max(chart.span.start, min(first, chart.window.start)), chart.span.end
    known = [chart.window.start, chart.window.end]
    if len(chart.times):
        known += [float(chart.times[0]), float(chart.times[-1])]
    return min(known), max(known)


def _describe(chart: Chart, finite: FloatArray) -> str:
    window = chart.window
    text = f"{chart.metric} of {chart.service}"
    if len(finite):
        text += (
            f": {len(finite)} samples from {fmt_number(float(np.min(finite)))} "
            f"to {fmt_number(float(np.max(finite)))}"
        )
    else:
        text += ": no samples"
    text += f". Incident window {hhmm(window.start)} to {hhmm(window.end)} UTC (shaded)"
    if chart.baseline_value is not None:
        text += f"; baseline {fmt_number(chart.baseline_value)}"
    if chart.onset is not None:
        text += f"; onset {hhmm(chart.onset, seconds=True)}"
    if chart.alert is not None:
        text += f"; alert {hhmm(chart.alert, seconds=True)}"
    return text + "."


def _window(chart: Chart, frame: _Frame) -> str:
    start = max(chart.window.start, frame.x0)
    end = min(chart.window.end, frame.x1)
    if end <= start:
        return ""
    x, w = frame.x(start), frame.x(end) - frame.x(start)
    return (
        f'<rect class="win" x="{x:.1f}" y="{TOP}" width="{w:.1f}" '
        f'height="{HEIGHT - TOP - BOTTOM}"/>'
        f'<text x="{x + w - 4:.1f}" y="{TOP + 14}" text-anchor="end" class="muted halo">'
        "window</text>"
    )


def _y_axis(ticks: Sequence[float], frame: _Frame) -> str:
    parts = [
        f'<rect class="frame" x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" '
        f'height="{HEIGHT - TOP - BOTTOM}"/>'
    ]
    for v in ticks:
        y = frame.y(v)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_e(fmt_number(v))}</text>'
        )
    return "".join(parts)


def _x_axis(frame: _Frame) -> str:
    ticks = time_ticks(frame.x0, frame.x1)
    long = frame.x1 - frame.x0 > 86400
    parts = []
    for t in ticks:
        x = frame.x(t)
        label = datetime.fromtimestamp(t, tz=UTC).strftime("%m-%d %H:%M") if long else hhmm(t)
        # A label on the plot's edge grows inwards, clear of the "UTC" and of the border.
        anchor = "start" if x < LEFT + 20 else "end" if x > WIDTH - RIGHT - 20 else "middle"
        parts.append(
            f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}"/>'
            f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="{anchor}">{label}</text>'
        )
    parts.append(
        f'<text x="{LEFT - 6}" y="{HEIGHT - BOTTOM + 16}" text-anchor="end" class="muted">'
        "UTC</text>"
    )
    return "".join(parts)


def _line(times: FloatArray, values: FloatArray, frame: _Frame) -> str:
    """A path broken at missing samples; a lone sample between gaps becomes a dot."""
    runs: list[list[tuple[float, float]]] = [[]]
    for t, v in zip(times.tolist(), values.tolist(), strict=True):
        if math.isfinite(v) and frame.x0 <= t <= frame.x1:
            runs[-1].append((frame.x(t), frame.y(v)))
        elif runs[-1]:
            runs.append([])
    d, dots = [], []
    for run in runs:
        if len(run) == 1:
            dots.append(f'<circle class="dot" cx="{run[0][0]:.1f}" cy="{run[0][1]:.1f}" r="2.5"/>')
        elif run:
            d.append("M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in run))
    line = f'<path class="series" d="{"".join(d)}"/>' if d else ""
    return line + "".join(dots)


def _baseline(chart: Chart, frame: _Frame) -> str:
    value = chart.baseline_value
    if value is None or not math.isfinite(value):
        return ""
    y = frame.y(value)
    return (
        f'<line class="base" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
        f'<text x="{LEFT + 4}" y="{y - 4:.1f}" class="muted halo">'
        f"baseline {fmt_number(value)}</text>"
    )


def _markers(chart: Chart, frame: _Frame) -> str:
    marks = sorted(
        (ts, name)
        for ts, name in ((chart.onset, "onset"), (chart.alert, "alert"))
        if ts is not None and frame.x0 <= ts <= frame.x1
    )
    parts = []
    for i, (ts, name) in enumerate(marks):
        x = frame.x(ts)
        # Two labels sit back to back (the earlier left of its line); one alone avoids the edge.
        left = (i == 0 and len(marks) == 2) or x > WIDTH - RIGHT - LABEL_W
        anchor, dx = ("end", -4) if left else ("start", 4)
        parts.append(
            f'<line class="{name}" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP - 4}" '
            f'y2="{HEIGHT - BOTTOM}"/><text class="{name}-label" x="{x + dx:.1f}" '
            f'y="{TOP - 10}" text-anchor="{anchor}">{name} {hhmm(ts, seconds=True)}</text>'
        )
    return "".join(parts)


def path_chain(path: Sequence[str]) -> str:
    """The propagation path as boxes joined by arrows: culprit first, symptom last."""
    char_w, pad, gap, box_h, top = 7.4, 14, 44, 34, 8
    widths = [max(70.0, len(name) * char_w + 2 * pad) for name in path]
    total = sum(widths) + gap * (len(path) - 1) + 4
    height = top + box_h + 22
    label = "Propagation path: " + " → ".join(path)
    parts = [
        f'<svg viewBox="0 0 {total:.0f} {height}" role="img" style="max-width:{total:.0f}px" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="{_e(label)}"><title>{_e(label)}</title>'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path class="arrowhead" d="M0,0L10,5L0,10z"/></marker>'
        "</defs>"
    ]
    x = 2.0
    for i, (name, w) in enumerate(zip(path, widths, strict=True)):
        role = "culprit" if i == 0 else "symptom" if i == len(path) - 1 else ""
        parts.append(
            f'<g class="node {role}"><rect x="{x:.1f}" y="{top}" width="{w:.1f}" '
            f'height="{box_h}" rx="6"/><text x="{x + w / 2:.1f}" y="{top + box_h / 2 + 4}" '
            f'text-anchor="middle">{_e(name)}</text>'
        )
        if role:
            parts.append(
                f'<text x="{x + w / 2:.1f}" y="{top + box_h + 16}" text-anchor="middle" '
                f'class="muted">{role}</text>'
            )
        parts.append("</g>")
        if i < len(path) - 1:
            y = top + box_h / 2
            parts.append(
                f'<line class="edge" x1="{x + w + 3:.1f}" y1="{y}" x2="{x + w + gap - 3:.1f}" '
                f'y2="{y}" marker-end="url(#arrow)"/>'
            )
        x += w + gap
    return "".join(parts) + "</svg>"
