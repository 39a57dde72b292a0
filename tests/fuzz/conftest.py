"""The per-reader table of a fuzz run, printed after the tests (`make fuzz` shows it)."""

from __future__ import annotations

import pytest

from fuzz.harness import BOUND_S, Stats

RESULTS: list[Stats] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per fuzzed reader: inputs, project errors, other exceptions, slowest call."""
    if not RESULTS:
        return
    write = terminalreporter.write_line
    write("")
    write(f"fuzz: per reader (bound {BOUND_S:.0f} s a call)")
    write(
        f"{'reader':<18}{'inputs':>8}{'values':>8}{'project errors':>16}{'other':>7}"
        f"{'over bound':>12}{'max s':>8}"
    )
    for s in RESULTS:
        write(
            f"{s.reader:<18}{s.inputs:>8}{s.values:>8}{s.project:>16}{s.other:>7}"
            f"{s.over_bound:>12}{s.max_seconds:>8.2f}"
        )
