"""The LLM layer: every call humanlm makes to a language model goes through this package.

- `specs`: the one spec grammar (``hf:``, ``vllm:``, ``openai:MODEL[@URL]``, ``litellm:``,
  ``embedding:``) and the one credential rule;
- `backends`: OpenAI-compatible servers and litellm: one request in (chat, or text with
  ``/v1/completions``), one ``Completion`` out with every ``Choice`` (`replies`), or a
  ``TransportError`` (`failures`);
- `client`: ``ChatClient``, the one retry loop every request goes through (backoff honouring
  ``Retry-After``, an overall deadline, transport vs content failures), with `limits` (the
  RPM/TPM limiter, retry policy) and `hedge` (copies of a slow request, when the policy asks);
- `ledger`: calls, tokens, failures and cost; `cache`: the on-disk cache of finished calls;
- `templates`: prompt folders and their version check; `jsonreply`: JSON out of a reply.

The judge, the simulators, persona and trace writers and the server sit on top of it; nothing
here imports them.
"""

from humanlm._lazy import lazy_exports

# name -> module; imported on first use, so that prompt templates or specs do not pull in the
# openai SDK (a second of import time) for commands that never call a model.
_WHERE = {
    "ChatBackend": "backends",
    "Choice": "replies",
    "Completion": "replies",
    "TransportError": "failures",
    "build_backend": "build",
    "LLMCache": "cache",
    "cache_key": "cache",
    "Answer": "client",
    "ChatClient": "client",
    "ask_item": "client",
    "run_bounded": "client",
    "Hedger": "hedge",
    "extract_json": "jsonreply",
    "DEFAULT_PRICES": "ledger",
    "Ledger": "ledger",
    "Price": "ledger",
    "RateLimiter": "limits",
    "RetryPolicy": "limits",
    "ModelSpec": "specs",
    "is_loopback": "specs",
    "parse_spec": "specs",
    "redact_url": "specs",
    "resolve_api_key": "specs",
    "PromptFolder": "templates",
}


__getattr__ = lazy_exports(__name__, _WHERE)


__all__ = sorted(_WHERE)
