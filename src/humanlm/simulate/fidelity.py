"""The fidelity check of a simulated user turn: is it a turn a human user would write?

``humanlm simulate`` draws a user turn again when it fails (``run_conversation``), a bounded
number of times, and counts every failure in ``conversations.jsonl`` and the report. A turn fails
when it is

- ``empty``: nothing but whitespace (never sent to the assistant);
- ``assistant_voice``: written from the AI assistant's side, told by the stock phrases of an
  assistant's answer ("I'd be happy to help", "As an AI", ...): the slip the judge's Chat gate
  scores 0 in training (``humanlm.judge.group``), caught here without a judge call;
- ``copies_context``: it repeats ``COPY_SPAN_WORDS`` or more consecutive words of an earlier
  message (``humanlm.judge.realism.copied_span``), as a simulator echoing the assistant does.

The phrase list catches the common slips only; a turn that helps in its own words passes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from humanlm.judge.realism import copied_span

__all__ = ["ASSISTANT_PHRASES", "COPY_SPAN_WORDS", "FIDELITY_REASONS", "check_user_turn"]

# A run of this many words copied from an earlier message fails the check; shorter quotes
# ("you said 'next Tuesday'") are what people write.
COPY_SPAN_WORDS = 8

# Why a user turn failed the check, and what the report says of it.
FIDELITY_REASONS: dict[str, str] = {
    "empty": "the simulated user wrote nothing",
    "assistant_voice": "the turn reads as the AI assistant's answer (its stock phrases)",
    "copies_context": f"the turn repeats {COPY_SPAN_WORDS}+ words of an earlier message",
}

# Phrases of an AI assistant's answer that a human user of a chat does not write.
ASSISTANT_PHRASES = (
    "as an ai",
    "i'm an ai",
    "i am an ai",
    "as a language model",
    "as an assistant",
    "i'd be happy to help",
    "i would be happy to help",
    "i'd be glad to help",
    "happy to assist",
    "how can i assist you",
    "how can i help you today",
    "is there anything else i can help",
    "let me know if you have any other questions",
    "let me know if you need any further",
    "i hope this helps",
    "feel free to ask",
    "great question",
)
_APOSTROPHES = re.compile("[\u2018\u2019\u02bc]")


def _sounds_like_assistant(text: str) -> bool:
    lowered = _APOSTROPHES.sub("'", text.lower())
    return any(phrase in lowered for phrase in ASSISTANT_PHRASES)


def check_user_turn(
    text: str, messages: Sequence[Mapping[str, object]], *, copy_span_words: int = COPY_SPAN_WORDS
) -> str | None:
    """Why ``text`` fails as the user's next turn after ``messages``, or ``None`` if it passes.

    Args:
        text: the simulated user's turn.
        messages: the conversation so far (``{role, content}``).
        copy_span_words: the shortest copied run that fails (``copies_context``).

    Returns:
        A key of ``FIDELITY_REASONS`` or ``None``.
    """
    if not text.strip():
        return "empty"
    if _sounds_like_assistant(text):
        return "assistant_voice"
    earlier = [str(m.get("content") or "") for m in messages]
    if copied_span(text, earlier, words=copy_span_words):
        return "copies_context"
    return None
