"""The plan of a verl run, in the shape ``humanlm train --dry-run`` prints for TRL: hardware,
batch arithmetic, memory per GPU, verdict; and the preflight checklist of a verl launch.

Memory counts, per GPU, the states that scale with the parameter count N under verl's FSDP
actor: float32 master weights, gradients and AdamW moments (4 + 4 + 8 bytes per parameter)
sharded over the data-parallel ranks (nothing where ``param_offload`` / ``optimizer_offload``
move them to the CPU), a bfloat16 reference model when a KL term is used, and the rollout
engine's ``gpu_memory_utilization`` share of the card while it generates. Activations are not
modelled; ``humanlm.train.plan.ACTIVATION_HEADROOM`` of the card is kept for them.

Example:
    >>> print(verl_plan(compose_config(None, overrides), gpu_memory_gb=80).render())  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from humanlm.train.plan import ACTIVATION_HEADROOM, GB, GENERATION_FILL, count_params
from humanlm.train.preflight import (
    Check,
    Checklist,
    check_extras,
    check_gpus,
    check_judge_keys,
    check_judge_requests,
    check_model,
    check_prepared_file,
)

__all__ = ["VerlPlan", "data_parallel_size", "verl_plan", "verl_preflight"]


def data_parallel_size(cfg: Any) -> int:
    """verl's actor data-parallel size: all GPUs over the model-parallel group of one replica."""
    actor = cfg.actor_rollout_ref.actor
    gpus = int(cfg.trainer.n_gpus_per_node) * int(cfg.trainer.nnodes)
    if actor.strategy == "megatron":
        mp = actor.megatron
        group = (
            int(mp.tensor_model_parallel_size)
            * int(mp.pipeline_model_parallel_size)
            * int(mp.context_parallel_size)
        )
    else:
        group = int(actor.get("ulysses_sequence_parallel_size", 1) or 1)
    return max(1, gpus // max(1, group))


@dataclass(frozen=True)
class VerlPlan:
    """What a verl dry run prints above the command: its lines and what it refuses."""

    lines: tuple[str, ...]
    problems: tuple[str, ...]

    def render(self) -> str:
        verdict = (
            ["# refused", *(f"- {p}" for p in self.problems)] if self.problems else ["# plan fits"]
        )
        return "\n".join([*self.lines, "", *verdict])


def verl_plan(cfg: Any, *, gpu_memory_gb: float = 80.0) -> VerlPlan:
    """Hardware, batch and memory of the composed verl config ``cfg`` (reads no weights)."""
    actor = cfg.actor_rollout_ref.actor
    rollout = cfg.actor_rollout_ref.rollout
    nodes, per_node = int(cfg.trainer.nnodes), int(cfg.trainer.n_gpus_per_node)
    gpus = nodes * per_node
    dp = data_parallel_size(cfg)
    batch, n = int(cfg.data.train_batch_size), int(rollout.n)
    mini = int(actor.ppo_mini_batch_size)
    steps = cfg.trainer.get("total_training_steps")
    lines = [
        f"# hardware: {nodes} node(s) x {per_node} GPUs = {gpus}, {gpu_memory_gb:g} GB cards; "
        f"actor {actor.strategy} over {dp} data-parallel ranks; rollout {rollout.name}",
        "# batch",
        f"rollout step: {batch} prompts x {n} rollouts = {batch * n} rows (data.train_batch_size "
        "x rollout.n)",
        f"PPO mini-batch: {mini} prompts = {mini * n} rows; optimizer steps per rollout step: "
        f"{batch // mini if mini else 0:g} x {int(actor.get('ppo_epochs', 1))} epoch(s)",
        "total rollout steps: "
        + (f"{steps}" if steps else f"data.train_max_samples / {batch} x trainer.total_epochs"),
    ]
    params = count_params(str(cfg.actor_rollout_ref.model.path))
    problems: list[str] = []
    if params is None:
        lines += ["", "# memory per GPU: unknown (no config.json for the model here)"]
        return VerlPlan(tuple(lines), ())
    parts = {}
    if not actor.fsdp_config.get("param_offload", False):
        parts["actor weights (float32)"] = params * 4 / dp / GB
    parts["gradients"] = params * 4 / dp / GB
    if not actor.fsdp_config.get("optimizer_offload", False):
        parts["AdamW state"] = params * 8 / dp / GB
    if actor.get("use_kl_loss") or cfg.algorithm.get("use_kl_in_reward"):
        ref = cfg.actor_rollout_ref.ref
        if not ref.get("fsdp_config", {}).get("param_offload", False):
            parts["reference model (bfloat16)"] = params * 2 / dp / GB
    share = float(rollout.gpu_memory_utilization) * gpu_memory_gb
    update = sum(parts.values())
    budget = gpu_memory_gb * (1 - ACTIVATION_HEADROOM)
    lines += ["", f"# memory per GPU ({params / 1e9:.2f}B parameters, sharded over {dp})"]
    lines += [f"{name}: {value:.2f} GB" for name, value in parts.items()]
    lines += [
        f"{rollout.name} share: {share:.1f} GB while generating (released during the update)",
        f"during the update: {update:.1f} GB + activations (limit {budget:.1f} GB)",
    ]
    if update > budget:
        problems.append(
            f"{update:.1f} GB of model state per GPU during the update exceeds {budget:.1f} GB: "
            "use more GPUs, actor_rollout_ref.actor.fsdp_config.param_offload=true, or a smaller "
            "model"
        )
    if share < 2 * params / GB * 1.1:
        problems.append(
            f"the rollout's share ({share:.1f} GB) cannot hold the bf16 weights "
            f"({2 * params / GB:.1f} GB) and a KV cache: raise "
            "actor_rollout_ref.rollout.gpu_memory_utilization"
        )
    elif share > gpu_memory_gb * GENERATION_FILL:
        problems.append("actor_rollout_ref.rollout.gpu_memory_utilization leaves no room: lower it")
    return VerlPlan(tuple(lines), tuple(problems))


def _files(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def verl_preflight(cfg: Any, *, ask_judge: bool, gpus_blocking: bool = True) -> Checklist:
    """The launch checklist of a composed verl config: data, model, extras, key, judge, GPUs."""
    from humanlm.verl.reward import reward_settings

    checks: list[Check] = []
    for option in ("train_files", "val_files"):
        for file in _files(cfg.data[option]):
            checks.append(check_prepared_file(Path(file), what=f"data.{option}"))
    checks.append(
        check_model(str(cfg.actor_rollout_ref.model.path), option="actor_rollout_ref.model.path")
    )
    judge = reward_settings(cfg.reward.get("reward_kwargs")).judge
    judge = dataclasses.replace(judge, cache="")
    rollout = str(cfg.actor_rollout_ref.rollout.name)
    needs = {"verl": "--engine verl"}
    if rollout in ("vllm", "sglang"):
        needs[rollout] = f"actor_rollout_ref.rollout.name={rollout}"
    if cfg.trainer.get("use_v1"):
        needs["transfer_queue"] = "the default verl trainer (trainer.use_v1=true)"
    if judge.spec.startswith("litellm:"):
        needs["litellm"] = f"judge {judge.spec}"
    extras = check_extras(needs)
    keys = check_judge_keys({"judge": judge})
    checks += extras + keys
    if ask_judge:
        judge_blocked = any(c.status == "FAIL" for c in keys) or any(
            c.status == "FAIL" and c.name == "extra litellm" for c in extras
        )
        checks += check_judge_requests(
            {"judge": judge}, blocked={"judge"} if judge_blocked else set()
        )
    elif not judge.spec.startswith("embedding:"):
        checks.append(Check("judge request", "note", "not sent in a dry run (--check sends one)"))
    checks.append(
        check_gpus(
            int(cfg.trainer.n_gpus_per_node),
            source="trainer.n_gpus_per_node",
            blocking=gpus_blocking,
        )
    )
    return Checklist(tuple(checks))
