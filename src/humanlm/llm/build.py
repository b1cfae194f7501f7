"""``build_backend``: a chat backend from a spec, under the one credential rule.

Example:
    >>> backend = build_backend("openai:m@http://127.0.0.1:8000/v1", role="persona model")
    ...  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from humanlm.llm.backends import ChatBackend, LiteLLMBackend, OpenAIBackend
from humanlm.llm.specs import ModelSpec, parse_spec, resolve_api_key

__all__ = ["build_backend"]


def build_backend(
    spec: str | ModelSpec,
    *,
    role: str,
    api_key_env: str | None = None,
    params: Mapping[str, Any] | None = None,
    flag: str = "--api-key-env",
) -> ChatBackend:
    """The chat backend of an ``openai:`` or ``litellm:`` spec.

    Args:
        spec: the spec (or an already parsed one).
        role: what the model is for (``judge``, ``simulator``, ``persona model`` ...), in errors.
        api_key_env: the variable with the key (see ``resolve_api_key``).
        params: request fields sent with every request (``temperature``, ``max_tokens`` ...).
        flag: the option that names the key variable, in errors.

    Raises:
        ConfigError: a bad spec, a kind that is not a chat API, a missing key, litellm absent.
    """
    parsed = (
        spec
        if isinstance(spec, ModelSpec)
        else parse_spec(spec, role=role, kinds=("openai", "litellm"))
    )
    if parsed.kind not in ("openai", "litellm"):
        parse_spec(parsed.display, role=role, kinds=("openai", "litellm"))  # raises the usage
    key = resolve_api_key(parsed, api_key_env, role=role, flag=flag)
    if parsed.kind == "litellm":
        return LiteLLMBackend(parsed.model, api_key=key, params=dict(params or {}), role=role)
    assert key is not None  # the rule gives a key or a placeholder for openai:
    return OpenAIBackend(
        parsed.model, api_key=key, base_url=parsed.base_url, params=dict(params or {}), role=role
    )
