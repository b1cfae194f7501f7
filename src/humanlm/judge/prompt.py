"""Judge prompts: templates, versions and rendering (untrusted text sanitised).

Templates live in ``judge/prompts/*.md`` and are listed in ``judge/prompts/VERSIONS`` with a
version and a content hash (a test fails when a template changes without a bump). The version of
each prompt kind goes into every judge result, so cached and logged scores say which rubric made
them.

Output shapes the judge is asked for:

- group mode: ``{"key_points": [str, ...], "scores": {"1": {"thought": str, "score": float}, ...}}``
  with one entry per candidate number, ``"1"`` .. ``"N"`` in the order the candidates were shown;
  with the Chat gate (``gate=True``, ``humanlm.judge.group``) every entry also carries
  ``"assistant_voice": true|false``;
- aspects mode: ``{"scores": {"stance": {"key_points": [...], "thought": str, "score": float},
  ...}}`` keyed by state name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from humanlm.data.transcript import render_transcript, sanitise
from humanlm.llm.templates import PromptFolder
from humanlm.states import RESPONSE, get_state
from humanlm.states.render import render

__all__ = [
    "aspects_prompt_version",
    "build_aspects_prompt",
    "build_group_prompt",
    "group_prompt_version",
    "load_template",
    "prompt_versions",
    "template_hash",
]

PROMPTS = PromptFolder("humanlm.judge")


def load_template(name: str) -> str:
    """Return the text of ``judge/prompts/<name>.md`` (trailing newlines removed).

    Raises:
        ConfigError: there is no such template.
    """
    return PROMPTS.load(name)


def template_hash(name: str) -> str:
    """First 12 hex digits of the sha256 of a template's text."""
    return PROMPTS.hash(name)


def prompt_versions() -> dict[str, str]:
    """Map template name -> version string, read from ``judge/prompts/VERSIONS``."""
    return PROMPTS.versions()


def group_prompt_version(*, gate: bool = False) -> str:
    """Version of the group prompt (the main template plus the response-only rules, and the
    Chat gate's rules when ``gate``)."""
    v = prompt_versions()
    version = f"judge-group-v{v['group']}.{v['group_response']}"
    return f"{version}+gate{v['group_gate']}" if gate else version


def aspects_prompt_version() -> str:
    """Version of the aspects prompt (one response, all latent states)."""
    return f"judge-aspects-v{prompt_versions()['aspects']}"


def _example_scores(keys: Sequence[str], *, gate: bool = False) -> str:
    voice = '"assistant_voice": <true or false>, ' if gate else ""
    entry = '{"thought": "<one or two sentences>", ' + voice + '"score": <number from 0 to 1>}'
    shown = list(keys[:2])
    parts = [f'"{k}": {entry}' for k in shown]
    if len(keys) > 3:
        parts.append("...")
    if len(keys) > 2:
        parts.append(f'"{keys[-1]}": {entry}')
    return "{" + ", ".join(parts) + "}"


def build_group_prompt(
    *,
    context: Sequence[Mapping[str, object]],
    ground_truth: str,
    state: str,
    candidates: Sequence[str],
    gate: bool = False,
) -> str:
    """Render the group prompt: N candidates for one state of one example, numbered from 1.

    Args:
        context: the rendered context messages (``{name, content}`` dicts).
        ground_truth: the real reply.
        state: one of the seven state names (``response`` adds the response-only rules).
        candidates: the distinct candidate texts, shown as ``{"1": ..., "2": ...}`` in this order.
        gate: add the Chat gate's rules: the judge also says per candidate whether it is
            written from the AI assistant's side (``assistant_voice``).

    Raises:
        ConfigError: ``state`` is unknown.
    """
    spec = get_state(state)
    numbered = {str(i): sanitise(c) for i, c in enumerate(candidates, start=1)}
    keys = list(numbered)
    rules = load_template("group_response") + "\n" if state == RESPONSE else ""
    return render(
        load_template("group"),
        state=spec.name,
        description=spec.description,
        context=render_transcript(context),
        real_reply=sanitise(ground_truth).strip(),
        candidates=json.dumps(numbered, ensure_ascii=False, indent=1),
        count=len(keys),
        gate_rules=load_template("group_gate") + "\n\n" if gate else "",
        response_rules=rules,
        example_scores=_example_scores(keys, gate=gate),
    )


def build_aspects_prompt(
    *,
    context: Sequence[Mapping[str, object]],
    ground_truth: str,
    response: str,
    states: Sequence[str],
) -> str:
    """Render the aspects prompt: one response scored on several latent states in one call.

    Raises:
        ConfigError: a state is unknown.
    """
    dims = "\n".join(f"- {get_state(s).name}: {get_state(s).description}" for s in states)
    entry = '{"key_points": ["<point>"], "thought": "<one or two sentences>", "score": <0 to 1>}'
    example = "{" + ", ".join(f'"{s}": {entry}' for s in states[:2])
    example += ", ...}" if len(states) > 2 else "}"
    return render(
        load_template("aspects"),
        context=render_transcript(context),
        real_reply=sanitise(ground_truth).strip(),
        candidate=sanitise(response).strip(),
        dimensions=dims,
        example_scores=example,
    )
