"""Tests for humanlm.states.parsing: edge-case tables plus property tests on random text and tag soups."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from humanlm.states.parsing import (
    THINK_CLOSE,
    THINK_OPEN,
    ParsedOutput,
    cut_at_closing_tag,
    cut_at_stop,
    extract_response,
    parse_output,
)
from humanlm.states.registry import STATE_NAMES, STATES

ALL_TAGS = [tag for s in STATES.values() for tag in (s.open_tag, s.close_tag)]
MARKUP = [*ALL_TAGS, THINK_OPEN, THINK_CLOSE]
RESPONSE_MARKERS = ["<think>", "</think>", "<response>", "</response>"]
S, SE, R = ["stance"], ["stance", "emotion"], ["response"]

# One case per line, named by its trailing comment.
# fmt: off
STRICT_CASES = [
    ("<stance>backs OP</stance>", S, {"stance": "backs OP"}, True),  # plain tag
    ("\n <stance> backs OP \n</stance>\n", S, {"stance": "backs OP"}, True),  # whitespace around and inside
    ("<think>\nwhy\n</think>\n\n<response>hi</response>", R, {"response": "hi"}, True),  # closed think block
    ("why</think>\n\n<response>hi</response>", R, {"response": "hi"}, True),  # think opened by the prompt
    ("<think>\n\n</think>\n\n<stance>x</stance>", S, {"stance": "x"}, True),  # empty pre-filled think
    ("</think><stance>x</stance>", S, {"stance": "x"}, True),  # bare close-think
    ("<stance>x</stance>\n<emotion>y</emotion>", SE, {"stance": "x", "emotion": "y"}, True),  # two states in order
    ("<emotion>y</emotion><stance>x</stance>", SE, {"stance": None, "emotion": None}, False),  # wrong order
    ("<stance>x</stance>", SE, {"stance": None, "emotion": None}, False),  # one state missing
    ("<stance>x</stance><stance>y</stance>", S, {"stance": None}, False),  # tag twice
    ("Sure! <stance>x</stance>", S, {"stance": None}, False),  # text before
    ("<stance>x</stance> Thanks.", S, {"stance": None}, False),  # text after
    ("<stance>x", S, {"stance": None}, False),  # unclosed tag
    ("<stance>  </stance>", S, {"stance": ""}, False),  # blank content
    ("<stance>x <emotion>y</emotion></stance>", S, {"stance": None}, False),  # state tag inside content
    ("<stance>a <think> b</stance>", S, {"stance": None}, False),  # think tag inside content
    ("<stance>a </think> b</stance>", S, {"stance": None}, False),  # close-think inside content
    ("<think>a</think><think>b</think><stance>x</stance>", S, {"stance": None}, False),  # two think blocks
    ("<think>a<think>b</think><stance>x</stance>", S, {"stance": None}, False),  # nested think
    ("hi <think>a</think><stance>x</stance>", S, {"stance": None}, False),  # text before think
    ("<think>a <stance>x</stance>", S, {"stance": None}, False),  # unclosed think
    ("<stance>x</stance>", ["emotion"], {"emotion": None}, False),  # other tag
    ("<Stance>x</Stance>", S, {"stance": None}, False),  # tags are case-sensitive
    ("<stance>x</stance><|im_end|>", S, {"stance": None}, False),  # special token left in
    ("", S, {"stance": None}, False),  # empty text
    ("  ", [], {}, True),  # nothing requested
]

LENIENT_CASES = [
    ("Sure! <stance> x </stance> ok", S, {"stance": "x"}, True),  # text around
    ("<emotion>y</emotion> <stance>x</stance>", SE, {"stance": "x", "emotion": "y"}, True),  # any order
    ("<stance>a</stance><stance>b</stance>", S, {"stance": "a"}, True),  # first occurrence wins
    ("<think><stance>draft</stance></think><stance>final</stance>", S, {"stance": "final"}, True),  # tags in thinking skipped
    ("<stance>x", S, {"stance": None}, False),  # unclosed tag
    ("<stance> </stance>", S, {"stance": ""}, False),  # blank content
    ("<stance>x</stance>", ["stance", "goal"], {"stance": "x", "goal": None}, False),  # one missing
    ("<stance>a <goal>b</goal></stance>", S, {"stance": "a <goal>b</goal>"}, True),  # nested tags kept
]

THINKING_CASES = [
    ("<stance>x</stance>", None),  # no think block
    ("<think>\n\n</think>\n\n<stance>x</stance>", ""),  # empty pre-filled block
    ("plan it</think><response>a</response>", "plan it"),  # opened by the prompt
    ("<think> plan </think><response>a</response>", "plan"),  # closed block
    ("<think>plan", "plan"),  # unclosed block
]

EXTRACT_CASES = [
    ("<response>Hi there</response>", "Hi there"),  # closed tags
    ("plan it</think>\n\n<response>NTA.</response>", "NTA."),  # leading thinking
    ("<think>plan</think><response>YTA</response>", "YTA"),  # closed think block
    ("<think>draft <response>no</response></think><response>yes</response>", "yes"),  # response inside thinking ignored
    ("<response>a</response> <response>b</response>", "a"),  # first closed response
    ("<response>a <response>b</response>", "a b"),  # nested open tag removed
    ("<response> a </think> b </response>", "b"),  # stray close-think ends leading thinking
    ("Just a reply.", "Just a reply."),  # no tags
    ("<response>cut off", "cut off"),  # unclosed response
    ("plan</think>cut off answer", "cut off answer"),  # thinking then untagged text
    ("answer <think>trailing thought", "answer"),  # trailing unclosed think
    ("<think>only thinking", ""),  # nothing but thinking
    ("<resp</response>onse>hi", "hi"),  # removal re-forms a tag
    ("<stance>x</stance> reply", "<stance>x</stance> reply"),  # other state tags kept
    ("", ""),  # empty text
]
# fmt: on


@pytest.mark.parametrize(("text", "states", "fields", "valid"), STRICT_CASES)
def test_parse_output_strict(text, states, fields, valid):
    parsed = parse_output(text, states)
    assert (parsed.fields, parsed.valid) == (fields, valid)


@pytest.mark.parametrize(("text", "states", "fields", "valid"), LENIENT_CASES)
def test_parse_output_lenient(text, states, fields, valid):
    parsed = parse_output(text, states, strict=False)
    assert (parsed.fields, parsed.valid) == (fields, valid)


@pytest.mark.parametrize(("text", "thinking"), THINKING_CASES)
def test_parse_output_reports_thinking(text, thinking):
    assert parse_output(text, S).thinking == thinking
    assert parse_output(text, S, strict=False).thinking == thinking


@pytest.mark.parametrize(("text", "expected"), EXTRACT_CASES)
def test_extract_response(text, expected):
    assert extract_response(text) == expected


# --- property tests ----------------------------------------------------------------------------

PIECES = [*MARKUP, "<", ">", "/", "think", "response", "resp", "onse>", " ", "\n", "a", "NTA"]
tag_soup = st.lists(st.sampled_from(PIECES) | st.text(max_size=4), max_size=25).map("".join)
any_text = st.text() | tag_soup
state_lists = st.lists(st.sampled_from(STATE_NAMES), unique=True, max_size=4)


def _free_of(markup: list[str]):
    return lambda s: not any(m in s for m in markup)


tag_free = st.text(max_size=30).filter(_free_of(MARKUP))
blank = st.sampled_from(["", " ", "\n", "\n\n", " \t "])


@given(text=any_text, states=state_lists, strict=st.booleans())
def test_parse_output_never_raises(text, states, strict):
    parsed = parse_output(text, states, strict=strict)
    assert isinstance(parsed, ParsedOutput)
    assert list(parsed.fields) == states
    if parsed.valid:
        assert all(isinstance(v, str) and v and v == v.strip() for v in parsed.fields.values())


@given(text=any_text, states=state_lists)
def test_strict_valid_implies_lenient_agrees(text, states):
    strict = parse_output(text, states)
    if strict.valid:
        assert parse_output(text, states, strict=False) == strict


@given(content=tag_free)
def test_parse_output_round_trip_single_tag(content):
    parsed = parse_output(f"<stance>{content}</stance>", ["stance"])
    assert parsed.fields["stance"] == content.strip()
    assert parsed.valid == bool(content.strip())


@settings(max_examples=200)
@given(
    contents=st.lists(tag_free, min_size=1, max_size=len(STATE_NAMES)),
    data=st.data(),
    gaps=st.lists(blank, min_size=len(STATE_NAMES) + 1, max_size=len(STATE_NAMES) + 1),
    think=st.none() | tag_free,
    opened_by_prompt=st.booleans(),
)
def test_parse_output_round_trip_many_tags(contents, data, gaps, think, opened_by_prompt):
    states = data.draw(st.permutations(STATE_NAMES))[: len(contents)]
    body = gaps[0] + "".join(
        f"<{name}>{content}</{name}>{gap}"
        for name, content, gap in zip(states, contents, gaps[1:], strict=False)
    )
    if think is not None:
        body = ("" if opened_by_prompt else "<think>") + think + "</think>" + body
    parsed = parse_output(body, states)
    assert parsed.fields == {name: c.strip() for name, c in zip(states, contents, strict=True)}
    assert parsed.valid == all(c.strip() for c in contents)
    assert parsed.thinking == (None if think is None else think.strip())


@given(text=any_text)
def test_extract_response_invariants(text):
    reply = extract_response(text)
    assert not any(marker in reply for marker in RESPONSE_MARKERS)
    assert reply == reply.strip()
    assert extract_response(reply) == reply


@given(
    reply=st.text(max_size=30).filter(_free_of(RESPONSE_MARKERS)),
    thinking=tag_soup.filter(_free_of([THINK_OPEN, THINK_CLOSE])),
    opened_by_prompt=st.booleans(),
)
def test_extract_response_round_trip(reply, thinking, opened_by_prompt):
    assert extract_response(f"<response>{reply}</response>") == reply.strip()
    prefix = "" if opened_by_prompt else "<think>"
    text = f"{prefix}{thinking}</think>\n\n<response>{reply}</response>"
    assert extract_response(text) == reply.strip()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<response>a</response>", "<response>a</response>"),  # ends at the stop string
        ("<response>a</response>>\n", "<response>a</response>"),  # last token ran past it
        ("<response>a</response> x </response>", "<response>a</response>"),  # first one counts
        ("<response>unfinished", "<response>unfinished"),  # no stop string: unchanged
    ],
)
def test_cut_at_stop(text, expected):
    assert cut_at_stop(text, ["</response>"]) == expected


CUT_CASES = [
    ("<stance>x</stance>", "<stance>x</stance>"),  # ends at the tag
    ("<stance>x</stance><", "<stance>x</stance>"),  # the last token ran past the tag
    ("plan</think>\n<response>hi</response>\n\n", "plan</think>\n<response>hi</response>"),
    ("<goal>a</goal> then </stance>", "<goal>a</goal>"),  # the first closing tag stops
    ("<stance>never closed", "<stance>never closed"),  # length limit: unchanged
]


@pytest.mark.parametrize(("text", "expected"), CUT_CASES)
def test_cut_at_closing_tag(text: str, expected: str) -> None:
    assert cut_at_closing_tag(text) == expected
