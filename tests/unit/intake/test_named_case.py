"""The case a command names: the options that re-open it are safe to paste into a shell."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from warroom.datasets.base import CaseSpec, LoadedCase
from warroom.errors import InputError
from warroom.intake.named_case import open_named_case
from warroom.model import Incident, TimeRange
from warroom.telemetry.store import TelemetryStore

HOSTILE = "x; touch /tmp/pwned-named-case #"


def _loaded(*_: object) -> LoadedCase:
    incident = Incident("i", TimeRange(0.0, 1.0), 0.5)
    return LoadedCase(CaseSpec("i", incident, None, None), TelemetryStore())


def test_options_quote_every_value_read_from_the_user() -> None:
    named = open_named_case(_loaded, _loaded, (HOSTILE, Path(HOSTILE), HOSTILE), (None, None, 0))
    words = shlex.split(named.options)
    assert words == ["--dataset", HOSTILE, "--root", HOSTILE, "--case", HOSTILE]
    named = open_named_case(_loaded, _loaded, (None, None, None), (HOSTILE, HOSTILE, 3))
    assert shlex.split(named.options) == [
        "--gym-topology",
        HOSTILE,
        "--gym-fault",
        HOSTILE,
        "--gym-seed",
        "3",
    ]


def test_a_gym_opener_that_refuses_is_an_input_error() -> None:
    def refuse(*_: object) -> LoadedCase:
        raise KeyError("unknown topology 'nope'")

    with pytest.raises(InputError, match="unknown topology"):
        open_named_case(_loaded, refuse, (None, None, None), ("nope", "cpu", 1))
    with pytest.raises(InputError, match="name one case"):
        open_named_case(_loaded, _loaded, (None, None, None), (None, None, 0))
