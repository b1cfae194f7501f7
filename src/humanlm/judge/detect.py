"""The pairwise detection question: shown a context and two replies, which one did a human write?

One definition for every caller: ``humanlm eval --detect-judge`` (``humanlm.eval.detect_judge``)
and the realism reward of GRPO (``humanlm.judge.realism``). The judge sees the conversation and
the real and the generated reply as candidates ``A`` and ``B`` and answers
``{"human": "A" | "B", "reason": ...}``; a reply that names neither is a ``parse_failure``
(unscored), never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from humanlm.data.transcript import render_transcript, sanitise
from humanlm.judge.parse import ParsedReply
from humanlm.llm.jsonreply import read_json_object

__all__ = ["DETECT_PROMPT_VERSION", "build_detect_prompt", "parse_pick"]

DETECT_PROMPT_VERSION = "detect-pairwise-v1"

_PROMPT = """You will see a conversation and two candidate next messages from the same participant. \
One was written by the real person; the other was written by an AI pretending to be that person.

<conversation>
{context}
</conversation>

<candidate id="A">
{a}
</candidate>

<candidate id="B">
{b}
</candidate>

Which candidate did the real person write? Answer with JSON only:
{{"human": "A" or "B", "reason": "<one sentence>"}}"""


def build_detect_prompt(*, context: Sequence[Mapping[str, object]], a: str, b: str) -> str:
    """The pairwise prompt (untrusted text sanitised)."""
    return _PROMPT.format(context=render_transcript(context), a=sanitise(a), b=sanitise(b))


def parse_pick(raw: str) -> ParsedReply:
    """Read ``{"human": "A"|"B"}``; anything else (a repeated key included) is ``parse_failure``
    (unscored)."""
    data, problem = read_json_object(raw)
    pick = str(data.get("human", "")).strip().upper() if isinstance(data, dict) else ""
    if pick not in ("A", "B"):
        why = problem if data is None else '"human" is neither "A" nor "B"'
        return ParsedReply("parse_failure", detail=why)
    reason = data.get("reason") if isinstance(data, dict) else None
    return ParsedReply("ok", {pick: 1.0}, {pick: str(reason) if reason else None})
