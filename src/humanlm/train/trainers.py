"""Thin constructors around TRL's trainers: our defaults first, the user's ``trainer:`` mapping on top.

Nothing here re-declares a TRL option; TRL validates whatever the user passes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from datasets import Dataset

from humanlm.errors import ConfigError
from humanlm.extras import require_extra
from humanlm.states import STATES
from humanlm.train.paper import PAPER_GRPO, PAPER_SFT

__all__ = [
    "GRPO_DEFAULTS",
    "SFT_DEFAULTS",
    "build_grpo_trainer",
    "build_sft_trainer",
    "check_trainer_options",
    "closing_tags",
    "trl_options",
    "vllm_server_problem",
]

logger = logging.getLogger(__name__)

# Paper settings where they do not depend on the hardware (``humanlm.train.paper``); a preset or the user's
# `trainer:` mapping overrides any of them. ``max_completion_length`` comes from the mode
# (``Mode.max_new_tokens``, see ``trl_options``).
_COMMON = {"logging_steps": 1, "report_to": "none", "save_strategy": "steps", "save_steps": 25}
GRPO_DEFAULTS: dict[str, Any] = {
    **_COMMON,
    **PAPER_GRPO,
    # Completions that end at a closing tag count as clipped; keep them in the loss.
    "mask_truncated_completions": False,
}
SFT_DEFAULTS: dict[str, Any] = {**_COMMON, **PAPER_SFT}


def _precision_defaults() -> dict[str, Any]:
    # TRL turns bf16 on by default, which fails on machines without a bf16 GPU (our CPU smoke runs).
    # Without CUDA, `use_cpu` makes accelerate join the launcher's gloo process group: otherwise
    # two processes under torchrun would each train alone.
    import torch

    has_cuda = torch.cuda.is_available()
    return {"bf16": has_cuda and torch.cuda.is_bf16_supported(), "use_cpu": not has_cuda}


def _option_problems(config_cls: type, user: dict[str, Any]) -> list[str]:
    """Values of the wrong kind for ``config_cls`` fields (TRL checks few types itself)."""
    import dataclasses

    defaults = {
        f.name: f.default
        for f in dataclasses.fields(config_cls)
        if f.default is not dataclasses.MISSING
    }
    problems = []
    for key, value in user.items():
        default = defaults.get(key)
        if isinstance(default, bool):
            if not isinstance(value, bool):
                problems.append(f"trainer.{key}: expected true or false, got {value!r}")
        elif isinstance(default, int | float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                problems.append(f"trainer.{key}: expected a number, got {value!r}")
    rate = user.get("learning_rate")
    if isinstance(rate, int | float) and not isinstance(rate, bool) and rate <= 0:
        problems.append(f"trainer.learning_rate: must be > 0, got {rate!r}")
    return problems


def _make_args(
    config_cls: type, defaults: dict[str, Any], user: dict[str, Any], **fixed: Any
) -> Any:
    kwargs = {**_precision_defaults(), **defaults, **user, **fixed}
    problems = _option_problems(config_cls, {**defaults, **user})
    if problems:
        raise ConfigError(problems)
    try:
        args = config_cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"trainer: {err} (see the {config_cls.__name__} documentation)") from None
    except ValueError as err:
        raise ConfigError(f"trainer: {config_cls.__name__} refused the options: {err}") from None
    _name_the_cpu_plainly(args)
    return args


def _name_the_cpu_plainly(args: Any) -> None:
    """Make ``args.device`` ``cpu`` where accelerate calls each rank's CPU ``cpu:0``.

    In a multi-process CPU run accelerate names the device ``cpu:0``, and the Trainer resumes by
    loading the optimizer state with ``map_location=args.device``; ``torch.load`` knows no
    location ``cpu:0`` and fails. Both names mean the same memory.
    """
    import torch

    device = args.device
    if device.type == "cpu" and device.index is not None:
        args.__dict__["_setup_devices"] = torch.device("cpu")


def vllm_server_problem(options: dict[str, Any]) -> str | None:
    """TRL's vLLM server mode sends each weight update over NCCL, which needs a CUDA trainer."""
    if not options.get("use_vllm") or options.get("vllm_mode", "colocate") != "server":
        return None
    import torch

    if torch.cuda.is_available():
        return None
    return (
        "grpo.vllm_mode: server sends the weights to the vLLM server over NCCL, which needs "
        "CUDA GPUs, and this machine has none; use grpo.vllm_mode=colocate"
    )


# Counts TRL's trainer divides by or hands to a DataLoader: 0 or less fails only once it runs.
_COUNTS = (
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "num_iterations",
    "max_completion_length",
    "steps_per_generation",
)


def _sampling_problems(args: Any) -> list[str]:
    """Sampling values GRPOConfig accepts that transformers' rollout refuses after the model
    loaded: each one is handed to the logits processor that the generation would build."""
    from transformers.generation import logits_process as lp

    builders = {
        "temperature": lp.TemperatureLogitsWarper,
        "top_p": lp.TopPLogitsWarper,
        "top_k": lp.TopKLogitsWarper,
        "min_p": lp.MinPLogitsWarper,
        "repetition_penalty": lp.RepetitionPenaltyLogitsProcessor,
    }
    problems = []
    for key, build in builders.items():
        value = getattr(args, key, None)
        if value is None or (key == "top_k" and value == 0):  # unset: no processor is built
            continue
        try:
            build(value)
        except ValueError as err:
            problems.append(f"grpo.{key}: {err}")
    return problems


def _count_problems(options: dict[str, Any]) -> list[str]:
    """Counts as given (not as TRL derives them: one bad count is one line)."""
    problems = []
    for key in _COUNTS:
        value = options.get(key)
        if value is not None and (not isinstance(value, int) or value < 1):
            problems.append(f"trainer.{key}: must be a whole number >= 1, got {value!r}")
    return problems


def check_trainer_options(
    trainer_kind: str, options: dict[str, Any], *, seed: int, this_machine: bool = True
) -> None:
    """Build the TRL config from ``options`` once, before any model loads, and discard it.

    Wrong types, negative learning rates, every value TRL's config refuses, counts its trainer
    cannot run with (a batch of 0), sampling values its rollout refuses (a negative temperature)
    and a vLLM server mode this machine cannot sync weights to are reported here, in one line
    each, instead of after the model loaded. Nothing is written: the output folder is a
    temporary one that is removed again. ``this_machine=False`` leaves out what depends on the
    machine at hand (the vLLM server mode's CUDA).

    Raises:
        ConfigError: the options TRL or these checks refuse.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="humanlm-check-") as scratch:
        if trainer_kind == "sft":
            from trl import SFTConfig

            _make_args(SFTConfig, SFT_DEFAULTS, options, output_dir=scratch, seed=seed)
            problems = _count_problems({**SFT_DEFAULTS, **options})
        else:
            from trl import GRPOConfig

            args = _make_args(GRPOConfig, GRPO_DEFAULTS, options, output_dir=scratch, seed=seed)
            problems = _count_problems({**GRPO_DEFAULTS, **options}) + _sampling_problems(args)
            server = vllm_server_problem(options) if this_machine else None
            problems += [server] if server else []
    if problems:
        raise ConfigError(problems)


def closing_tags() -> list[str]:
    """Stop strings for rollouts: the closing tag of every state."""
    return [s.close_tag for s in STATES.values()]


def trl_options(cfg: Any) -> tuple[str, dict[str, Any]]:
    """The TRL config class and the options a run of ``cfg`` passes to it (machine-independent).

    Our defaults (GRPO's ``max_completion_length`` from the mode), then the user's ``trainer:``
    and mode mapping; gradient checkpointing from ``model:``; with vLLM, stop strings at the
    closing tags; with the realism reward on, ``reward_weights`` from ``realism.weight``. ``bf16`` / ``use_cpu`` are added
    for the machine at hand when the trainer is built, unless set here.
    """
    options = dict(cfg.trainer_options)
    if cfg.model.gradient_checkpointing:
        options.setdefault("gradient_checkpointing", True)
    if cfg.trainer_kind == "sft":
        return "SFTConfig", {**SFT_DEFAULTS, **options}
    options = {
        **GRPO_DEFAULTS,
        "max_completion_length": cfg.mode_spec.max_new_tokens,
        **options,
    }
    if options.get("use_vllm"):
        generation = dict(options.get("generation_kwargs") or {})
        generation.setdefault("stop", closing_tags())
        options["generation_kwargs"] = generation
    if cfg.realism.weight:  # the reward functions are [state, realism] (``train.run``)
        options["reward_weights"] = [1.0, cfg.realism.weight]
    return "GRPOConfig", options


def build_sft_trainer(
    *,
    model: Any,
    tokenizer: Any,
    train_dataset: Dataset,
    output_dir: Path,
    trainer_options: dict[str, Any],
    seed: int,
    callbacks: Sequence[Any] = (),
    peft_config: Any = None,
) -> Any:
    """An ``SFTTrainer`` with completion-only loss on pre-rendered prompt/completion rows."""
    from trl import SFTConfig, SFTTrainer

    args = _make_args(
        SFTConfig, SFT_DEFAULTS, trainer_options, output_dir=str(output_dir), seed=seed
    )
    return SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        callbacks=list(callbacks),
        peft_config=peft_config,
    )


def build_grpo_trainer(
    *,
    model: Any,
    tokenizer: Any,
    train_dataset: Dataset,
    reward_funcs: Sequence[Callable[..., Any]],
    output_dir: Path,
    trainer_options: dict[str, Any],
    seed: int,
    callbacks: Sequence[Any] = (),
    peft_config: Any = None,
) -> Any:
    """A ``GRPOTrainer`` over string prompts; with vLLM the rollouts stop at the closing tags."""
    from trl import GRPOConfig, GRPOTrainer

    options = dict(trainer_options)
    if options.get("use_vllm"):
        require_extra("vllm", needed_by="grpo.use_vllm: true")
        generation = dict(options.get("generation_kwargs") or {})
        generation.setdefault("stop", closing_tags())
        options["generation_kwargs"] = generation
    args = _make_args(GRPOConfig, GRPO_DEFAULTS, options, output_dir=str(output_dir), seed=seed)
    return GRPOTrainer(
        model=model,
        reward_funcs=list(reward_funcs),
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        callbacks=list(callbacks),
        peft_config=peft_config,
    )
