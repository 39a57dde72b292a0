"""One error tree for warroom. "No data" is a value (an empty result), never an exception.

    WarroomError
    ├── InputError          bad user input: a malformed file, payload, query or config
    │   └── DatasetError    a data set root or case that is not in a known layout
    └── BackendError        a telemetry backend failed (slow, dead, bad answer)

The CLI and server catch WarroomError and print its message without a traceback.
"""

from __future__ import annotations


class WarroomError(Exception):
    """Root of every error warroom raises on purpose."""


class InputError(WarroomError):
    """Input that warroom cannot use; the message names what is wrong and where."""


class DatasetError(InputError):
    """A data set root or case id that does not match a known layout."""


class BackendError(WarroomError):
    """A telemetry backend failed; the investigation marks its evidence as missing."""
