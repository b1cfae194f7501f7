"""Read states and responses out of raw model text. Nothing here raises on bad model text.

Two readers:

- ``parse_output(text, states)`` checks the output format (strict by default: an optional think
  block, then exactly the requested tags in order, nothing else) and returns the content per state.
  The reward uses it: an output that breaks the format scores 0 without a judge call.
- ``extract_response(text)`` is lenient: it pulls the reply text out of whatever the model wrote,
  for evaluation and serving, and never returns think or response markup.

Decode completions with ``skip_special_tokens=True``: ``<|im_end|>`` left in the text breaks the
strict format, while ``<think>``/``</think>`` are plain tokens in Qwen3 and stay in either way.

Example:
    >>> parse_output("<stance>backs OP</stance>", ["stance"]).fields
    {'stance': 'backs OP'}
    >>> extract_response("plan the reply</think>\\n<response>NTA.</response>")
    'NTA.'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from humanlm.states.registry import RESPONSE, STATE_NAMES, STATES

__all__ = [
    "THINK_CLOSE",
    "THINK_OPEN",
    "ParsedOutput",
    "cut_at_closing_tag",
    "close_open_tag",
    "cut_at_stop",
    "extract_response",
    "parse_output",
]

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

_RESPONSE_OPEN = STATES[RESPONSE].open_tag
_RESPONSE_CLOSE = STATES[RESPONSE].close_tag
_CLOSE_TAGS = tuple(s.close_tag for s in STATES.values())
# Markup extract_response must never return.
_RESPONSE_MARKERS = (THINK_OPEN, THINK_CLOSE, _RESPONSE_OPEN, _RESPONSE_CLOSE)


@dataclass(frozen=True)
class ParsedOutput:
    """What ``parse_output`` found in one model output.

    Attributes:
        fields: requested state name -> its stripped content, or None when the state was not
            found (in strict mode every field is None as soon as the format is broken).
        valid: the format holds (strict mode) and every requested field is non-empty.
        thinking: the stripped text of the leading think block (``""`` for an empty block), or
            None when the output has no think block.
    """

    fields: dict[str, str | None]
    valid: bool
    thinking: str | None = None


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the end of its first stop string (unchanged when it has none).

    A server that stops on a stop string stops on the token that completes it and returns that
    whole token; Qwen's vocabulary merges ``>`` with what follows (``"><"`` is one token), so the
    decoded text can end ``</stance><``. Cutting at the stop string restores what the model meant
    to write before the strict format check.
    """
    ends = [i + len(s) for s in stop if (i := text.find(s)) >= 0]
    return text[: min(ends)] if ends else text


def close_open_tag(text: str, stop: Sequence[str]) -> str:
    """Servers cut the stop string off; put a closing tag back after its opened tag."""
    for close in stop:
        opening = close.replace("</", "<", 1)
        if text.rfind(opening) > text.rfind(close):
            return text + close
    return text


def cut_at_closing_tag(text: str) -> str:
    """``text`` up to the end of its first state closing tag (unchanged when it has none)."""
    return cut_at_stop(text, _CLOSE_TAGS)


def parse_output(text: str, states: Sequence[str], *, strict: bool = True) -> ParsedOutput:
    """Parse the tagged states of one model output.

    Strict format: optional thinking (``<think>T</think>``, or ``T</think>`` because the generation
    prompt already opened the block) with no think tag inside ``T``; then each requested tag once,
    in the requested order, separated only by whitespace; nothing after the last one. A field's
    content may not contain any state tag or think tag.

    Non-strict: each requested tag is looked up wherever it first occurs (outside think blocks) and
    must be closed; the output is valid when every requested field is non-empty.

    Args:
        text: the decoded completion.
        states: the state names expected, in order (e.g. ``["stance"]`` or ``["response"]``).
        strict: check the whole format (rewards) or only pick out the fields (diagnostics).

    Returns:
        A ParsedOutput; never raises on any text.
    """
    thinking = _leading_thinking(text)
    if strict:
        fields = _parse_strict(text, states)
        if fields is None:
            return ParsedOutput({name: None for name in states}, valid=False, thinking=thinking)
    else:
        visible = _strip_thinking(text)
        fields = {name: _first_closed(visible, *_tags(name)) for name in states}
    valid = all(fields[name] for name in states)
    return ParsedOutput(fields, valid=valid, thinking=thinking)


def extract_response(text: str) -> str:
    """Return the reply text in a model output, as well as it can be found.

    Think blocks are dropped first: closed ones, an unclosed leading part that ends in
    ``</think>``, and an unclosed trailing ``<think>...``. Then the first closed
    ``<response>X</response>`` gives X; without one, the whole remaining text is the reply. Stray
    think and response tags are removed from the result, which is stripped.

    Never raises, and the result never contains ``<think>``, ``</think>``, ``<response>`` or
    ``</response>``.
    """
    visible = _strip_thinking(text)
    inside = _first_closed(visible, _RESPONSE_OPEN, _RESPONSE_CLOSE)
    return _remove_markers(visible if inside is None else inside).strip()


def _tags(name: str) -> tuple[str, str]:
    state = STATES.get(name)
    if state is not None:
        return state.open_tag, state.close_tag
    return f"<{name}>", f"</{name}>"


def _forbidden_markup(states: Sequence[str]) -> tuple[str, ...]:
    names = dict.fromkeys([*STATE_NAMES, *states])
    return (THINK_OPEN, THINK_CLOSE, *(tag for name in names for tag in _tags(name)))


def _parse_strict(text: str, states: Sequence[str]) -> dict[str, str | None] | None:
    """Return the contents per state if ``text`` follows the strict format, else None."""
    rest = text
    close = rest.find(THINK_CLOSE)
    if close >= 0:
        head = rest[:close]
        if head.lstrip().startswith(THINK_OPEN):
            head = head.lstrip()[len(THINK_OPEN) :]
        if THINK_OPEN in head:
            return None
        rest = rest[close + len(THINK_CLOSE) :]
    forbidden = _forbidden_markup(states)
    fields: dict[str, str | None] = {}
    for name in states:
        open_tag, close_tag = _tags(name)
        rest = rest.lstrip()
        if not rest.startswith(open_tag):
            return None
        end = rest.find(close_tag, len(open_tag))
        if end < 0:
            return None
        content = rest[len(open_tag) : end]
        if any(tag in content for tag in forbidden):
            return None
        fields[name] = content.strip()
        rest = rest[end + len(close_tag) :]
    if rest.strip():
        return None
    return fields


def _first_closed(text: str, open_tag: str, close_tag: str) -> str | None:
    """Stripped content of the first ``open_tag ... close_tag`` pair, or None."""
    start = text.find(open_tag)
    if start < 0:
        return None
    start += len(open_tag)
    end = text.find(close_tag, start)
    if end < 0:
        return None
    return text[start:end].strip()


def _leading_thinking(text: str) -> str | None:
    """Text of the first think block: ``<think>T</think>``, ``T</think>`` or an unclosed ``<think>T``."""
    opened, closed = text.find(THINK_OPEN), text.find(THINK_CLOSE)
    if closed >= 0 and (opened < 0 or closed < opened):
        return text[:closed].strip()
    if opened >= 0:
        start = opened + len(THINK_OPEN)
        end = text.find(THINK_CLOSE, start)
        return (text[start:] if end < 0 else text[start:end]).strip()
    return None


def _strip_thinking(text: str) -> str:
    """Drop an unclosed leading ``...</think>``, closed think blocks and a trailing ``<think>...``."""
    opened, closed = text.find(THINK_OPEN), text.find(THINK_CLOSE)
    if closed >= 0 and (opened < 0 or closed < opened):
        text = text[closed + len(THINK_CLOSE) :]
    kept, pos = [], 0
    while True:
        opened = text.find(THINK_OPEN, pos)
        if opened < 0:
            kept.append(text[pos:])
            break
        kept.append(text[pos:opened])
        closed = text.find(THINK_CLOSE, opened + len(THINK_OPEN))
        if closed < 0:
            break
        pos = closed + len(THINK_CLOSE)
    return "".join(kept)


def _remove_markers(text: str) -> str:
    # Removing one marker can join its neighbours into another ("<resp<think>onse>"), so repeat
    # until none is left; every pass shortens the text, so this ends.
    while any(marker in text for marker in _RESPONSE_MARKERS):
        for marker in _RESPONSE_MARKERS:
            text = text.replace(marker, "")
    return text
