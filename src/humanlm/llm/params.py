"""Request fields by model family: what a provider accepts is decided here, and nowhere else.

OpenAI's reasoning models (the ``gpt-5`` family but its ``-chat`` snapshots, ``o1``, ``o3``,
``o4-mini`` ...) refuse some fields of the chat API with HTTP 400:

- ``max_tokens``: they take ``max_completion_tokens`` (a limit that covers the hidden reasoning
  as well as the reply);
- sampling fields at any value but their only one: ``temperature`` and ``top_p`` 1,
  ``presence_penalty`` and ``frequency_penalty`` 0;
- ``logprobs``, ``top_logprobs`` and ``logit_bias``.

``fit_params`` turns request fields into ones the model accepts: ``max_tokens`` is sent as
``max_completion_tokens`` with the same number, a field at its only allowed value is kept (the
paper's train judge, gpt-5-mini at temperature 1, sends what the paper used), and any other value
of those fields is left out, with one warning per model and field, since the model samples only
one way. Other models get their fields as given. Every backend fits its fields here, so a judge,
a simulator or a writer on such a model sends a request the API takes.

Example:
    >>> fit_params("gpt-5-mini", {"temperature": 1.0, "max_tokens": 4096})
    {'temperature': 1.0, 'max_completion_tokens': 4096}
    >>> fit_params("gpt-4.1-mini", {"temperature": 0.0, "max_tokens": 4096})
    {'temperature': 0.0, 'max_tokens': 4096}
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["fit_params", "is_openai_reasoning"]

logger = logging.getLogger(__name__)

# gpt-5, gpt-5-mini, gpt-5.1, gpt-5-2025-08-07 ... (not gpt-5-chat-latest); o1, o3-mini, o4-mini ...
_REASONING = re.compile(r"^(?:gpt-5(?:\.\d+)?(?!-chat)|o[134])(?:-|$)")
# Fields these models take at one value only.
_FIXED: dict[str, float] = {
    "temperature": 1.0,
    "top_p": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
}
_UNSUPPORTED = ("logprobs", "top_logprobs", "logit_bias")
_warned: set[tuple[str, str]] = set()


def is_openai_reasoning(model: str) -> bool:
    """Whether ``model`` names one of OpenAI's reasoning models.

    Accepts the name as the OpenAI API takes it, a fine-tune of one (``ft:o4-mini:org::id``) and
    litellm's ``openai/`` form. Names of other providers (``anthropic/...``) or of a server's own
    models (``Qwen/Qwen3-8B``) are not.
    """
    name = model.strip().lower()
    if name.startswith("ft:"):
        name = name[3:].split(":", 1)[0]
    provider, slash, rest = name.partition("/")
    if slash:
        if provider != "openai":
            return False
        name = rest
    return bool(_REASONING.match(name))


def fit_params(model: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """``params`` as ``model`` accepts them (module docstring); a new dict, the input untouched."""
    fields = dict(params or {})
    if not fields or not is_openai_reasoning(model):
        return fields
    if "max_tokens" in fields:
        limit = fields.pop("max_tokens")
        if limit is not None:
            fields["max_completion_tokens"] = limit
    for name, only in _FIXED.items():
        value = fields.get(name)
        if value is not None and float(value) != only:
            del fields[name]
            _warn_once(model, name, f"takes only {name} {only:g}; {value!r} is not sent")
    for name in _UNSUPPORTED:
        value = fields.pop(name, None)
        if value not in (None, False):
            _warn_once(model, name, f"does not take {name}; it is not sent")
    return fields


def _warn_once(model: str, field: str, what: str) -> None:
    if (model, field) not in _warned:
        _warned.add((model, field))
        logger.warning("%s is an OpenAI reasoning model: it %s", model, what)
