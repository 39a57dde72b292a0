"""Redaction of secrets and personal data before any text reaches a model.

Each match is replaced by `[REDACTED:<kind>]`; the result says which kinds were found and how
often, never the secret itself. Patterns run in order, most specific first, so a JWT inside
`token=...` is counted once, as a JWT.

Decisions, because each kind trades missed secrets against mangled evidence:
- IPv4: any dotted quad with octets <= 255 is an address, unless it is written as a version
  ("v1.2.3.4", "version 1.2.3.4") or is part of a longer dotted run (1.2.3.4.5, an OID).
  Three-part versions (1.2.3) never look like addresses.
- IPv6: candidates are validated by the ipaddress module, so clock times like 10:03:20 and
  C++ names like std::vector are left alone.
- Card numbers: 13-19 digits (spaces or dashes allowed between groups) that start like a
  real card (Visa, Mastercard, Amex, Discover, JCB, Diners) and pass the Luhn check, so epoch
  milliseconds and ids that happen to pass Luhn are kept.
- key=value: the value after password / secret / token / api_key / ... (also JSON "key":
  "value" and YAML key: value); `max_tokens=512` is not a secret (the word must end there).
- In URLs only the password is removed (scheme://user:[REDACTED:url_password]@host).
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

Replacer = Callable[[re.Match[str]], str | None]  # None: not a secret after all, keep it

_KEYWORDS = (
    r"(?:password|passwd|pwd|passphrase|secret|client[_-]?secret|token|access[_-]?token|"
    r"refresh[_-]?token|auth[_-]?token|api[_-]?key|apikey|access[_-]?key|secret[_-]?key|"
    r"private[_-]?key|credentials?)"
)


@dataclass(frozen=True)
class Redacted:
    """Text with secrets replaced, and how many of each kind were replaced."""

    text: str
    counts: tuple[tuple[str, int], ...] = ()

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds of data that were redacted, in order of first appearance."""
        return tuple(kind for kind, _ in self.counts)


def token(kind: str) -> str:
    """What a redacted value of `kind` is replaced with."""
    return f"[REDACTED:{kind}]"


def _whole(kind: str) -> Replacer:
    return lambda m: token(kind)


def _group(kind: str, group: str) -> Replacer:
    """Replace only one named group, keeping the text around it."""

    def replace(m: re.Match[str]) -> str:
        start, end = m.span(group)
        offset = m.start()
        whole = m.group(0)
        return whole[: start - offset] + token(kind) + whole[end - offset :]

    return replace


def luhn_ok(digits: str) -> bool:
    """True when the digit string passes the Luhn checksum."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


_CARD_PREFIX = re.compile(
    r"^(?:4\d{12}(?:\d{3}){0,2}|5[1-5]\d{14}|2(?:2[2-9]\d|[3-6]\d\d|7[01]\d|720)\d{12}"
    r"|3[47]\d{13}|6(?:011|5\d\d|4[4-9]\d)\d{12,15}|35(?:2[89]|[3-8]\d)\d{12,15}"
    r"|3(?:0[0-5]|[689]\d)\d{11,16})$"
)


def _card(m: re.Match[str]) -> str | None:
    digits = re.sub(r"[ -]", "", m.group(0))
    return token("card_number") if _CARD_PREFIX.match(digits) and luhn_ok(digits) else None


def _ipv4(m: re.Match[str]) -> str | None:
    if any(int(part) > 255 for part in m.group("ip").split(".")):
        return None
    return token("ipv4")


def _ipv6(m: re.Match[str]) -> str | None:
    candidate = m.group(0)
    address = candidate.split("%", 1)[0]
    if not any(ch.isdigit() for ch in address) and address != "::":
        return None  # hex words only (dead::beef) is more likely code than an address
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return None
    return token("ipv6")


_RULES: tuple[tuple[str, re.Pattern[str], Replacer], ...] = (
    (
        "private_key",
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
        _whole("private_key"),
    ),
    (
        "url_password",
        re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+:(?P<pw>[^\s/@]+)@"),
        _group("url_password", "pw"),
    ),
    ("jwt", re.compile(r"\beyJ[\w-]{5,}\.eyJ[\w-]{5,}\.[\w-]*"), _whole("jwt")),
    ("aws_access_key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), _whole("aws_access_key")),
    (
        "github_token",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b"),
        _whole("github_token"),
    ),
    ("slack_token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), _whole("slack_token")),
    ("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), _whole("google_api_key")),
    ("api_key", re.compile(r"\bsk-(?:[A-Za-z0-9]+-)?[A-Za-z0-9_-]{20,}"), _whole("api_key")),
    (
        "bearer_token",
        re.compile(r"\b(?:Bearer|Basic|Token)\s+(?P<t>(?!\[REDACTED)[A-Za-z0-9\-._~+/]{8,}=*)"),
        _group("bearer_token", "t"),
    ),
    (
        "secret_value",
        re.compile(
            r"(?i)\b(?:[\w-]*[_-])?" + _KEYWORDS + r"\b[\"']?\s*[:=]\s*[\"']?"
            r"(?P<v>(?!\[REDACTED)[^\s\"',;&}]+)"
        ),
        _group("secret_value", "v"),
    ),
    (
        "email",
        re.compile(r"\b[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
        _whole("email"),
    ),
    ("card_number", re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])"), _card),
    (
        "ipv6",
        re.compile(
            r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}"
            r"(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{1,4})?(?:%\w+)?(?![\w:])"
        ),
        _ipv6,
    ),
    (
        "ipv4",
        re.compile(
            r"(?i)(?<![\w.])(?<!version )(?<!ver )(?P<ip>\d{1,3}(?:\.\d{1,3}){3})(?!\.?\d)"
            r"(?:/\d{1,2})?"
        ),
        _ipv4,
    ),
)


def redact(text: str) -> Redacted:
    """`text` with every secret and piece of personal data replaced by a [REDACTED:kind]."""
    counts: Counter[str] = Counter()
    for kind, pattern, replacer in _RULES:
        text = pattern.sub(_counting(kind, replacer, counts), text)
    return Redacted(text, tuple(counts.items()))


def _counting(
    kind: str, replacer: Replacer, counts: Counter[str]
) -> Callable[[re.Match[str]], str]:
    def replace(m: re.Match[str]) -> str:
        replaced = replacer(m)
        if replaced is None:
            return m.group(0)
        counts[kind] += 1
        return replaced

    return replace


def merge_counts(*parts: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
    """Sum several redaction counts into one, keeping first-seen order."""
    total: Counter[str] = Counter()
    for part in parts:
        for kind, n in part:
            total[kind] += n
    return tuple(total.items())
