"""DslError: what the language says when an expression cannot be parsed or evaluated.

syntax_error() turns lark's exceptions into one, naming what was found and what was expected.

It points at the place in the text, the way a compiler does:

    dsl: unknown function 'maen' (did you mean mean?) at line 1, column 1
      maen(metric("orders-db", "cpu"))
      ^
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from warroom.errors import InputError

_FRIENDLY = {
    "NUMBER": "a number",
    "STRING": "a string",
    "NAME": "a name",
    "CLOCK": "a time of day",
    "STAMP": "a timestamp",
    "$END": "the end",
}


def line_column(source: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset in source."""
    offset = max(0, min(offset, len(source)))
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return line, column


def caret_picture(source: str, offset: int) -> str:
    """The offending line of source with a caret under the offset (tabs kept aligned)."""
    offset = max(0, min(offset, len(source)))
    start = source.rfind("\n", 0, offset) + 1
    end = source.find("\n", offset)
    text = source[start : end if end >= 0 else len(source)]
    pad = "".join(ch if ch == "\t" else " " for ch in text[: offset - start])
    return f"  {text}\n  {pad}^"


class DslError(InputError):
    """An expression that cannot be parsed or evaluated; names the reason and the position."""

    def __init__(self, reason: str, source: str = "", offset: int | None = None) -> None:
        self.reason = reason
        self.source = source
        self.offset = offset
        super().__init__(self._render())

    @property
    def position(self) -> tuple[int, int] | None:
        """(line, column), 1-based, or None when the error is about the whole expression."""
        if self.offset is None or not self.source:
            return None
        return line_column(self.source, self.offset)

    def located(self, source: str) -> DslError:
        """The same error tied to the source text it came from (for messages with a caret)."""
        if self.source:
            return self
        return DslError(self.reason, source, self.offset)

    def _render(self) -> str:
        position = self.position
        if position is None or self.offset is None:
            return f"dsl: {self.reason}"
        line, column = position
        return (
            f"dsl: {self.reason} at line {line}, column {column}\n"
            f"{caret_picture(self.source, self.offset)}"
        )


def syntax_error(exc: UnexpectedInput, source: str, literals: Mapping[str, str]) -> DslError:
    """A lark error as a DslError: what was found, what was expected, and where."""
    if isinstance(exc, UnexpectedCharacters):
        offset = exc.pos_in_stream or 0
        char = source[offset] if offset < len(source) else ""
        reason = f"unexpected character {char!r}"
        return DslError(_expecting(reason, exc.allowed, literals), source, offset)
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        at_end = token.type == "$END"
        offset = len(source) if at_end or token.start_pos is None else token.start_pos
        what = "end of expression" if at_end else f"{_describe(token.type)} {str(token)!r}"
        glued = _glued_number(source, offset)
        if token.type == "NAME" and glued is not None:
            word = source[glued : offset + len(token)]
            return DslError(f"unknown unit in {word}: units are ms, s, m, h, d, %", source, glued)
        expected = [str(t) for t in exc.accepts or exc.expected]
        return DslError(_expecting(f"unexpected {what}", expected, literals), source, offset)
    if isinstance(exc, UnexpectedEOF):
        expected = [str(t) for t in exc.expected]
        return DslError(
            _expecting("unexpected end of expression", expected, literals), source, len(source)
        )
    return DslError(f"cannot parse: {exc}", source, 0)


def _glued_number(source: str, offset: int) -> int | None:
    """Start of a number written right before offset (as in 5min), else None."""
    start = offset
    while start > 0 and (source[start - 1].isalnum() or source[start - 1] in ".%"):
        start -= 1
    return start if start < offset and source[start].isdigit() else None


def _describe(terminal: str) -> str:
    return {"NAME": "name", "NUMBER": "number", "STRING": "string"}.get(terminal, "token")


def _expecting(reason: str, terminals: Iterable[str] | None, literals: Mapping[str, str]) -> str:
    if not terminals:
        return reason
    texts = {_terminal_text(t, literals) for t in terminals if not t.startswith("__IGNORE")}
    names = sorted(texts, key=lambda text: (text.startswith('"'), text))  # words, then symbols
    if len(names) > 10:
        names = names[:10] + ["..."]
    return f"{reason}; expected {', '.join(names)}"


def _terminal_text(name: str, literals: Mapping[str, str]) -> str:
    if name in _FRIENDLY:
        return _FRIENDLY[name]
    return f'"{literals[name]}"' if name in literals else name.lower()
