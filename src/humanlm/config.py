"""Run configuration: typed dataclasses, YAML loading, dotted overrides, validation.

humanlm declares only its own knobs; TRL options live in the ``trainer:`` mapping and go verbatim
into ``trl.GRPOConfig`` / ``trl.SFTConfig``, which validate them.

Example:
    >>> cfg = load_config("demo.yaml", ["mode=grpo", "trainer.max_steps=2"])  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from humanlm.configs import find_config
from humanlm.errors import ConfigError
from humanlm.llm.limits import RetryPolicy
from humanlm.model.demo_base import DEMO_BASE, demo_base_dir
from humanlm.states.modes import MODES, Mode

T = TypeVar("T")

# The retry defaults of every LLM call (``RetryPolicy``), for the judge and simulator blocks.
_RETRY = RetryPolicy()

# Settings of the judge's Chat gate: ``auto`` gates the chat data sources only.
CHAT_GATES = ("auto", "on", "off")

# Who tells real replies from generated ones for the realism reward (``RealismConfig.detector``).
DETECTORS = ("style", "judge")

__all__ = [
    "CHAT_GATES",
    "MODES",
    "DataConfig",
    "JudgeConfig",
    "ModelConfig",
    "DETECTORS",
    "PAPER_JUDGE",
    "RealismConfig",
    "TrainConfig",
    "WarmupConfig",
    "apply_overrides",
    "default_help",
    "default_value",
    "from_dict",
    "load_config",
    "paper_eval_judge",
    "to_dict",
]


@dataclass
class ModelConfig:
    """The policy model.

    Attributes:
        path: a local folder or hub id; ``tiny`` builds the offline tiny Qwen3 into the run folder;
            ``demo-base`` is the demo base shipped in the package (read as its folder).
        lora: train LoRA adapters instead of all weights.
        lora_r: LoRA rank.
        lora_alpha: LoRA scaling.
        gradient_checkpointing: trade compute for memory.
        dtype: ``auto``, ``float32``, ``bfloat16`` or ``float16``.
    """

    path: str = "tiny"
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    gradient_checkpointing: bool = False
    dtype: str = "auto"

    def __post_init__(self) -> None:
        if self.path == DEMO_BASE:
            self.path = str(demo_base_dir())


@dataclass
class DataConfig:
    """Where the examples come from.

    Attributes:
        source: ``demo`` (bundled), a prepared folder (``train.parquet`` ...) or a raw Humanual source.
        dataset: dataset id for raw sources (``reddit``, ``amazon``, ... or ``generic``); ``demo``
            uses the ids stored in the bundled rows.
        train_split: split used for training.
        val_split: split used for validation (``""`` disables validation).
        limit: keep only the first N training examples (before state augmentation).
        fraction: train on a seeded random share of the (limited) training examples, in (0, 1].
        max_prompt_tokens: drop examples whose longest per-state prompt exceeds this many tokens.
    """

    source: str = "demo"
    dataset: str = "demo"
    train_split: str = "train"
    val_split: str = "val"
    limit: int | None = None
    fraction: float = 1.0
    max_prompt_tokens: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction <= 1.0:
            raise ConfigError(f"data.fraction: {self.fraction} must lie in (0, 1]")


@dataclass
class JudgeConfig:
    """A judge's settings: everything ``humanlm.judge.build_judge`` needs to build one.

    Attributes:
        spec: ``embedding:minilm``, ``openai:MODEL[@BASE_URL]`` or ``litellm:PROVIDER/MODEL``.
        temperature: sampling temperature of the judge model.
        max_tokens: reply length limit sent to the judge (4096, as in the paper's reference: a
            reasoning judge without a limit may think until the server cuts it off; ``null``: not
            sent).
        api_key_env: name of the environment variable holding the API key (never the key itself;
            unset: ``OPENAI_API_KEY`` for ``openai:``, the provider's own for ``litellm:``;
            ``none``: a server that takes no key).
        concurrency: judge calls in flight at once.
        timeout_s: overall deadline of one judge call, retries included.
        request_timeout_s: limit of one HTTP request (``null``: half of ``timeout_s``, so a
            request that never answers still leaves time for one retry).
        max_retries: transport and content retries per call.
        backoff_s: first backoff delay before a retry (doubles per retry, with jitter).
        backoff_max_s: largest backoff delay.
        hedge_after_s: send a copy of a judge request still unanswered after this many
            seconds (a second one after as long again) and take whichever answers first
            (``null``: never). A reward batch waits for its slowest call; a copy cuts that tail.
            Copies run inside their request's ``concurrency`` slot; one per 8 slots may be in
            flight at once.
        hedge_quantile: send that copy after this quantile of the judge's recent latencies
            instead (0.95: about one request in twenty gets a copy), with ``hedge_after_s`` as the
            least delay (``null``: the fixed ``hedge_after_s``). Follows the server as it speeds
            up or slows down.
        rpm: requests per minute limit (``null``: unlimited).
        tpm: tokens per minute limit (``null``: unlimited).
        cache: SQLite cache file; empty disables caching. The embedding judge never caches.
        params: more request fields (``seed``, ``reasoning_effort``, ...); part of the cache key.
        prices: ``MODEL: [input, output]`` USD per 1M tokens, over the built-in prices, for the
            ledger's cost estimate.
        structured_output: ask ``openai:`` judges for a JSON object (``response_format``),
            falling back to plain replies where a server refuses the field.
        chat_gate: the Chat gate (``humanlm.judge.group``): before judging alignment the judge
            also says whether each candidate is written from the AI assistant's side (helping,
            explaining, neutral hedging) instead of the human user's; such candidates score 0
            with reason ``assistant_voice``. ``auto``: on for the ``wildchat`` data source, off
            elsewhere; ``on``: for every source; ``off``: never. Needs an LLM judge (an
            embedding judge never gates).
    """

    spec: str = "embedding:minilm"
    temperature: float = 1.0
    max_tokens: int | None = 4096
    api_key_env: str | None = None
    concurrency: int = 32
    timeout_s: float = _RETRY.timeout_s
    request_timeout_s: float | None = None
    max_retries: int = _RETRY.max_retries
    backoff_s: float = _RETRY.backoff_s
    backoff_max_s: float = _RETRY.backoff_max_s
    hedge_after_s: float | None = None
    hedge_quantile: float | None = None
    rpm: float | None = None
    tpm: float | None = None
    cache: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    prices: dict[str, list[float]] = field(default_factory=dict)
    structured_output: bool = True
    chat_gate: str = "auto"

    def __post_init__(self) -> None:
        problems = []
        if self.chat_gate not in CHAT_GATES:
            problems.append(
                f"chat_gate: must be one of {', '.join(CHAT_GATES)}, got {self.chat_gate!r}"
            )
        if isinstance(self.concurrency, int) and self.concurrency < 1:
            problems.append("judge concurrency: must be >= 1")
        for name in ("params", "prices"):
            if not isinstance(getattr(self, name), Mapping):
                problems.append(f"judge {name}: expected a mapping, got {getattr(self, name)!r}")
        for model, price in dict(self.prices if isinstance(self.prices, Mapping) else {}).items():
            if isinstance(price, str) or not isinstance(price, Sequence) or len(price) != 2:
                problems.append(f"judge prices.{model}: expected [input, output] USD per 1M tokens")
        if problems:
            raise ConfigError(problems)

    def retry_policy(self) -> RetryPolicy:
        """The retry policy of one judge call (validates the limits)."""
        return RetryPolicy(
            max_retries=self.max_retries,
            timeout_s=self.timeout_s,
            request_timeout_s=self.request_timeout_s or self.timeout_s / 2,
            backoff_s=self.backoff_s,
            backoff_max_s=self.backoff_max_s,
            hedge_after_s=self.hedge_after_s,
            hedge_quantile=self.hedge_quantile,
        )


# The paper's evaluation judge: claude-haiku-4-5 at temperature 0.
PAPER_JUDGE = "litellm:anthropic/claude-haiku-4-5"


def paper_eval_judge(spec: str = PAPER_JUDGE) -> JudgeConfig:
    """The evaluation judge of the paper: claude-haiku-4-5 at temperature 0 (or ``spec``)."""
    return JudgeConfig(spec=spec, temperature=0.0)


@dataclass
class WarmupConfig:
    """An optional SFT warm-up on tagged targets before GRPO (ignored by the SFT modes).

    A randomly initialised model never writes well-formed tags, so GRPO would see only zero
    rewards; a short SFT on the reference states (where the data has them) and the real reply fixes
    that. Used by the demo; off (``steps: 0``) for real models.

    Attributes:
        steps: optimizer steps (0 disables the warm-up).
        learning_rate: AdamW learning rate.
        batch_size: rows per step.
    """

    steps: int = 0
    learning_rate: float = 1e-3
    batch_size: int = 8


@dataclass
class RealismConfig:
    """The realism reward of GRPO: how often a detector fails to tell the real reply from the
    generated one (``humanlm.judge.realism``). Off at ``weight: 0``.

    Attributes:
        weight: the reward's weight next to the state reward's 1 (TRL's ``reward_weights``);
            0 turns it off.
        detector: ``style``: a logistic regression on style features, fit on each reward
            batch's real and generated replies with grouped folds (offline; needs 4 response
            rollouts from two examples or more in a batch); ``judge``: the LLM of
            ``realism.judge`` picks the human reply of each pair, asked in both orders.
        judge: the LLM detector's settings (``detector: judge``; an ``openai:`` or
            ``litellm:`` spec).
        max_length_ratio: a reply with more words than this many times the real reply's gets
            no realism reward (0).
        length_floor_words: replies up to this many words always pass the length guard (a
            three-word real reply still allows a short sentence).
        copy_span_words: a reply that repeats this many consecutive words of the context,
            where the real reply does not, gets no realism reward (0).
    """

    weight: float = 0.0
    detector: str = "style"
    judge: JudgeConfig = field(default_factory=lambda: JudgeConfig(spec="", temperature=0.0))
    max_length_ratio: float = 2.0
    length_floor_words: int = 20
    copy_span_words: int = 8

    def __post_init__(self) -> None:
        problems = []
        if self.weight < 0:
            problems.append(f"realism.weight: must be >= 0 (0 turns it off), got {self.weight}")
        if self.detector not in DETECTORS:
            problems.append(
                f"realism.detector: must be one of {', '.join(DETECTORS)}, got {self.detector!r}"
            )
        elif (
            self.weight
            and self.detector == "judge"
            and not self.judge.spec.startswith(("openai:", "litellm:"))
        ):
            problems.append(
                "realism.judge.spec: the judge detector needs an LLM (openai:MODEL[@URL] or "
                f"litellm:PROVIDER/MODEL), got {self.judge.spec!r}; or use realism.detector=style"
            )
        if self.max_length_ratio <= 0:
            problems.append("realism.max_length_ratio: must be > 0")
        if self.length_floor_words < 0 or self.copy_span_words < 1:
            problems.append("realism.length_floor_words must be >= 0, copy_span_words >= 1")
        if problems:
            raise ConfigError(problems)


@dataclass
class TrainConfig:
    """One ``humanlm train`` run. ``humanlm configs show demo.yaml`` prints a commented example.

    Attributes:
        name: run name; the run folder is ``<output_root>/<timestamp>_<name>``.
        mode: ``humanlm``, ``grpo``, ``grpo-think``, ``sft`` or ``sft-think``.
        seed: seed for data shuffling, state augmentation and the trainer.
        output_root: where run folders go.
        max_unscored_fraction: stop (after a checkpoint) when more of a step is unscored.
        val_every: validate every N optimizer steps on ``data.val_split`` (0: never).
        val_limit: validation examples per run of the validation.
        judge_check: send each judge one small request before the run starts (false skips it,
            e.g. for a judge billed per call; keys and extras are still checked).
        eval_judge: the judge of the validation (response alignment; paper: claude-haiku-4-5 at
            temperature 0, a different family than the train judge on purpose).
        realism: the optional realism reward of GRPO next to the state reward (off by default).
        trainer: passed verbatim to ``trl.GRPOConfig`` or ``trl.SFTConfig`` (options both accept).
        grpo: options for ``trl.GRPOConfig`` only, merged over ``trainer`` in GRPO modes.
        sft: options for ``trl.SFTConfig`` only, merged over ``trainer`` in SFT modes.
    """

    name: str = "run"
    mode: str = "humanlm"
    seed: int = 0
    output_root: str = "runs"
    max_unscored_fraction: float = 0.5
    val_every: int = 0
    val_limit: int = 64
    judge_check: bool = True
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    eval_judge: JudgeConfig = field(default_factory=lambda: JudgeConfig(temperature=0.0))
    warmup: WarmupConfig = field(default_factory=WarmupConfig)
    realism: RealismConfig = field(default_factory=RealismConfig)
    trainer: dict[str, Any] = field(default_factory=dict)
    grpo: dict[str, Any] = field(default_factory=dict)
    sft: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if self.mode not in MODES:
            problems.append(f"mode: {self.mode!r} is not one of {', '.join(MODES)}")
        if not 0.0 <= self.max_unscored_fraction <= 1.0:
            problems.append("max_unscored_fraction: must lie in [0, 1]")
        if self.model.dtype not in ("auto", "float32", "bfloat16", "float16"):
            problems.append(
                f"model.dtype: {self.model.dtype!r}; use auto, float32, bfloat16, float16"
            )
        if self.val_every < 0 or self.val_limit < 1:
            problems.append("val_every must be >= 0 and val_limit >= 1")
        if self.val_every and not self.data.val_split:
            problems.append("val_every: validation needs data.val_split")
        if self.warmup.steps < 0:
            problems.append("warmup.steps: must be >= 0")
        if self.data.val_split and self.data.val_split == self.data.train_split:
            problems.append("data.val_split: must differ from data.train_split (or be empty)")
        if self.realism.weight and self.mode in MODES and MODES[self.mode].algorithm != "grpo":
            problems.append(
                f"realism.weight: mode {self.mode} trains without rewards; set it to 0 or "
                "use a GRPO mode"
            )
        if self.realism.weight and (
            "reward_weights" in self.trainer or "reward_weights" in self.grpo
        ):
            problems.append(
                "trainer.reward_weights: set by humanlm from realism.weight (the state reward "
                "weighs 1); remove it"
            )
        for key in ("output_dir", "seed"):
            if key in self.trainer or key in self.grpo or key in self.sft:
                problems.append(
                    f"trainer.{key}: set by humanlm (run folder, top-level seed); remove it"
                )
        if problems:
            raise ConfigError(problems)

    @property
    def mode_spec(self) -> Mode:
        """The training mode as a ``Mode`` (state set, thinking, algorithm)."""
        return MODES[self.mode]

    @property
    def state_set(self) -> str:
        return MODES[self.mode].state_set

    @property
    def thinking(self) -> bool:
        return MODES[self.mode].thinking

    @property
    def trainer_kind(self) -> str:
        return MODES[self.mode].algorithm

    @property
    def trainer_options(self) -> dict[str, Any]:
        """The TRL options of this mode: ``trainer`` with the mode's own mapping on top."""
        return {**self.trainer, **(self.grpo if self.trainer_kind == "grpo" else self.sft)}


def _coerce(value: Any, annotation: Any, where: str, problems: list[str]) -> Any:
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            problems.append(f"{where}: expected a mapping, got {type(value).__name__}")
            return annotation()
        return _build(annotation, value, f"{where}.", problems)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is bool and not isinstance(value, bool):
        problems.append(f"{where}: expected true/false, got {value!r}")
    elif annotation in (int, float) and (
        isinstance(value, bool) or not isinstance(value, int | float)
    ):
        problems.append(f"{where}: expected a number, got {value!r}")
    elif annotation is int and isinstance(value, float) and not value.is_integer():
        problems.append(f"{where}: expected an integer, got {value!r}")
    elif annotation is str and not isinstance(value, str):
        problems.append(f"{where}: expected a string, got {value!r}")
    elif origin is dict and not isinstance(value, dict):
        problems.append(f"{where}: expected a mapping, got {value!r}")
    elif args and type(None) in args and value is not None:
        inner = next(a for a in args if a is not type(None))
        return _coerce(value, inner, where, problems)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _build(cls: type, data: dict[str, Any], prefix: str, problems: list[str]) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            problems.append(f"{prefix}{key}: unknown key; known keys: {', '.join(sorted(known))}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            value = data[f.name]
            factory = f.default_factory
            if isinstance(value, dict) and factory is not dataclasses.MISSING:
                # a partial block keeps the field's own defaults (the eval judge's temperature 0)
                default = factory()
                if dataclasses.is_dataclass(default):
                    value = {**dataclasses.asdict(default), **value}  # type: ignore[arg-type]
            kwargs[f.name] = _coerce(value, hints[f.name], f"{prefix}{f.name}", problems)
    if not prefix:
        return kwargs  # the top level is built by the caller once all problems are known
    try:
        return cls(**kwargs)
    except ConfigError as err:
        problems.extend(err.problems)
        return cls()


def from_dict(data: dict[str, Any], cls: type[T] = TrainConfig) -> T:  # type: ignore[assignment]
    """Build ``cls`` (a run-config dataclass) from a plain mapping; every problem in one error."""
    problems: list[str] = []
    kwargs = _build(cls, data, "", problems)
    cfg = None
    try:
        cfg = cls(**kwargs)
    except ConfigError as err:
        problems.extend(err.problems)
    if problems:
        raise ConfigError(problems)
    return cfg


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` overrides (values parsed as YAML scalars) to a nested mapping."""
    problems = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            problems.append(f"override {item!r}: expected KEY=VALUE, e.g. trainer.max_steps=2")
            continue
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                problems.append(f"override {item!r}: {part} is not a mapping")
                break
        else:
            node[leaf] = yaml.safe_load(raw) if raw else ""
    if problems:
        raise ConfigError(problems)
    return data


def load_config(
    path: str | Path | None,
    overrides: list[str] | None = None,
    *,
    cls: type[T] = TrainConfig,  # type: ignore[assignment]
    given: dict[str, Any] | None = None,
) -> T:
    """Read a YAML run config, apply dotted overrides and validate everything at once.

    Args:
        path: the YAML file, or the name of a shipped config (``paper/reddit_humanlm.yaml``; see
            ``humanlm.configs``) when no such file exists (``None``: defaults only).
        overrides: ``KEY=VALUE`` strings with dotted keys, applied last.
        cls: the run-config dataclass (``TrainConfig``, ``EvalConfig``).
        given: dotted keys set from command-line flags, applied before ``overrides``.
    """
    data: dict[str, Any] = {}
    if path is not None:
        p = find_config(path)
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{p}: not valid YAML: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: the top level must be a mapping")
    for key, value in (given or {}).items():
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return from_dict(apply_overrides(data, list(overrides or [])), cls)


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """The resolved config as plain data (for ``config.yaml`` in the run folder)."""
    return dataclasses.asdict(cfg)


def default_value(cls: type, name: str) -> Any:
    """The default of field ``name`` of the dataclass ``cls``, for a CLI option's default.

    ``name`` may be dotted to reach into a block (``judge.temperature``): the block is built by
    its field's own factory, so each default is written once, on its field.
    """
    first, *rest = name.split(".")
    spec = {f.name: f for f in dataclasses.fields(cls)}[first]
    value: Any = spec.default
    if spec.default_factory is not dataclasses.MISSING:
        value = spec.default_factory()  # a block, with the defaults its field gives it
    for part in rest:
        value = getattr(value, part)
    return value


def default_help(cls: type, name: str) -> str:
    """``(default: X)`` for a help text, read from the dataclass ``cls`` (see ``default_value``)."""
    value = default_value(cls, name)
    if isinstance(value, bool):
        value = "on" if value else "off"
    elif value is None:
        value = "unset"
    return f"(default: {value})"
