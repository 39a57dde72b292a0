"""One error tree for warroom. "No data" is a value (an empty result or a Failure), never an
exception that reaches a caller.

    WarroomError
    ├── InputError              bad user input: a malformed file, payload, query or config
    │   ├── DatasetError        a data set root or case that is not in a known layout
    │   └── DslError            an evidence query that does not parse or check (dsl/errors.py)
    ├── BackendError            a telemetry backend failed (slow, dead, bad answer)
    ├── NoData                  an agent's telemetry is absent (agents/base.py); raised only
    │                           inside Agent.run, call() turns it into Failure("no_data")
    └── ModelError              a language model call failed; the task falls back (llm/errors.py)
        ├── ModelTimeout        no answer within the timeout
        ├── ModelUnavailable    unreachable, refused, 5xx after retries, replay exhausted
        └── ModelBadOutput      an answer that is not a chat completion at all

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
    """A telemetry backend failed; the investigation marks its evidence as missing.

    `status`: the HTTP status when the backend answered one (404 and 410 mean something)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
