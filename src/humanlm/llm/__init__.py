"""The LLM layer: every call humanlm makes to a language model goes through this package.

- `specs`: the one spec grammar (``hf:``, ``vllm:``, ``openai:MODEL[@URL]``, ``litellm:``,
  ``embedding:``) and the one credential rule;
- `backends`: one request in, one ``Completion`` out (OpenAI-compatible servers, litellm);
- `client`: ``ChatClient``, the one retry loop (backoff honouring ``Retry-After``, an overall
  deadline, transport vs content failures), with `limits` (the RPM/TPM limiter, retry policy);
- `ledger`: calls, tokens, failures and cost; `cache`: the on-disk cache of finished calls;
- `templates`: prompt folders and their version check; `jsonreply`: JSON out of a reply.

The judge, the simulators, persona and trace writers and the server sit on top of it; nothing
here imports them.
"""

from humanlm.llm.backends import ChatBackend, Completion, TransportError
from humanlm.llm.build import build_backend
from humanlm.llm.cache import LLMCache, cache_key
from humanlm.llm.client import Answer, ChatClient, run_bounded
from humanlm.llm.jsonreply import extract_json
from humanlm.llm.ledger import DEFAULT_PRICES, Ledger, Price
from humanlm.llm.limits import RateLimiter, RetryPolicy
from humanlm.llm.specs import ModelSpec, is_loopback, parse_spec, redact_url, resolve_api_key
from humanlm.llm.templates import PromptFolder

__all__ = [
    "DEFAULT_PRICES",
    "Answer",
    "ChatBackend",
    "ChatClient",
    "Completion",
    "LLMCache",
    "Ledger",
    "ModelSpec",
    "Price",
    "PromptFolder",
    "RateLimiter",
    "RetryPolicy",
    "TransportError",
    "build_backend",
    "cache_key",
    "extract_json",
    "is_loopback",
    "parse_spec",
    "redact_url",
    "resolve_api_key",
    "run_bounded",
]
