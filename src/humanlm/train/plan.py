"""A training plan before a cluster is booked: batch arithmetic and a per-GPU memory estimate.

``humanlm train --config FILE --dry-run [--launcher ACCELERATE_YAML] [--gpu-memory-gb 80]``
prints the TRL options a run would use, how the batch divides over the launcher's processes and
what each GPU must hold, and refuses (exit 2) a plan that cannot run: GRPO groups that would split
across ranks, or model state that does not fit the cards. Nothing is loaded.

The memory model counts the states that scale with the parameter count N (bytes per parameter):

- policy weights: 4 (float32 master weights; bf16 compute is a cast inside the forward pass)
  or 2 (weights loaded in bfloat16/float16);
- reference model (GRPO with ``beta > 0``, no LoRA): the policy's dtype, as TRL builds it;
- gradients: the dtype of the weights;
- AdamW: two moments in the dtype of the weights;
- colocated vLLM: ``vllm_gpu_memory_utilization`` of the card (weights and KV cache) next to
  the resident training state while it generates; with ``vllm_enable_sleep_mode`` it gives that
  memory back during the update, when the activations need it.

Under DDP every GPU holds all of it; FSDP2 and ZeRO-3 shard policy, reference, gradients and
optimizer state over the processes. Activations are not modelled: a plan must leave
``ACTIVATION_HEADROOM`` of the card free for them. LoRA trains a few adapter weights: gradients
and optimizer state are then left out.

Example:
    >>> from humanlm.config import load_config
    >>> plan = make_plan(load_config("configs/demo.yaml"), Launcher.from_file(None))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from humanlm.config import TrainConfig
from humanlm.errors import ConfigError

__all__ = [
    "ACTIVATION_HEADROOM",
    "GENERATION_FILL",
    "KNOWN_PARAMS",
    "BatchPlan",
    "Launcher",
    "MemoryPlan",
    "Plan",
    "batch_plan",
    "check_plan",
    "count_params",
    "make_plan",
]

GB = 1e9
# Share of each card a plan keeps free for activations, CUDA context and fragmentation.
ACTIVATION_HEADROOM = 0.15
# While vLLM generates there are no training activations; the card may fill up to this share.
GENERATION_FILL = 0.95

# Parameter counts of models the presets name, for plans made without the weights at hand.
KNOWN_PARAMS: dict[str, float] = {
    "Qwen/Qwen3-0.6B": 0.60e9,
    "Qwen/Qwen3-1.7B": 1.72e9,
    "Qwen/Qwen3-4B": 4.02e9,
    "Qwen/Qwen3-8B": 8.19e9,
    "Qwen/Qwen3-14B": 14.8e9,
    "Qwen/Qwen3-32B": 32.8e9,
}


@dataclass(frozen=True)
class Launcher:
    """How the run is launched: strategy, processes, the card size.

    Attributes:
        strategy: ``ddp`` (every GPU a full copy), ``fsdp2`` or ``zero3`` (sharded).
        num_processes: processes of the whole run (GPUs over all nodes).
        gpu_memory_gb: memory of one card.
        source: the accelerate config it was read from, or where the world size came from.
        num_machines: nodes the processes are spread over.
        use_cpu: the accelerate config trains on CPUs (it asks for no GPU).
    """

    strategy: str = "ddp"
    num_processes: int = 1
    gpu_memory_gb: float = 80.0
    source: str = "WORLD_SIZE"
    num_machines: int = 1
    use_cpu: bool = False

    @property
    def gpus_per_machine(self) -> int:
        """GPUs each machine must show: one per process started on it (0 for a CPU launch)."""
        if self.use_cpu:
            return 0
        return -(-self.num_processes // max(1, self.num_machines))

    @classmethod
    def from_file(cls, path: str | Path | None, *, gpu_memory_gb: float = 80.0) -> Launcher:
        """Read an accelerate config (``configs/accelerate/*.yaml``); ``None``: this launch."""
        if path is None:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            return cls("ddp", world, gpu_memory_gb, "WORLD_SIZE" if world > 1 else "one process")
        p = Path(path)
        if not p.is_file():
            from humanlm.configs import config_names, find_config

            if Path(path).as_posix().removeprefix("configs/") not in config_names():
                raise ConfigError(f"--launcher {p}: no such file (an accelerate config YAML)")
            p = find_config(path)  # a shipped one: accelerate/fsdp_8gpu.yaml
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        kind = data.get("distributed_type", "NO")
        if kind == "FSDP":
            version = int((data.get("fsdp_config") or {}).get("fsdp_version", 1))
            if version != 2:
                raise ConfigError(f"{p}: fsdp_version {version}; plans cover FSDP 2 only")
            strategy = "fsdp2"
        elif kind == "DEEPSPEED":
            stage = int((data.get("deepspeed_config") or {}).get("zero_stage", 0))
            if stage != 3:
                raise ConfigError(f"{p}: ZeRO stage {stage}; plans cover ZeRO-3 only")
            strategy = "zero3"
        elif kind in ("MULTI_GPU", "NO"):
            strategy = "ddp"
        else:
            raise ConfigError(f"{p}: distributed_type {kind!r} is not DDP, FSDP or DEEPSPEED")
        return cls(
            strategy,
            int(data.get("num_processes", 1)),
            gpu_memory_gb,
            str(p),
            num_machines=int(data.get("num_machines", 1)),
            use_cpu=bool(data.get("use_cpu", False)),
        )


@dataclass(frozen=True)
class BatchPlan:
    """How one run's batch divides over its processes (all counts are rows = completions)."""

    world_size: int
    per_device: int
    grad_accum: int
    rows_per_optimizer_step: int
    num_generations: int | None = None
    steps_per_generation: int | None = None
    rows_per_rollout: int | None = None
    prompts_per_rollout: int | None = None
    prompts_per_optimizer_step: float | None = None
    optimizer_steps_per_rollout: float | None = None
    train_rows: int | None = None
    total_steps: int | None = None
    problems: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and k != "problems"}


@dataclass(frozen=True)
class MemoryPlan:
    """Per-GPU gigabytes of the states that scale with the parameter count."""

    params: float
    strategy: str
    gpu_memory_gb: float
    parts_gb: dict[str, float] = field(default_factory=dict)
    vllm_gb: float = 0.0
    vllm_sleeps: bool = False
    problems: tuple[str, ...] = ()

    @property
    def training_gb(self) -> float:
        return sum(self.parts_gb.values())

    @property
    def generation_gb(self) -> float:
        """While vLLM generates: the training state stays resident next to vLLM's share."""
        return self.training_gb + self.vllm_gb

    @property
    def update_gb(self) -> float:
        """During the update (plus activations): vLLM's share unless it sleeps."""
        return self.training_gb + (0.0 if self.vllm_sleeps else self.vllm_gb)


@dataclass(frozen=True)
class Plan:
    """Everything ``--dry-run`` prints."""

    trl_class: str
    trl_options: dict[str, Any]
    launcher: Launcher
    batch: BatchPlan
    memory: MemoryPlan | None
    # The same run under each strategy on as many processes: strategy -> update-phase GB per GPU.
    by_strategy: dict[str, float] = field(default_factory=dict)

    @property
    def problems(self) -> tuple[str, ...]:
        return self.batch.problems + (self.memory.problems if self.memory else ())

    def render(self) -> str:
        """The plan as text: TRL options (YAML), batch arithmetic, memory per GPU, verdict."""
        lines = [f"# resolved {self.trl_class} options", yaml.safe_dump(self.trl_options).strip()]
        lau = self.launcher
        lines += [
            "",
            f"# launcher: {lau.strategy}, {lau.num_processes} process(es), "
            f"{lau.gpu_memory_gb:g} GB cards ({lau.source})",
            "# batch",
        ]
        b = self.batch
        lines.append(
            f"rows per optimizer step: {b.rows_per_optimizer_step} "
            f"= {b.per_device} per device x {b.world_size} processes x {b.grad_accum} accumulation"
        )
        if b.num_generations:
            lines += [
                f"rollout step: {b.prompts_per_rollout} prompts x {b.num_generations} completions"
                f" = {b.rows_per_rollout} rows ({b.steps_per_generation} micro-batches per device)",
                f"prompts per optimizer step: {b.prompts_per_optimizer_step:g}; "
                f"optimizer steps per rollout: {b.optimizer_steps_per_rollout:g}",
            ]
        if b.train_rows is not None:
            lines.append(f"training rows (examples x states): {b.train_rows}")
        lines.append(
            f"total optimizer steps: {b.total_steps}"
            if b.total_steps is not None
            else "total optimizer steps: unknown until the data is prepared (set trainer.max_steps)"
        )
        m = self.memory
        if m is not None:
            lines += ["", f"# memory per GPU ({m.params / 1e9:.2f}B parameters, {m.strategy})"]
            lines += [f"{name}: {gb:.2f} GB" for name, gb in m.parts_gb.items()]
            if m.vllm_gb:
                when = "released during the update (sleep mode)" if m.vllm_sleeps else "held"
                lines.append(f"vLLM share: {m.vllm_gb:.1f} GB, {when}")
            budget = m.gpu_memory_gb * (1 - ACTIVATION_HEADROOM)
            if m.vllm_gb:
                lines.append(
                    f"while generating: {m.generation_gb:.1f} GB of {m.gpu_memory_gb:g} GB "
                    f"(limit {m.gpu_memory_gb * GENERATION_FILL:.1f} GB)"
                )
            lines.append(
                f"during the update: {m.update_gb:.1f} GB + activations (limit {budget:.1f} GB: "
                f"{ACTIVATION_HEADROOM:.0%} of {m.gpu_memory_gb:g} GB kept for activations)"
            )
        if self.by_strategy:
            lines.append(
                f"update phase on {lau.num_processes} GPUs by strategy: "
                + ", ".join(f"{k} {v:.1f} GB" for k, v in self.by_strategy.items())
            )
        lines.append("")
        if self.problems:
            lines += ["# refused", *(f"- {p}" for p in self.problems)]
        else:
            lines.append("# plan fits")
        return "\n".join(lines)


def _positive(options: dict[str, Any], key: str, default: int) -> int:
    value = options.get(key, default)
    return int(value) if value is not None else default


def batch_plan(
    cfg: TrainConfig, options: dict[str, Any], world_size: int, *, train_examples: int | None
) -> BatchPlan:
    """The batch arithmetic of ``cfg`` on ``world_size`` processes (TRL's own rules)."""
    from humanlm.states import get_state_set

    per_device = _positive(options, "per_device_train_batch_size", 8)
    accum = _positive(options, "gradient_accumulation_steps", 1)
    rows_per_step = per_device * world_size * accum
    states = len(get_state_set(cfg.state_set).states)
    rows = None if train_examples is None else train_examples * states
    max_steps = int(options.get("max_steps", -1) or -1)
    epochs = float(options.get("num_train_epochs", 3.0))
    problems: list[str] = []
    if cfg.trainer_kind == "sft":
        total = max_steps if max_steps > 0 else None
        if total is None and rows is not None:
            total = math.ceil(epochs * math.ceil(rows / rows_per_step))
        return BatchPlan(
            world_size, per_device, accum, rows_per_step, train_rows=rows, total_steps=total
        )

    n_gen = _positive(options, "num_generations", 8)
    gen_batch = options.get("generation_batch_size")
    spg = options.get("steps_per_generation")
    if gen_batch is not None and spg is None:
        spg = int(gen_batch) // (per_device * world_size)
    spg = int(spg) if spg is not None else accum
    rows_per_rollout = per_device * world_size * spg
    if rows_per_rollout % n_gen:
        problems.append(
            f"a rollout step of {rows_per_rollout} rows does not hold whole groups of "
            f"{n_gen}: make per_device_train_batch_size x processes x steps_per_generation a "
            f"multiple of num_generations"
        )
    elif (per_device * spg) % n_gen:
        problems.append(
            f"GRPO groups of {n_gen} would split across ranks: each rank generates "
            f"{per_device} x {spg} = {per_device * spg} rows (per_device_train_batch_size x "
            f"steps_per_generation); make that a multiple of num_generations, e.g. "
            f"steps_per_generation={_next_multiple(per_device, n_gen)}"
        )
    prompts_per_step = rows_per_step / n_gen
    iterations = _positive(options, "num_iterations", 1)
    total = max_steps if max_steps > 0 else None
    if total is None and rows is not None:
        total = math.ceil(epochs * rows / prompts_per_step) * iterations
    return BatchPlan(
        world_size,
        per_device,
        accum,
        rows_per_step,
        num_generations=n_gen,
        steps_per_generation=spg,
        rows_per_rollout=rows_per_rollout,
        prompts_per_rollout=rows_per_rollout // n_gen,
        prompts_per_optimizer_step=prompts_per_step,
        optimizer_steps_per_rollout=spg / accum * iterations,
        train_rows=rows,
        total_steps=total,
        problems=tuple(problems),
    )


def _next_multiple(per_device: int, n_gen: int) -> int:
    spg = 1
    while (per_device * spg) % n_gen:
        spg += 1
    return spg


def count_params(model_path: str) -> float | None:
    """Parameters of a model from its ``config.json`` (Qwen/Llama layout) or ``KNOWN_PARAMS``."""
    if model_path == "tiny":
        from humanlm.model.tiny import QWEN3_VOCAB_SIZE

        hidden, inter, layers = 64, 128, 2
        config = {
            "vocab_size": QWEN3_VOCAB_SIZE,
            "hidden_size": hidden,
            "num_hidden_layers": layers,
            "intermediate_size": inter,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "tie_word_embeddings": True,
        }
    elif (Path(model_path) / "config.json").is_file():
        config = json.loads((Path(model_path) / "config.json").read_text(encoding="utf-8"))
    else:
        return KNOWN_PARAMS.get(model_path)
    try:
        h, v = config["hidden_size"], config["vocab_size"]
        heads = config["num_attention_heads"]
        kv = config.get("num_key_value_heads", heads)
        head_dim = config.get("head_dim") or h // heads
        attn = h * heads * head_dim * 2 + h * kv * head_dim * 2
        mlp = 3 * h * config["intermediate_size"]
        per_layer = attn + mlp + 2 * h
        embed = v * h * (1 if config.get("tie_word_embeddings") else 2)
        return float(embed + config["num_hidden_layers"] * per_layer + h)
    except (KeyError, TypeError):
        return None


def _weight_bytes(cfg: TrainConfig) -> int:
    # "auto" keeps the checkpoint's dtype: bfloat16 for the hub models, float32 for tiny.
    if cfg.model.dtype == "auto":
        return 4 if cfg.model.path == "tiny" else 2
    return 4 if cfg.model.dtype == "float32" else 2


def memory_plan(cfg: TrainConfig, options: dict[str, Any], launcher: Launcher) -> MemoryPlan | None:
    """Per-GPU memory of ``cfg`` under ``launcher`` (``None`` when the size is unknown)."""
    n = count_params(cfg.model.path)
    if n is None:
        return None
    wb = _weight_bytes(cfg)
    shard = launcher.num_processes if launcher.strategy in ("fsdp2", "zero3") else 1
    parts = {"policy weights": n * wb / shard / GB}
    grpo = cfg.trainer_kind == "grpo"
    if grpo and float(options.get("beta", 0.0)) > 0 and not cfg.model.lora:
        parts["reference model"] = n * wb / shard / GB
    if not cfg.model.lora:
        parts["gradients"] = n * wb / shard / GB
        parts["AdamW state"] = 2 * n * wb / shard / GB
    vllm_gb, sleeps = 0.0, False
    if grpo and options.get("use_vllm") and options.get("vllm_mode", "colocate") == "colocate":
        vllm_gb = float(options.get("vllm_gpu_memory_utilization", 0.3)) * launcher.gpu_memory_gb
        sleeps = bool(options.get("vllm_enable_sleep_mode", False))
    problems = []
    budget = launcher.gpu_memory_gb * (1 - ACTIVATION_HEADROOM)
    training = sum(parts.values())
    update = training + (0.0 if sleeps else vllm_gb)
    if training + vllm_gb > launcher.gpu_memory_gb * GENERATION_FILL:
        problems.append(
            f"while vLLM generates, {training:.1f} GB of training state + {vllm_gb:.1f} GB of vLLM "
            f"exceed {launcher.gpu_memory_gb * GENERATION_FILL:.1f} GB: lower "
            f"grpo.vllm_gpu_memory_utilization or shard over more GPUs"
        )
    if update > budget:
        fixes = []
        if launcher.strategy == "ddp" and launcher.num_processes > 1:
            fixes.append("launch with configs/accelerate/fsdp_8gpu.yaml (FSDP2 shards the state)")
        if vllm_gb and not sleeps:
            fixes.append("set grpo.vllm_enable_sleep_mode=true")
        fixes.append("use LoRA (model.lora=true) or a smaller model")
        problems.append(
            f"{update:.1f} GB of model state per GPU during the update exceeds {budget:.1f} GB "
            f"({launcher.gpu_memory_gb:g} GB cards less {ACTIVATION_HEADROOM:.0%} for "
            f"activations): " + "; or ".join(fixes)
        )
    if vllm_gb and vllm_gb < 2 * n / GB * 1.1:
        problems.append(
            f"vLLM's share ({vllm_gb:.1f} GB) cannot hold the bf16 weights ({2 * n / GB:.1f} GB) "
            f"and a KV cache: raise grpo.vllm_gpu_memory_utilization"
        )
    if launcher.strategy == "ddp" and launcher.num_processes > 1 and wb == 2 and not cfg.model.lora:
        problems.append(
            f"model.dtype {cfg.model.dtype} under DDP keeps no float32 master weights: updates "
            f"at lr {options.get('learning_rate')} vanish in bf16 rounding; use model.dtype "
            f"float32 with bf16 compute under FSDP2"
        )
    return MemoryPlan(
        n, launcher.strategy, launcher.gpu_memory_gb, parts, vllm_gb, sleeps, tuple(problems)
    )


def _train_examples(cfg: TrainConfig) -> int | None:
    """How many training examples the run would see, when the data is at hand (else None)."""
    source = str(cfg.data.source)
    split = cfg.data.train_split
    count = None
    if source == "demo":
        from humanlm.data.resolve import demo_data_dir

        path = demo_data_dir() / f"{split}.jsonl"
        count = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    elif (Path(source) / f"{split}.parquet").is_file():
        import pyarrow.parquet as pq

        count = pq.ParquetFile(Path(source) / f"{split}.parquet").metadata.num_rows
    if count is None:
        return None
    if cfg.data.limit is not None:
        count = min(count, cfg.data.limit)
    if cfg.data.fraction < 1.0:
        count = max(1, round(count * cfg.data.fraction))
    return count


def make_plan(cfg: TrainConfig, launcher: Launcher) -> Plan:
    """The dry-run plan of ``cfg`` under ``launcher`` (reads no weights, starts nothing)."""
    from humanlm.train.trainers import trl_options

    cls_name, options = trl_options(cfg)
    batch = batch_plan(cfg, options, launcher.num_processes, train_examples=_train_examples(cfg))
    memory = memory_plan(cfg, options, launcher)
    by_strategy = {}
    if memory is not None:
        for strategy in ("ddp", "fsdp2", "zero3"):
            other = dataclasses.replace(launcher, strategy=strategy)
            by_strategy[strategy] = memory_plan(cfg, options, other).update_gb
    return Plan(cls_name, options, launcher, batch, memory, by_strategy)


def check_plan(cfg: TrainConfig, *, world_size: int) -> Plan:
    """Refuse, before any model loads, a batch that cannot run on ``world_size`` processes."""
    launcher = Launcher("ddp", world_size, 80.0, "this launch")
    from humanlm.train.trainers import trl_options

    cls_name, options = trl_options(cfg)
    batch = batch_plan(cfg, options, world_size, train_examples=None)
    if batch.problems:
        raise ConfigError(list(batch.problems))
    return Plan(cls_name, options, launcher, batch, None)
