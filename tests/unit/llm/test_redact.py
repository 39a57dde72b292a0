from __future__ import annotations

import pytest

from warroom.llm.redact import luhn_ok, merge_counts, redact

GITHUB = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


@pytest.mark.parametrize(
    ("text", "secret", "kind"),
    [
        ("key AKIAIOSFODNN7EXAMPLE in env", "AKIAIOSFODNN7EXAMPLE", "aws_access_key"),
        ("Authorization: Bearer abc123def456ghi", "abc123def456ghi", "bearer_token"),
        ("OPENAI_KEY sk-proj-abcdefghijklmnopqrstuvwx1234", "sk-proj-abcdefghij", "api_key"),
        (f"token {GITHUB}", GITHUB, "github_token"),
        ("slack xoxb-1234567890-abcdefghij", "xoxb-1234567890", "slack_token"),
        (f"session {JWT}", JWT, "jwt"),
        ("db password=hunter2 ok", "hunter2", "secret_value"),
        ('{"client_secret": "s3cr3t-value"}', "s3cr3t-value", "secret_value"),
        ("DB_PASSWORD: 'pa55word'", "pa55word", "secret_value"),
        ("GET /cb?api_key=abc123&x=1", "abc123", "secret_value"),
        ("dsn postgres://app:hunter2@db.internal:5432/orders", "hunter2", "url_password"),
        ("mail ops.lead+pager@example.co.uk now", "ops.lead+pager@example.co.uk", "email"),
        ("from 192.168.10.20:8080", "192.168.10.20", "ipv4"),
        ("peer 2001:db8::8a2e:370:7334 down", "2001:db8::8a2e:370:7334", "ipv6"),
        ("link fe80::1%eth0 up", "fe80::1", "ipv6"),
        ("card 4111 1111 1111 1111 charged", "4111 1111 1111 1111", "card_number"),
        ("card 5500-0000-0000-0004 charged", "5500-0000-0000-0004", "card_number"),
        ("amex 378282246310005", "378282246310005", "card_number"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----",
            "MIIEabc",
            "private_key",
        ),
    ],
)
def test_each_kind_is_redacted_and_named(text: str, secret: str, kind: str) -> None:
    result = redact(text)
    assert secret not in result.text
    assert f"[REDACTED:{kind}]" in result.text
    assert kind in result.kinds


def test_the_result_never_holds_the_secret_itself() -> None:
    result = redact("password=hunter2")
    assert "hunter2" not in repr(result.counts)
    assert result.counts == (("secret_value", 1),)


def test_url_keeps_user_and_host_and_counts_each_occurrence() -> None:
    result = redact("a://u:p1@h and b://v:p2@k")
    assert result.text == "a://u:[REDACTED:url_password]@h and b://v:[REDACTED:url_password]@k"
    assert result.counts == (("url_password", 2),)


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",  # fails Luhn
        "epoch ms 1674958800000",  # 13 digits, no card prefix
        "trace 4000000000000001234",  # 19 digits starting with 4 but fails Luhn
        "order id 1234567890123",
    ],
)
def test_numbers_that_are_not_cards_are_kept(text: str) -> None:
    assert redact(text).text == text


@pytest.mark.parametrize(
    "text",
    [
        "running v1.2.3.4 of the agent",
        "agent version 1.2.3.4",
        "Version 10.0.0.1 released",
        "semver 1.2.3",
        "oid 1.3.6.1.4.1",
        "not an ip 999.1.1.1",
        "at 10:03:20 and 12:30",
        "std::vector and Foo::bar",
        "mac 00:1a:2b:3c:4d:5e",
        "max_tokens=512 tokens=20",
        "connections 12 -> 95 (x7.92, 8.1 robust sigma)",
        "12/340 lines (3.5%) then 2.5e+04",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    result = redact(text)
    assert result.text == text
    assert result.counts == ()


def test_a_bare_dotted_quad_counts_as_an_address() -> None:
    # Decision (see module doc): without "v"/"version" before it, 1.2.3.4 is an address.
    assert redact("host 1.2.3.4").text == "host [REDACTED:ipv4]"


def test_redaction_is_idempotent() -> None:
    once = redact("password=hunter2 bob@example.com 10.0.0.1 Bearer abcdefghijkl").text
    again = redact(once)
    assert again.text == once
    assert again.counts == ()


def test_luhn() -> None:
    assert luhn_ok("4111111111111111")
    assert luhn_ok("79927398713")
    assert not luhn_ok("79927398710")


def test_merge_counts_sums_by_kind() -> None:
    assert merge_counts((("email", 1),), (("ipv4", 2), ("email", 1))) == (
        ("email", 2),
        ("ipv4", 2),
    )
