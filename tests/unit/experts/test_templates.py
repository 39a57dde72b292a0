"""Template mining: masking, code locations, the own Drain-like miner and the drain3 wrapper."""

from __future__ import annotations

import pytest

from warroom.experts.templates import (
    PARAM,
    Drain3Miner,
    TemplateMiner,
    TemplateResult,
    code_location,
    event_key,
    mask,
    mine,
    template_key,
)


def test_mask_replaces_uuid_ip_port_and_numbers() -> None:
    masked = mask("req 123e4567-e89b-12d3-a456-426614174000 from 10.0.0.12:8080 took 12.5 ms")
    assert masked == "req <*> from <*> took <*> ms"


def test_mask_keeps_keys_and_words_but_hides_values() -> None:
    assert mask("user=alice retries=3 status ok") == "user=<*> retries=<*> status ok"


def test_mask_hides_hex_ids_trace_ids_and_numbered_paths() -> None:
    masked = mask("TraceID: 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7 /data/p17/x.log")
    assert masked == "TraceID: <*> span <*> <*>"


def test_mask_leaves_plain_words_and_short_hex_looking_words_alone() -> None:
    # "deadbeefcafe" has no digit, so it reads as a word, not an id.
    assert (
        mask("deadbeefcafe cache refresh /usr/bin/ls") == "deadbeefcafe cache refresh /usr/bin/ls"
    )


def test_code_location_found_after_whitespace() -> None:
    assert code_location("  v.s.i.VerifyCodeServiceImpl#114 verify ok") == (
        "v.s.i.VerifyCodeServiceImpl#114"
    )
    assert code_location("c.s.ContactsServiceImpl#31: found 3 contacts") == (
        "c.s.ContactsServiceImpl#31"
    )


@pytest.mark.parametrize(
    "message",
    ["ContactsServiceImpl#31 no dot", "see c.s.ContactsServiceImpl#31 later", "a.b.C# x", ""],
)
def test_code_location_absent(message: str) -> None:
    assert code_location(message) is None


def test_messages_differing_only_in_numbers_share_one_template() -> None:
    result = mine([f"worker {i} finished job {i * 7} in {i}.5 s" for i in range(20)])
    assert set(result.ids) == {0}
    assert result.templates == ("worker <*> finished job <*> in <*> s",)


def test_different_verbs_get_different_templates() -> None:
    result = mine(["connection opened to db", "connection closed to db", "connection opened to db"])
    assert result.ids[0] == result.ids[2] != result.ids[1]
    assert len(result.templates) == 2


def test_differing_word_becomes_parameter_after_merge() -> None:
    result = mine(["login ok for user alice now", "login ok for user bob now"])
    assert result.ids == (0, 0)
    assert result.templates[0] == "login ok for user <*> now"


def test_different_token_counts_never_share_a_template() -> None:
    result = mine(["disk full", "disk full on node"])
    assert result.ids == (0, 1)


def test_dissimilar_messages_in_the_same_leaf_stay_apart() -> None:
    # Same length and same leading tokens, but under half the tokens equal.
    miner = TemplateMiner(similarity=0.5, depth=3)
    first = miner.add("job alpha beta gamma delta")
    second = miner.add("job one two three four")
    assert first != second
    assert len(miner) == 2


def test_miner_is_deterministic() -> None:
    lines = [f"op {w} took {n} ms" for w in ("read", "write") for n in range(5)] + ["boot done"]
    assert mine(lines) == mine(lines)


def test_max_children_sends_overflow_to_wildcard_branch() -> None:
    miner = TemplateMiner(depth=3, max_children=2)
    ids = [miner.add(f"{word} started") for word in ("alpha", "beta", "gamma", "delta")]
    # Only "alpha" gets its own branch; the rest share the wildcard leaf and then merge.
    assert ids[0] != ids[1]
    assert ids[1] == ids[2] == ids[3]


def test_template_result_is_frozen_and_indexed_by_id() -> None:
    result = mine(["a 1", "b x y", "a 2"])
    assert isinstance(result, TemplateResult)
    assert result.templates[result.ids[0]] == "a <*>"
    with pytest.raises(AttributeError):
        result.ids = ()  # type: ignore[misc]


def test_drain3_miner_groups_like_own_on_easy_input() -> None:
    lines = ["worker 1 done", "worker 2 done", "cache miss on users"]
    result = mine(lines, miner="drain3")
    assert result.ids == (0, 0, 1)
    assert result.templates[0] == f"worker {PARAM} done"
    assert len(Drain3Miner()) == 0


def test_unknown_miner_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="drain3, own"):
        mine(["x"], miner="nope")


def test_event_key_prefers_code_location() -> None:
    assert event_key("c.s.ContactsServiceImpl#31 saved 3", "<*> saved <*>") == (
        "c.s.ContactsServiceImpl#31"
    )


def test_event_key_strips_leading_parameters_and_trims() -> None:
    template = "<*> [<*>] <*>:<*> " + "long " * 30
    key = event_key("whatever", template)
    assert key.startswith("long long")
    assert len(key) <= 80
    assert not key.endswith(" ")


def test_template_key_is_the_event_key_of_a_line_without_location() -> None:
    template = "<*> [<*>] took <*> ms"
    assert template_key(template) == event_key("no location here", template) == "took <*> ms"


def test_a_repeated_line_keeps_its_template_after_it_was_generalised() -> None:
    miner = TemplateMiner()
    first = miner.add("user logged in from alice")
    assert miner.add("user logged in from bob") == first
    assert miner.add("user logged in from alice") == first  # masked once, then remembered
    assert miner.template(first) == "user logged in from <*>"
    assert miner.add("user logged in via alice") == first
    assert miner.template(first) == "user logged in <*> <*>"
