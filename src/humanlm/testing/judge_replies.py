"""Judge-shaped replies for ``ScriptedServer``, well formed or malformed on purpose.

``group_reply`` writes the group JSON the judge prompt asks for, with switches for the ways real
models deviate (code fence with prose, reversed key order, scores as strings, trailing commas, a
list of numbered objects) and the Chat gate's ``assistant_voice`` field. ``judge_reply_fn`` reads
a judge prompt (group or aspects) and answers it, by default with the word overlap between each
candidate and the real reply, and, when the prompt asks for the Chat gate, with
``sounds_like_assistant`` for each candidate's voice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence

from humanlm.testing.server import RecordedRequest, Reply

__all__ = [
    "aspects_reply",
    "asks_for_gate",
    "candidates_in",
    "dimensions_in",
    "group_reply",
    "judge_reply_fn",
    "overlap_score",
    "real_reply_in",
    "sounds_like_assistant",
]

_CANDIDATES = re.compile(r"<candidates>\n(.*?)\n</candidates>", flags=re.DOTALL)
_CANDIDATE = re.compile(r"<candidate>\n(.*?)\n</candidate>", flags=re.DOTALL)
_REAL = re.compile(r"<real_reply>\n(.*?)\n</real_reply>", flags=re.DOTALL)
_DIMENSION = re.compile(r"^- ([a-z_]+): ", flags=re.MULTILINE)
# Phrases of an AI assistant's answer: a cheap, deterministic stand-in for the Chat gate.
_ASSISTANT_PHRASES = (
    "as an ai",
    "i'm an ai",
    "i am an ai",
    "i'd be happy to help",
    "i can help you",
    "great question",
    "hope this helps",
    "let me know if you",
)


def candidates_in(prompt: str) -> dict[str, str]:
    """The numbered candidates of a group prompt (``{"1": text, ...}``); ``{}`` if none."""
    match = _CANDIDATES.search(prompt)
    return json.loads(match.group(1)) if match else {}


def real_reply_in(prompt: str) -> str:
    """The real reply shown in a judge prompt."""
    match = _REAL.search(prompt)
    return match.group(1) if match else ""


def dimensions_in(prompt: str) -> list[str]:
    """The state names an aspects prompt asks about (empty for a group prompt)."""
    if _CANDIDATE.search(prompt) is None:
        return []
    return _DIMENSION.findall(prompt.split("The dimensions:", 1)[-1])


def asks_for_gate(prompt: str) -> bool:
    """Whether a group prompt asks for the Chat gate's ``assistant_voice`` per candidate."""
    return '"assistant_voice"' in prompt


def sounds_like_assistant(candidate: str) -> bool:
    """Whether a text uses an AI assistant's stock phrases (the stand-in judge's Chat gate)."""
    text = candidate.lower()
    return any(phrase in text for phrase in _ASSISTANT_PHRASES)


def overlap_score(candidate: str, reference: str) -> float:
    """Jaccard overlap of lower-cased word sets: a cheap, deterministic stand-in judgement."""
    a, b = set(candidate.lower().split()), set(reference.lower().split())
    return round(len(a & b) / len(a | b), 4) if a | b else 0.0


def group_reply(
    scores: Mapping[int | str, float | str] | Sequence[float],
    *,
    key_points: Sequence[str] = ("the main point",),
    reverse: bool = False,
    as_strings: bool = False,
    fence: bool = False,
    prose: bool = False,
    trailing_comma: bool = False,
    as_list: bool = False,
    assistant_voice: Mapping[int | str, bool | str] | None = None,
) -> str:
    """A group reply ``{"key_points": [...], "scores": {"1": {"thought", "score"}, ...}}``.

    Args:
        scores: number -> score, or a list (numbered from 1 in order).
        key_points: the key points to include.
        reverse: list the candidates from the highest number down.
        as_strings: write scores as strings (``"0.7"``).
        fence: wrap the JSON in a ```json code fence.
        prose: put sentences before and after the JSON.
        trailing_comma: leave a trailing comma after the last candidate.
        as_list: write ``scores`` as a list of ``{"candidate": n, ...}`` objects.
        assistant_voice: number -> the Chat gate's answer to write in that entry (``None``: no
            such field; numbers left out get none either).
    """
    items = (
        [(str(k), v) for k, v in scores.items()]
        if isinstance(scores, Mapping)
        else [(str(i), v) for i, v in enumerate(scores, start=1)]
    )
    if reverse:
        items = items[::-1]

    voices = {str(k): v for k, v in (assistant_voice or {}).items()}

    def entry(key: str, value: float | str) -> dict[str, object]:
        shown = str(value) if as_strings else value
        fields: dict[str, object] = {"thought": f"candidate {key} judged"}
        if key in voices:
            fields["assistant_voice"] = voices[key]
        return {**fields, "score": shown}

    if as_list:
        body: object = [{"candidate": int(k), **entry(k, v)} for k, v in items]
    else:
        body = {k: entry(k, v) for k, v in items}
    text = json.dumps({"key_points": list(key_points), "scores": body}, indent=1)
    if trailing_comma:
        text = text.rstrip()[:-1].rstrip() + ",\n}"
    if fence:
        text = f"```json\n{text}\n```"
    if prose:
        text = f"Here is my evaluation of the candidates.\n{text}\nI hope this helps."
    return text


def aspects_reply(scores: Mapping[str, float | str], *, as_strings: bool = False) -> str:
    """An aspects reply ``{"scores": {state: {"key_points", "thought", "score"}}}``."""
    body = {
        state: {
            "key_points": ["a point"],
            "thought": f"{state} judged",
            "score": str(v) if as_strings else v,
        }
        for state, v in scores.items()
    }
    return json.dumps({"scores": body})


def judge_reply_fn(
    score: Callable[[str, str], float] = overlap_score,
    voice: Callable[[str], bool] = sounds_like_assistant,
) -> Callable[[RecordedRequest], Reply]:
    """A reply function that answers group and aspects prompts with ``score(candidate, real)``.

    Aspects prompts get the same score for every dimension they list. Group prompts that ask for
    the Chat gate get ``voice(candidate)`` as each entry's ``assistant_voice``.
    """

    def reply(request: RecordedRequest) -> Reply:
        prompt = request.prompt
        real = real_reply_in(prompt)
        dims = dimensions_in(prompt)
        if dims:
            candidate = _CANDIDATE.search(prompt)
            value = score(candidate.group(1) if candidate else "", real)
            return Reply(content=aspects_reply({d: value for d in dims}))
        numbered = candidates_in(prompt)
        voices = {k: voice(v) for k, v in numbered.items()} if asks_for_gate(prompt) else None
        scores = {k: score(v, real) for k, v in numbered.items()}
        return Reply(content=group_reply(scores, assistant_voice=voices))

    return reply
