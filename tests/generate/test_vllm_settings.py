"""VLLMSettings: the vLLM engine's arguments, with CPU-safe defaults (no vLLM needed)."""

from __future__ import annotations

import pytest

from humanlm.errors import ConfigError
from humanlm.generate.vllm_settings import VLLMSettings

GIB = 1 << 30


@pytest.mark.parametrize(
    ("settings", "cpu", "expected"),
    [
        (  # CPU defaults: eager, one prefill of up to max_model_len, a 2 GiB KV cache
            VLLMSettings(max_model_len=4096), True,
            {"max_model_len": 4096, "enforce_eager": True, "enable_chunked_prefill": False,
             "max_num_batched_tokens": 4096, "kv_cache_memory_bytes": 2 * GIB},
        ),
        (  # GPU: vLLM's own defaults, only what was set
            VLLMSettings(), False, {},
        ),
        (  # GPU with settings
            VLLMSettings(kv_cache_gb=8, gpu_memory_utilization=0.5, chunked_prefill=True), False,
            {"kv_cache_memory_bytes": 8 * GIB, "gpu_memory_utilization": 0.5,
             "enable_chunked_prefill": True},
        ),
        (  # CPU, set explicitly: the settings win, other engine arguments pass through
            VLLMSettings(max_model_len=512, enforce_eager=False, chunked_prefill=True,
                         engine_args={"dtype": "bfloat16"}), True,
            {"dtype": "bfloat16", "max_model_len": 512, "enforce_eager": False,
             "enable_chunked_prefill": True, "kv_cache_memory_bytes": 2 * GIB},
        ),
    ],
)  # fmt: skip
def test_engine_kwargs(settings: VLLMSettings, cpu: bool, expected: dict) -> None:
    assert settings.engine_kwargs("no/such/model", cpu=cpu) == expected


def test_cpu_caps_max_model_len_at_the_models_own_limit(tiny_model_dir) -> None:
    kwargs = VLLMSettings().engine_kwargs(str(tiny_model_dir), cpu=True)
    assert kwargs["max_model_len"] == kwargs["max_num_batched_tokens"] == 8192


def test_pairs_become_settings_and_engine_args() -> None:
    settings = VLLMSettings.from_pairs(
        ["max_model_len=2048", "enforce-eager=false", "kv_cache_gb=1.5", "dtype=bfloat16"]
    )
    assert settings == VLLMSettings(
        max_model_len=2048, enforce_eager=False, kv_cache_gb=1.5, engine_args={"dtype": "bfloat16"}
    )


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["max_model_len"], "expected KEY=VALUE"),  # no value
        (["max_model_len=long"], "expected an integer"),  # not a number
        (["enforce_eager=maybe"], "expected true or false"),  # not a bool
        (["kv_cache_gb=0"], "must be > 0"),  # out of range
        (["gpu_memory_utilization=2"], "must be in (0, 1]"),  # out of range
        (["enable_chunked_prefill=true"], "use the setting vllm.chunked_prefill"),  # a setting
        (["seed=3"], "set by humanlm"),  # ours
    ],
)
def test_bad_pairs_are_refused(pairs: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("]", r"\]")):
        VLLMSettings.from_pairs(pairs)
