"""``EvalConfig``: one ``humanlm eval`` run, with the paper's protocol as the defaults.

Protocol (the paper's evaluation): the response prompt only, temperature 0.4, one sample per
example, a no-repeat 4-gram ban on the reply (``ngram_ban_scope``), at most 1024 new tokens with
thinking (512 without), the first 2,000 test rows (5,000 for reddit) whose prompt fits the
dataset's length limit (5,120 or 7,168 tokens), judged by claude-haiku-4-5 at temperature 0, with
the Chat gate on wildchat (``judge.chat_gate``). Every default can be overridden.

Prompt and thinking follow the model: a humanlm model (a final ``model/``, a checkpoint, or a
verl checkpoint) carries its training mode (``humanlm.states.mode_file.load_mode``): SFT gets the
untagged response prompt it was trained on, grpo-think/humanlm/sft-think think, grpo and sft do
not; other models get the tagged response prompt with thinking on (the paper's base rows are run
with ``--thinking`` and ``--no-thinking``). ``mode`` set explicitly replaces the saved mode (and
says so in the log); ``thinking``/``state_set`` set explicitly win over both.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from humanlm.config import PAPER_JUDGE, JudgeConfig, paper_eval_judge
from humanlm.data.sources import DATASETS, resolve_dataset
from humanlm.errors import ConfigError, HumanlmError
from humanlm.eval.stats import METRICS
from humanlm.extras import require_spec_extra
from humanlm.generate.openai import OPENAI_APIS as SIMULATOR_APIS
from humanlm.generate.protocol import GenerationSettings
from humanlm.generate.vllm_settings import VLLMSettings
from humanlm.llm.limits import RetryPolicy
from humanlm.llm.specs import parse_spec as parse_model_spec
from humanlm.llm.specs import resolve_api_key, without_endpoint
from humanlm.states import RESPONSE, STATES
from humanlm.states.mode_file import SavedMode, load_mode
from humanlm.states.modes import MODES, Mode, max_new_tokens_for

__all__ = [
    "AUTO_DATASETS",
    "EvalConfig",
    "PAPER_JUDGE",
    "PROTOCOL_VERSION",
    "JUDGE_CHOICES",
    "SimulatorConfig",
    "check_judge_runnable",
    "check_runnable",
    "paper_eval_judge",
    "read_saved_mode",
]

# The retry defaults of every LLM call and the protocol's decoding defaults, read by the fields
# below so that each default is written once.
_RETRY = RetryPolicy()
_DECODING = GenerationSettings()


@dataclass
class SimulatorConfig:
    """How evaluation reaches the simulator: the ``simulator:`` block, beside ``judge:``.

    Attributes:
        api: ``openai:`` only: ``chat`` (messages, for chat models) or ``completions`` (our
            rendered prompt verbatim, for a humanlm model behind ``vllm serve``).
        ngram_xargs: ``openai:`` only: ask the server for the n-gram ban through ``vllm_xargs``
            (a vLLM server started with ``--logits-processors
            humanlm.model.vllm_ngram:NGramBanLogitsProcessor``).
        api_key_env: variable holding an ``openai:`` simulator's key.
        concurrency: simulator requests in flight, which is also the examples in flight.
        timeout_s: deadline of one simulator request, retries included.
        max_retries: retries per simulator request.
    """

    api: str = "chat"
    ngram_xargs: bool = False
    api_key_env: str | None = None
    concurrency: int = _DECODING.concurrency
    timeout_s: float = _RETRY.timeout_s
    max_retries: int = _RETRY.max_retries

    def __post_init__(self) -> None:
        problems = []
        if self.api not in SIMULATOR_APIS:
            problems.append(f"simulator.api: must be one of {', '.join(SIMULATOR_APIS)}")
        if self.concurrency < 1:
            problems.append("simulator.concurrency: must be >= 1")
        if self.timeout_s <= 0 or self.max_retries < 0:
            problems.append("simulator.timeout_s must be > 0 and simulator.max_retries >= 0")
        if problems:
            raise ConfigError(problems)


# Bump when a change to prompts, parsing or scoring makes new records incomparable with old ones.
PROTOCOL_VERSION = "humanual-eval-v3"
AUTO_DATASETS = ("auto", "demo")
JUDGE_KINDS = ("openai", "litellm", "embedding")
_SIMULATOR_KINDS = ("hf", "vllm", "openai")
# Settings that decide what a sample record holds: a run folder only resumes with equal ones.
_FINGERPRINT_FIELDS = (
    "model",
    "data",
    "dataset",
    "split",
    "thinking",
    "state_set",
    "simulator.api",
    "simulator.ngram_xargs",
    "length_filter",
    "tokenizer",
    "temperature",
    "top_p",
    "max_new_tokens",
    "no_repeat_ngram",
    "ngram_ban_scope",
    "seed",
    "judge.spec",
    "judge.temperature",
    "judge.max_tokens",
    "judge.chat_gate",
    "aspects",
    "embedding",
)


@dataclass
class EvalConfig:
    """One evaluation run.

    Attributes:
        model: the simulator, ``hf:PATH``, ``vllm:PATH`` or ``openai:MODEL[@BASE_URL]``.
        data: ``demo``, a prepared folder or a raw Humanual source (prepared on the fly; a single
            file as ``split``, as ``humanlm data prepare --eval-only`` puts every row in test).
        dataset: dataset id (``reddit`` ... or a hub name such as ``opinion``); ``auto`` takes
            it from each row, ``generic`` for a row without one, as ``humanlm data validate``
            does (mixed data is reported per data source).
        split: which split to evaluate (``test_unseen``: the users ``data prepare
            --holdout-users`` held out of every other split).
        limit: evaluate the first N examples (``None``: 2,000, or 5,000 for reddit).
        name: label of the run in reports (default: a short name from the model spec: the model
            name, or the run folder of a ``hf:runs/<run>/model`` path; never the URL).
        mode: the training mode whose prompt and thinking the model gets (unset: the mode saved
            with the model, ``humanlm.states.mode_file``, read by ``read_saved_mode``; a model
            without one is a base model). Set, it replaces the saved mode, and the log says so.
        thinking: let the simulator think before answering (unset: from the training mode, else
            on).
        state_set: the state set of the response prompt (``r``: tagged; ``r_no_tag``: SFT's
            untagged; unset: from the training mode, else ``r``).
        length_filter: drop test rows whose prompt exceeds the dataset's token limit before
            taking the first N, as the paper's reference did.
        tokenizer: tokenizer for the length filter (unset: the model's own for ``hf:``/``vllm:``;
            an ``openai:`` model without one is evaluated unfiltered, and the results say so).
        temperature, top_p: sampling.
        max_new_tokens: generation budget (``None``: ``Mode.max_new_tokens``, 1024 with
            thinking, 512 without).
        no_repeat_ngram: no-repeat n-gram ban size (0: off).
        ngram_ban_scope: which generated tokens the ban covers. ``reply`` (default): the reply
            after the thinking block only; the thinking is neither banned nor counted, so a
            reply may reuse wording drafted while thinking, as the paper's text implies (its
            reference code never switched the ban on).
            ``all``: every generated token, thinking included. Without thinking both are the
            same. Recorded in ``results.json`` under ``protocol_notes.ngram_ban``.
        seed: sampling and bootstrap seed.
        batch_size: prompts per forward pass for ``hf:``/``vllm:``.
        vllm: how a ``vllm:`` simulator's engine starts (``vllm.max_model_len``,
            ``vllm.kv_cache_gb``, ...; ``humanlm.generate.vllm_settings``, CPU-safe defaults).
        judge: the judge, the same ``JudgeConfig`` block as training's (``judge.spec``,
            ``judge.temperature``, ``judge.max_tokens``, ``judge.api_key_env``,
            ``judge.concurrency``, ``judge.timeout_s``, ``judge.max_retries``; ``judge.cache``:
            the cache file, default ``judge_cache.sqlite`` in the run folder; ``judge.chat_gate``:
            the Chat gate, ``auto`` = on for ``wildchat``, recorded under
            ``protocol_notes.chat_gate``). From Python a spec string is accepted too.
        simulator: how the simulator is reached (``simulator.api``, ``simulator.ngram_xargs``,
            ``simulator.api_key_env``, ``simulator.concurrency``, ``simulator.timeout_s``,
            ``simulator.max_retries``; ``SimulatorConfig``).
        aspects: score state alignment (one aspects call per example).
        embedding: score embedding similarity (offline MiniLM).
        cache: read and write the judge cache.
        out: run folder (default: ``<output_root>/<timestamp>_eval-<dataset>``, or the newest
            such folder with the same settings, which is resumed).
        output_root: where default run folders go.
        resume: skip examples already in ``samples.jsonl``; off: always start a new folder.
        bootstrap_resamples: resamples of the 95% interval.
        max_failed_fraction: fail the run when more examples got no simulator output.
        progress: show a progress bar.
        population: compute the population metrics (diversity, distribution, detectability;
            ``humanlm.population.metrics``) from the samples; offline.
        seeds: samples per example; seeds ``seed + 1`` ... ``seed + seeds - 1`` are evaluated
            into ``seed-N`` folders inside the run folder and ``results.json`` gains
            ``stability`` (mean and standard error of every metric over the seeds).
        detect_judge: an LLM judge spec that picks the human of each (real, simulated) pair
            (``humanlm.eval.detect_judge``; ``None``: off). Uses the judge's key variable.
    """

    model: str = ""
    data: str = "demo"
    dataset: str = "auto"
    split: str = "test"
    limit: int | None = None
    name: str | None = None
    mode: str | None = None
    thinking: bool | None = None
    state_set: str | None = None
    length_filter: bool = True
    tokenizer: str | None = None
    temperature: float = _DECODING.temperature
    top_p: float = _DECODING.top_p
    max_new_tokens: int | None = None
    no_repeat_ngram: int = _DECODING.no_repeat_ngram_size
    ngram_ban_scope: str = _DECODING.ngram_ban_scope
    seed: int = 0
    batch_size: int = _DECODING.batch_size
    vllm: VLLMSettings = field(default_factory=VLLMSettings)
    judge: JudgeConfig = field(default_factory=paper_eval_judge)
    simulator: SimulatorConfig = field(default_factory=SimulatorConfig)
    aspects: bool = True
    embedding: bool = True
    cache: bool = True
    out: str | None = None
    output_root: str = "runs"
    resume: bool = True
    bootstrap_resamples: int = 1000
    max_failed_fraction: float = 0.5
    progress: bool = True
    population: bool = True
    seeds: int = 1
    detect_judge: str | None = None

    def __post_init__(self) -> None:
        problems = []
        if isinstance(self.judge, str):  # Python callers may name the judge by its spec
            self.judge = paper_eval_judge(self.judge)
        if isinstance(self.simulator, dict):  # as saved in a run folder's config.yaml
            self.simulator = SimulatorConfig(**self.simulator)
        if not self.model:
            problems.append("model: required; pass --model SPEC or set model: in the config")
        else:
            try:
                parse_model_spec(self.model, role="simulator", kinds=_SIMULATOR_KINDS)
            except ConfigError as err:
                problems.extend(err.problems)
        if self.dataset not in AUTO_DATASETS:
            try:
                self.dataset = resolve_dataset(self.dataset)
            except HumanlmError as err:
                problems.append(str(err))
        try:
            parse_model_spec(self.judge.spec, role="judge", kinds=JUDGE_KINDS)
        except ConfigError as err:
            problems.extend(err.problems)
        # The mode saved with the model: read by ``read_saved_mode``, never here.
        self._saved: SavedMode | None = None
        self._saved_read = False
        if self.mode is not None and self.mode not in MODES:
            problems.append(f"mode: {self.mode!r} is not one of {', '.join(MODES)}")
        if self.state_set is not None and self.state_set not in _EVAL_STATE_SETS:
            problems.append(f"state_set: must be one of {', '.join(_EVAL_STATE_SETS)}")
        if self.limit is not None and self.limit < 1:
            problems.append("limit: must be >= 1 (leave it unset for the protocol's row count)")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            problems.append("max_new_tokens: must be >= 1")
        if self.batch_size < 1:
            problems.append("batch_size: must be >= 1")
        if self.bootstrap_resamples < 100:
            problems.append("bootstrap_resamples: use at least 100 for a usable interval")
        if not 0 <= self.max_failed_fraction <= 1:
            problems.append("max_failed_fraction: must be in [0, 1]")
        if self.detect_judge is not None:
            try:
                if parse_model_spec(self.detect_judge, role="detect judge").kind == "embedding":
                    problems.append("detect_judge: needs an LLM (openai:... or litellm:...)")
            except ConfigError as err:
                problems.extend(f"detect_judge: {p}" for p in err.problems)
        if self.seeds < 1:
            problems.append("seeds: must be >= 1 (1: one sample per example, the protocol)")
        if problems:
            raise ConfigError(problems)
        # Validates the decoding settings too; the budget waits for the saved mode.
        self._generation_settings(self.max_new_tokens or max_new_tokens_for(False))

    def mode_note(self) -> str | None:
        """A line for the log when ``mode`` was set: which saved mode, if any, it replaces."""
        if self.mode is None:
            return None
        saved = self._saved_mode()
        if saved is None:
            return f"mode {self.mode} (set; the model carries no training mode)"
        if saved.mode.name == self.mode:
            return f"mode {self.mode} (set; the same as saved in {saved.source})"
        return (
            f"mode {self.mode} (set) replaces the training mode {saved.mode.name} saved in "
            f"{saved.source}"
        )

    def _saved_mode(self) -> SavedMode | None:
        if not self._saved_read:
            # A silent base-model prompt for a trained model is the mistake this guards against.
            raise ConfigError(
                "the model's saved training mode was not read; call read_saved_mode(cfg) first"
            )
        return self._saved

    @property
    def training_mode(self) -> Mode | None:
        """The mode whose prompt the model gets: as set, else the one saved with the model."""
        if self.mode is not None:
            return MODES[self.mode]
        saved = self._saved_mode()
        return saved.mode if saved else None

    @property
    def effective_thinking(self) -> bool:
        """Thinking as set, else the training mode's, else on."""
        if self.thinking is not None:
            return self.thinking
        return self.training_mode.thinking if self.training_mode else True

    @property
    def effective_state_set(self) -> str:
        """The response prompt's state set as set, else the training mode's, else ``r``."""
        if self.state_set is not None:
            return self.state_set
        return self.training_mode.state_set if self.training_mode else "r"

    def prompt_source(self) -> dict[str, Any]:
        """Where the prompt and thinking came from (for ``results.json``)."""
        mode, saved = self.training_mode, self._saved_mode()
        return {
            "mode": mode.name if mode else None,
            "mode_from": "setting" if self.mode is not None else ("model" if mode else None),
            "saved_mode": saved.mode.name if saved else None,
            "mode_file": str(saved.source) if saved else None,
            "thinking": self.effective_thinking,
            "thinking_from": "setting"
            if self.thinking is not None
            else ("mode" if mode else "default"),
            "state_set": self.effective_state_set,
            "state_set_from": "setting"
            if self.state_set is not None
            else ("mode" if mode else "default"),
        }

    @property
    def effective_max_new_tokens(self) -> int:
        """The generation budget: as set, else ``max_new_tokens_for`` the thinking in effect."""
        if self.max_new_tokens is not None:
            return self.max_new_tokens
        return max_new_tokens_for(self.effective_thinking)

    @property
    def effective_limit(self) -> int:
        """How many examples: as set, else the dataset's protocol row count."""
        if self.limit is not None:
            return self.limit
        return int(DATASETS.get(self.dataset, DATASETS["generic"])["eval_rows"])

    @property
    def metrics(self) -> list[str]:
        """The metrics this run scores, in report order."""
        on = {"state_alignment": self.aspects, "embedding_similarity": self.embedding}
        return [m for m in METRICS if on.get(m, True)]

    @property
    def label(self) -> str:
        """The run's name in reports."""
        return self.name or parse_model_spec(self.model, role="simulator").short

    def generation_settings(self) -> GenerationSettings:
        """The simulator's decoding settings (stops at ``</response>``)."""
        return self._generation_settings(self.effective_max_new_tokens)

    def _generation_settings(self, max_new_tokens: int) -> GenerationSettings:
        return GenerationSettings(
            temperature=self.temperature,
            top_p=self.top_p,
            max_new_tokens=max_new_tokens,
            no_repeat_ngram_size=self.no_repeat_ngram,
            ngram_ban_scope=self.ngram_ban_scope,
            batch_size=self.batch_size,
            concurrency=self.simulator.concurrency,
            seed=self.seed,
            stop=(STATES[RESPONSE].close_tag,),
            retry=RetryPolicy(
                max_retries=self.simulator.max_retries,
                timeout_s=self.simulator.timeout_s,
                request_timeout_s=self.simulator.timeout_s / 2,
            ),
        )

    def resolved(self) -> dict[str, Any]:
        """Every setting with the derived values filled in (what ``config.yaml`` holds).

        Only names of key variables appear, never keys.
        """
        values = dataclasses.asdict(self)
        values["mode"] = self.training_mode.name if self.training_mode else None
        values["thinking"] = self.effective_thinking
        values["state_set"] = self.effective_state_set
        values["max_new_tokens"] = self.effective_max_new_tokens
        values["limit"] = self.effective_limit
        values["protocol"] = PROTOCOL_VERSION
        return values

    def fingerprint(self) -> dict[str, Any]:
        """The settings a resumed run must share with the folder it continues.

        Model and judge are named without their endpoint: a server that moved to another host or
        port serves the same model, so the run resumes.
        """
        resolved = self.resolved()
        resolved["model"] = without_endpoint(self.model)
        resolved["judge"] = {**resolved["judge"], "spec": without_endpoint(self.judge.spec)}

        def pick(key: str) -> Any:
            value: Any = resolved
            for part in key.split("."):
                value = value[part]
            return value

        return {"protocol": PROTOCOL_VERSION, **{k: pick(k) for k in _FINGERPRINT_FIELDS}}


# Response prompts an evaluation can use: the tagged one of each training state set, SFT's
# untagged one and SFT-think's.
_EVAL_STATE_SETS = tuple(dict.fromkeys(m.state_set for m in MODES.values()))


def read_saved_mode(cfg: EvalConfig) -> EvalConfig:
    """Read the training mode saved with ``cfg.model`` into ``cfg`` (once) and return ``cfg``.

    Loading a config and running it call this; the config object itself never reads files.

    Raises:
        ConfigError: the model's mode file or manifest is unreadable or names an unknown mode.
    """
    if not cfg._saved_read:
        cfg._saved = load_mode(cfg.model)
        cfg._saved_read = True
    return cfg


# The judges to name when the one asked for cannot run here.
JUDGE_CHOICES = (
    "or choose another judge: --judge openai:MODEL[@URL] (any OpenAI-compatible server) or "
    "--judge embedding:minilm (offline, no key)"
)


def check_runnable(cfg: EvalConfig, *, simulator: bool = True) -> None:
    """Refuse settings that cannot run on this machine, before any folder or file is written.

    Checks the optional package each model needs (``vllm:`` simulator, ``litellm:`` judges) and
    the API key of each ``openai:`` model. ``simulator=False`` skips the simulator (rescoring
    replays saved replies).

    Raises:
        ConfigError: a missing extra (with its ``pip install`` line and the judges that would
            work instead) or an unset key variable.
    """
    check_judge_runnable(cfg.judge, detect_judge=cfg.detect_judge)
    if simulator:
        require_spec_extra(cfg.model, needed_by="simulator")
        resolve_api_key(
            parse_model_spec(cfg.model, role="simulator"),
            cfg.simulator.api_key_env,
            role="simulator",
            flag="--simulator-api-key-env",
        )


def check_judge_runnable(
    judge: JudgeConfig, *, detect_judge: str | None = None, flag: str = "--judge-api-key-env"
) -> None:
    """``check_runnable`` for the judge block (and the detect judge, which uses its key);
    ``flag`` is the option that names the key variable, for the error."""
    who = "the default judge (the paper's)" if judge.spec == PAPER_JUDGE else "judge"
    require_spec_extra(judge.spec, needed_by=who, instead=JUDGE_CHOICES)
    for role, spec in (("judge", judge.spec), ("detect judge", detect_judge)):
        if spec is None:
            continue
        if role != "judge":
            require_spec_extra(spec, needed_by=role)
        resolve_api_key(
            parse_model_spec(spec, role=role),
            judge.api_key_env,
            role=role,
            flag=flag,
        )
