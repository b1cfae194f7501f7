"""Rescoring: judge a finished run's saved replies again, without generating anything.

``humanlm eval --rescore RUN_DIR --judge SPEC [--out DIR]`` reads the run's ``config.yaml`` and
``samples.jsonl``, replays each saved generation in place of the simulator and scores it with
the new judge (another model, another prompt version), into a new run folder with the same
layout (default: ``RUN_DIR`` with ``_rescored-<judge>`` appended). The new ``results.json``
names the source run under ``rescored_from``. Examples whose saved record has no generation
stay without output (counted as failed, never regenerated). A ``--seeds`` run is rescored for
its first seed; rescore each ``seed-N`` folder for the others.

Example:
    >>> result = rescore_run("runs/a", judge="openai:gpt-5-mini")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from humanlm.config import JudgeConfig
from humanlm.data.resolve import is_prepared_dir, resolve_split
from humanlm.errors import ConfigError, DataError
from humanlm.eval.config import AUTO_DATASETS, EvalConfig
from humanlm.eval.run import RESULTS_FILE, EvalResult, run_eval
from humanlm.eval.samples import SAMPLES_FILE, read_samples
from humanlm.files import write_json
from humanlm.generate.prompt import SimPrompt, build_sim_prompt
from humanlm.generate.protocol import Generation, GenerationSettings

__all__ = ["ReplayGenerator", "rescore_run"]

logger = logging.getLogger(__name__)

_DERIVED = ("protocol",)  # written into config.yaml, not EvalConfig fields


class ReplayGenerator:
    """A ``Generator`` that answers each prompt with a saved generation.

    Args:
        generations: the generation for each prompt text.
        spec: the original simulator spec (for logs).
        applied_ngram_ban: whether the original run applied the n-gram ban.
    """

    batch_size = 64
    context_length = None
    continues_prompt = True

    def __init__(
        self, generations: Mapping[str, Generation], *, spec: str, applied_ngram_ban: bool
    ):
        self.generations = dict(generations)
        self.spec = spec
        self.applies_ngram_ban = applied_ngram_ban

    async def generate(
        self, prompts: Sequence[SimPrompt], settings: GenerationSettings
    ) -> list[Generation]:
        missing = Generation(None, error="no saved generation for this example")
        return [self.generations.get(p.text, missing) for p in prompts]

    def count_tokens(self, text: str) -> None:
        return None

    def health(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def _slug(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", spec.split("@")[0]).strip("-")[:60]


def _source_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.yaml"
    if not path.is_file() or not (run_dir / SAMPLES_FILE).is_file():
        raise DataError("not a finished evaluation folder (needs config.yaml and samples.jsonl)",
                        file=str(run_dir))  # fmt: skip
    settings = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(settings, dict) or "model" not in settings:
        raise DataError("config.yaml holds no evaluation settings", file=str(path))
    known = {f.name for f in dataclasses.fields(EvalConfig)}
    dropped = sorted(set(settings) - known - set(_DERIVED))
    if dropped:
        logger.warning("%s: ignoring settings this version does not know: %s", path, dropped)
    return {k: v for k, v in settings.items() if k in known}


def rescore_run(
    run_dir: str | os.PathLike[str],
    *,
    judge: str | JudgeConfig,
    out: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> EvalResult:
    """Judge the saved replies of ``run_dir`` with ``judge`` into ``out``.

    Args:
        run_dir: a finished ``humanlm eval`` folder.
        judge: the new judge: a spec (the paper's eval settings otherwise) or a judge block.
        out: the new run folder (default: ``<run_dir>_rescored-<judge>``).
        overrides: other ``EvalConfig`` settings for the new run (``aspects``, ``simulator``
            as a partial block, ...); generation settings are the source run's.

    Returns:
        The ``EvalResult`` of the new run.

    Raises:
        DataError: ``run_dir`` is not an evaluation folder.
        ConfigError: ``out`` is ``run_dir``, or holds an evaluation with other settings.
    """
    source = Path(run_dir)
    settings = _source_config(source)
    spec = judge if isinstance(judge, str) else judge.spec
    target = (
        Path(out) if out is not None else source.with_name(f"{source.name}_rescored-{_slug(spec)}")
    )
    if target.resolve() == source.resolve():
        raise ConfigError("--out must be a new folder: rescoring never overwrites its source run")
    if "simulator" in overrides:  # a partial block over the source run's
        overrides["simulator"] = {**settings.get("simulator", {}), **overrides["simulator"]}
    cfg = EvalConfig(**{**settings, **overrides, "judge": judge, "out": str(target), "seeds": 1})
    if is_prepared_dir(source / "data"):  # the rows the source run evaluated
        cfg = dataclasses.replace(cfg, data=str((source / "data").resolve()))
    records = read_samples(source / SAMPLES_FILE)
    source_results = _read_json(source / RESULTS_FILE)
    ngram_ban = int((source_results.get("protocol_notes") or {}).get("ngram_ban_applied") or 0)
    dataset = None if cfg.dataset in AUTO_DATASETS else cfg.dataset
    examples = resolve_split(
        cfg.data, dataset=dataset, split=cfg.split, work_dir=target / "data",
        limit=cfg.effective_limit,
    )  # fmt: skip
    generations = {}
    for ex in examples:
        record = records.get(str(ex["example_id"]))
        if record is None or record.get("generation") is None:
            continue
        prompt = build_sim_prompt(ex, thinking=cfg.thinking)
        generations[prompt.text] = Generation(
            record["generation"],
            finish_reason=record.get("finish_reason"),
            cut=bool(record.get("reply_cut")),
        )
    logger.info("rescoring %d saved replies of %s with %s", len(generations), source, judge)
    replay = ReplayGenerator(generations, spec=cfg.model, applied_ngram_ban=ngram_ban > 0)
    result = run_eval(cfg, generator=replay)
    result.results["rescored_from"] = str(source.resolve())
    write_json(target / RESULTS_FILE, result.results)
    return result


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    loaded = json.loads(path.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else {}
