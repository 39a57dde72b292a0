"""Typed failures of a model call. They join warroom's one error tree under WarroomError:

    WarroomError
    └── ModelError            a language model call failed; the task falls back
        ├── ModelTimeout      no answer within the timeout
        ├── ModelUnavailable  unreachable, refused, 5xx after retries, replay exhausted
        └── ModelBadOutput    an answer that is not a chat completion at all

Bad *content* (invalid JSON, wrong schema, ungrounded numbers) is not an exception: tasks.py
records it as a Rejection and uses the deterministic fallback.
"""

from __future__ import annotations

from warroom.errors import WarroomError


class ModelError(WarroomError):
    """A language model call failed; callers fall back to the deterministic output."""


class ModelTimeout(ModelError):
    """The model did not answer within the timeout."""


class ModelUnavailable(ModelError):
    """The model could not be reached or refused the request (after retries)."""


class ModelBadOutput(ModelError):
    """The server answered, but not with a chat completion that has message content."""
