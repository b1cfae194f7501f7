"""``humanlm train``: every HumanLM mode on TRL, top to bottom.

Example:
    >>> from humanlm.config import load_config
    >>> from humanlm.train.run import run_train
    >>> result = run_train(load_config("configs/demo.yaml", ["trainer.max_steps=2"]))  # doctest: +SKIP

Supports the modes ``humanlm`` (GRPO over the seven states with hetero thinking, each sample
rewarded by the judge score of its own state), ``grpo`` / ``grpo-think`` (GRPO on the response,
thinking off / on), ``sft`` / ``sft-think`` (SFT on the raw reply / on a thinking trace plus the
tagged reply). An optional format warm-up precedes GRPO (``warmup.steps``; see
``humanlm.train.warmup``).
Refuses, before any model loads: unknown keys, unknown modes, a warm-up before SFT, and every
failed line of the preflight (``humanlm.train.preflight``: trainer options, data, model, extras,
API keys, one small judge request, GPUs).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from humanlm.config import TrainConfig, to_dict
from humanlm.data.resolve import resolve_split
from humanlm.errors import ConfigError, HumanlmError
from humanlm.files import apply_umask, check_output_dir
from humanlm.lock import OutputInUseError, output_lock
from humanlm.log import write_run_files
from humanlm.states.mode_file import write_mode_file
from humanlm.states.modes import Mode
from humanlm.train import dist
from humanlm.train.callbacks import (
    MetricsFileCallback,
    ModeFileCallback,
    UnscoredGuard,
    use_step_progress,
)
from humanlm.train.cpu import enable_compact_lm_head_on_cpu
from humanlm.train.data import (
    build_grpo_dataset,
    build_sft_dataset,
    drop_long_prompts,
    take_fraction,
)
from humanlm.train.plan import check_plan
from humanlm.train.preflight import run_preflight
from humanlm.train.saving import full_disk_as_one_line
from humanlm.train.trainers import (
    build_grpo_trainer,
    build_sft_trainer,
    trl_options,
)
from humanlm.train.warmup import build_warmup_dataset, run_warmup

__all__ = ["TrainResult", "latest_checkpoint", "resume_train", "run_train"]

logger = logging.getLogger(__name__)

# The policy after the format warm-up: TRL's KL reference (and a colocated vLLM) load it.
WARMED_MODEL_DIR = "warmup_model"


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced."""

    run_dir: Path
    model_dir: Path
    metrics_path: Path
    global_step: int


def _resolve_model(cfg: TrainConfig, run_dir: Path) -> Path | str:
    if cfg.model.path != "tiny":
        return cfg.model.path
    from humanlm.model.tiny import build_tiny_model

    with dist.main_first():  # rank 0 builds it; the others find the finished build
        return build_tiny_model(run_dir / "base_model", seed=cfg.seed)


def _load_model(path: Path | str, cfg: TrainConfig) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    dtype = "auto" if cfg.model.dtype == "auto" else getattr(torch, cfg.model.dtype)
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype)


def _peft_config(cfg: TrainConfig) -> Any:
    if not cfg.model.lora:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.model.lora_r,
        lora_alpha=cfg.model.lora_alpha,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )


def _trainer_options(cfg: TrainConfig) -> dict[str, Any]:
    return trl_options(cfg)[1]


def _warm_up(
    cfg: TrainConfig, *, model: Any, tokenizer: Any, examples: list, run_dir: Path
) -> None:
    dataset = build_warmup_dataset(examples, seed=cfg.seed)
    metrics_path = run_dir / "metrics.jsonl"

    def log(record: dict[str, Any]) -> None:
        if not dist.is_main():
            return
        with metrics_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"phase": "warmup", **record}) + "\n")

    run_warmup(
        model=model,
        tokenizer=tokenizer,
        dataset=dataset,
        steps=cfg.warmup.steps,
        learning_rate=cfg.warmup.learning_rate,
        batch_size=cfg.warmup.batch_size,
        seed=cfg.seed,
        on_log=log,
    )


def _reference_after_warm_up(
    cfg: TrainConfig, *, model: Any, tokenizer: Any, examples: list, run_dir: Path, resumed: bool
) -> None:
    """Warm the policy up (not again on resume) and make the warmed weights what TRL loads from
    disk for the KL reference and a colocated vLLM (``config._name_or_path``): otherwise both
    start from the checkpoint before the warm-up and the KL term pulls toward it."""
    warmed = run_dir / WARMED_MODEL_DIR
    if not resumed:
        _warm_up(cfg, model=model, tokenizer=tokenizer, examples=examples, run_dir=run_dir)
        if dist.is_main():
            partial = run_dir / f"{WARMED_MODEL_DIR}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            model.save_pretrained(partial)
            tokenizer.save_pretrained(partial)
            apply_umask(partial)  # safetensors writes the weights 0600
            os.replace(partial, warmed)
        dist.barrier()
    if not warmed.is_dir():
        logger.warning(
            "%s is missing (a run from an older humanlm): the KL reference is the model before "
            "the warm-up",
            warmed,
        )
        return
    model.config._name_or_path = str(warmed)


def _close_judge(judge: Any, trainer: Any) -> None:
    """Close the judge's connections on the event loop TRL ran the async reward in (a thread of
    its own that outlives ``train``), so none is left open for the rest of the process."""
    import asyncio

    loop = getattr(trainer, "async_loop", None)
    if loop is None or not loop.is_running():
        return
    try:
        asyncio.run_coroutine_threadsafe(judge.aclose(), loop).result(timeout=30)
    except Exception:  # closing is tidying up: a failure here must not hide the run's outcome
        logger.warning("could not close the judge's connections", exc_info=True)


def _reward_judge(cfg: TrainConfig) -> Any:
    """The GRPO reward judge, which the preflight asks once (its request is in the run's ledger);
    ``None`` for SFT, or when it cannot be built (the preflight names why)."""
    from humanlm.judge import build_judge

    if cfg.trainer_kind == "sft":
        return None
    try:
        return build_judge(cfg.judge)
    except ConfigError:
        return None


def _state_reward(cfg: TrainConfig, judge: Any = None) -> Any:
    from humanlm.judge import build_judge, state_reward

    judge = judge if judge is not None else build_judge(cfg.judge)
    # With vLLM the rollouts stop at the closing tags (see build_grpo_trainer); the stopping
    # token may carry characters past the tag, which the reward cuts off before parsing.
    stops = bool(cfg.trainer_options.get("use_vllm"))
    return judge, functools.partial(state_reward, judge=judge, tagged=True, stops_at_tags=stops)


def _realism_reward(cfg: TrainConfig) -> tuple[Any, Any]:
    """The realism detector and reward (``realism.weight`` > 0), else ``(None, None)``."""
    if not cfg.realism.weight:
        return None, None
    from humanlm.judge import build_judge
    from humanlm.judge.realism import JudgeDetector, realism_reward
    from humanlm.population.detect import StyleDetector

    realism = cfg.realism
    detector = (
        JudgeDetector(build_judge(realism.judge, seed=cfg.seed))
        if realism.detector == "judge"
        else StyleDetector()
    )
    reward = functools.partial(
        realism_reward,
        detector=detector,
        max_length_ratio=realism.max_length_ratio,
        length_floor_words=realism.length_floor_words,
        copy_span_words=realism.copy_span_words,
        tagged=True,
        stops_at_tags=bool(cfg.trainer_options.get("use_vllm")),
    )
    return detector, reward


def _validation(cfg: TrainConfig, *, tokenizer: Any, run_dir: Path) -> list[Any]:
    if not cfg.val_every:
        return []
    from humanlm.judge import build_judge
    from humanlm.train.validation import ValidationCallback

    with dist.main_first():  # a raw source is prepared once, into the shared run folder
        examples = resolve_split(
            cfg.data.source,
            dataset=cfg.data.dataset,
            split=cfg.data.val_split,
            work_dir=run_dir / "data",
            limit=cfg.val_limit,
        )
    return [
        ValidationCallback(
            every=cfg.val_every,
            metrics_path=run_dir / "metrics.jsonl",
            examples=examples,
            tokenizer=tokenizer,
            judge=build_judge(cfg.eval_judge),
            state_set=cfg.state_set,
            thinking=cfg.thinking,
            max_new_tokens=int(
                _trainer_options(cfg).get("max_completion_length", cfg.mode_spec.max_new_tokens)
            ),
        )
    ]


def _save_final_model(trainer: Any, tokenizer: Any, model_dir: Path, *, mode: Mode) -> None:
    """Write the full weights and the training mode to ``model_dir`` (all ranks take part).

    Under FSDP with a sharded state dict (the right choice for checkpoints) ``save_model`` writes
    no weights at all; for the final model the state dict type is switched to a full one, which
    gathers the shards onto rank 0 (ZeRO-3 gathers through ``zero3_save_16bit_model``).
    """
    plugin = getattr(trainer.accelerator.state, "fsdp_plugin", None)
    sharded = (
        trainer.is_fsdp_enabled
        and plugin is not None
        and "FULL_STATE_DICT" not in str(plugin.state_dict_type)
    )
    previous = plugin.state_dict_type if sharded else None
    if sharded:
        plugin.set_state_dict_type("FULL_STATE_DICT")
    try:
        trainer.save_model(str(model_dir))
    finally:
        if sharded:
            plugin.set_state_dict_type(previous)
    if dist.is_main():
        tokenizer.save_pretrained(str(model_dir))
        write_mode_file(model_dir, mode)
        apply_umask(model_dir)  # safetensors writes the weights 0600
    dist.barrier()


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete ``checkpoints/checkpoint-N`` folder of a run, or None.

    A run killed while saving leaves a folder without ``trainer_state.json`` (the Trainer writes
    it after the weights, optimizer and RNG states); such a folder is skipped.
    """
    found = [
        (int(p.name.rsplit("-", 1)[1]), p)
        for p in (Path(run_dir) / "checkpoints").glob("checkpoint-*")
        if p.name.rsplit("-", 1)[1].isdigit() and (p / "trainer_state.json").is_file()
    ]
    return max(found)[1] if found else None


def resume_train(run_dir: str | Path, *, overrides: list[str] | None = None) -> TrainResult:
    """Continue a run from its latest checkpoint: same folder, same config, step count kept.

    ``overrides`` may raise the step budget (e.g. ``trainer.max_steps=50``).
    """
    from humanlm.config import load_config

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"--resume {run_dir}: no config.yaml there; is it a humanlm run folder?")
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise ConfigError(f"--resume {run_dir}: no checkpoints/checkpoint-N folder to resume from")
    cfg = load_config(run_dir / "config.yaml", overrides)
    return run_train(cfg, run_dir=run_dir, resume_from=checkpoint)


def run_train(
    cfg: TrainConfig, *, run_dir: Path | None = None, resume_from: Path | None = None
) -> TrainResult:
    """Train one model as ``cfg`` says and write everything into its run folder.

    Args:
        cfg: the validated run config.
        run_dir: the run folder (default: a new ``<output_root>/<timestamp>_<name>``).
        resume_from: a checkpoint folder of this run to continue from (no warm-up then).

    Raises:
        HumanlmError: the judge left more than ``max_unscored_fraction`` of a step unscored
            (raised after a checkpoint was saved).
    """
    # Before a run folder exists or a model loads: options, data, model, extras, keys, one
    # judge request, GPUs.
    judge = _reward_judge(cfg)
    checklist = run_preflight(cfg, train_judge=judge, ask_judge=cfg.judge_check)
    checklist.raise_failures()
    logger.info("preflight: %d checks passed", len(checklist.checks))
    if run_dir is None:
        check_output_dir(cfg.output_root, what="output_root")
    plan = check_plan(cfg, world_size=int(os.environ.get("WORLD_SIZE", "1")))
    dist.init_distributed()
    run_dir = Path(run_dir) if run_dir else dist.shared_run_dir(cfg.output_root, cfg.name)
    with _one_writer(run_dir), full_disk_as_one_line(run_dir):  # a save on a full disk: one line
        return _train_into(run_dir, cfg, plan=plan, judge=judge, resume_from=resume_from)


@contextlib.contextmanager
def _one_writer(run_dir: Path) -> Iterator[None]:
    """Hold the run folder's lock on rank 0; every rank stops when another run holds it."""
    with contextlib.ExitStack() as held:
        error = None
        if dist.is_main():
            try:
                held.enter_context(output_lock(run_dir, command="train", option="run folder"))
            except HumanlmError as err:
                error = err
        refused = dist.all_gather(str(error) if error else None)[0]
        if error:
            raise error
        if refused:
            raise OutputInUseError(refused)
        yield


def _train_into(
    run_dir: Path, cfg: TrainConfig, *, plan: Any, judge: Any, resume_from: Path | None
) -> TrainResult:
    """The run, once its folder is this run's alone."""
    from transformers import AutoTokenizer, set_seed

    if dist.is_main():
        run_dir.mkdir(parents=True, exist_ok=True)
        write_run_files(
            run_dir,
            config=to_dict(cfg),
            seed=cfg.seed,
            extra={
                "mode": cfg.mode,
                "resumed_from": str(resume_from) if resume_from else None,
                "world_size": dist.world_size(),
                "batch": plan.batch.to_dict(),
            },
        )
    dist.barrier()
    set_seed(cfg.seed)
    enable_compact_lm_head_on_cpu()

    model_path = _resolve_model(cfg, run_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    with dist.main_first():
        examples = resolve_split(
            cfg.data.source,
            dataset=cfg.data.dataset,
            split=cfg.data.train_split,
            work_dir=run_dir / "data",
            limit=cfg.data.limit,
        )
    examples = take_fraction(examples, cfg.data.fraction, seed=cfg.seed)
    examples = drop_long_prompts(
        examples,
        tokenizer=tokenizer,
        max_tokens=cfg.data.max_prompt_tokens,
        state_set=cfg.state_set,
        thinking=cfg.thinking,
    )
    logger.info(
        "mode %s: %d training examples, state set %s", cfg.mode, len(examples), cfg.state_set
    )
    model = _load_model(model_path, cfg)
    metrics = MetricsFileCallback(run_dir / "metrics.jsonl", phase="train")
    mode_file = ModeFileCallback(cfg.mode_spec)
    validation = _validation(cfg, tokenizer=tokenizer, run_dir=run_dir)
    guard = detector = None

    if cfg.trainer_kind == "sft":
        dataset = build_sft_dataset(
            examples, state_set=cfg.state_set, thinking=cfg.thinking, seed=cfg.seed
        )
        trainer = build_sft_trainer(
            model=model,
            tokenizer=tokenizer,
            train_dataset=dataset,
            output_dir=run_dir / "checkpoints",
            trainer_options=_trainer_options(cfg),
            seed=cfg.seed,
            callbacks=[metrics, mode_file, *validation],
            peft_config=_peft_config(cfg),
        )
    else:
        if cfg.warmup.steps:
            _reference_after_warm_up(
                cfg, model=model, tokenizer=tokenizer, examples=examples, run_dir=run_dir,
                resumed=resume_from is not None,
            )  # fmt: skip
        judge, reward = _state_reward(cfg, judge)
        detector, realism = _realism_reward(cfg)
        guard = UnscoredGuard(
            ledger=judge.ledger,
            judge_name=judge.name,
            max_fraction=cfg.max_unscored_fraction,
            run_dir=run_dir,
        )
        dataset = build_grpo_dataset(
            examples, state_set=cfg.state_set, thinking=cfg.thinking, seed=cfg.seed
        )
        trainer = build_grpo_trainer(
            model=model,
            tokenizer=tokenizer,
            train_dataset=dataset,
            reward_funcs=[reward] if realism is None else [reward, realism],
            output_dir=run_dir / "checkpoints",
            trainer_options=_trainer_options(cfg),
            seed=cfg.seed,
            callbacks=[metrics, mode_file, guard, *validation],
            peft_config=_peft_config(cfg),
        )
    use_step_progress(trainer)
    try:
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    finally:
        if guard is not None:
            _close_judge(judge, trainer)
        if detector is not None:
            _close_judge(detector, trainer)
    if guard is not None:
        ledger = guard.write_ledger()
        if dist.is_main():
            logger.info("judge: %s", ledger.summary())
        if guard.error:
            raise HumanlmError(guard.error)

    model_dir = run_dir / "model"
    _save_final_model(trainer, tokenizer, model_dir, mode=cfg.mode_spec)
    return TrainResult(
        run_dir=run_dir,
        model_dir=model_dir,
        metrics_path=run_dir / "metrics.jsonl",
        global_step=trainer.state.global_step,
    )
