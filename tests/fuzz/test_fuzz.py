"""Every reader over generated hostile inputs: values or a WarroomError, each within 5 s.

A short run here (WARROOM_FUZZ_N inputs per reader, 200 by default); `make fuzz` runs 10,000.
WARROOM_FUZZ_SEED picks another run; a failing input is kept under the failures folder and is
reproduced by its index (harness.generate).
"""

from __future__ import annotations

import os

import pytest

from fuzz.conftest import RESULTS
from fuzz.harness import FAILURES, fuzz
from fuzz.readers import READERS

INPUTS = int(os.environ.get("WARROOM_FUZZ_N", "200"))
SEED = int(os.environ.get("WARROOM_FUZZ_SEED", "0"))


@pytest.mark.parametrize("name", list(READERS))
def test_reader_survives_hostile_input(name: str) -> None:
    stats = fuzz(name, INPUTS, SEED)
    RESULTS.append(stats)
    assert stats.inputs == INPUTS
    assert stats.other == 0 and stats.over_bound == 0, (
        f"{name}: {stats.other} other outcome(s), {stats.over_bound} over the bound "
        f"(inputs kept in {FAILURES / name}):\n  " + "\n  ".join(stats.examples)
    )
