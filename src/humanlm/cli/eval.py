"""``humanlm eval``: score a user simulator on a Humanual split with the paper's protocol.

Every option left out takes the protocol default of ``humanlm.eval.EvalConfig``; the resolved
settings are printed before the run starts.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["eval_command"]

_HELP = """Evaluate a simulator: generate one reply per example and score it with the judge.

Protocol defaults (paper): response prompt only, thinking on, temperature 0.4, one sample, no-repeat 4-gram ban, 1024 new tokens with thinking (512 without), the first 2,000 test rows (5,000 for reddit), judge litellm:anthropic/claude-haiku-4-5 at temperature 0. Metrics: response alignment, state alignment (six states), embedding similarity (MiniLM), valid-format rate; run scores are means x 100 with bootstrap 95% intervals. Re-running the same command resumes.

\b
Examples:
  humanlm eval --model hf:runs/x/model --data demo --limit 8 --judge embedding:minilm
  humanlm eval --model openai:Qwen/Qwen3-8B@http://127.0.0.1:8000/v1 --data data/reddit --dataset reddit --api-key-env ANTHROPIC_API_KEY
  humanlm eval --model vllm:runs/x/model --data snap-stanford/humanual-opinion --dataset reddit --judge openai:gpt-5-mini --no-thinking --out runs/eval-grpo
  humanlm eval --model hf:runs/x/model --data demo --judge embedding:minilm --seeds 3
  humanlm eval --rescore runs/eval-grpo --judge openai:gpt-5-mini --out runs/eval-grpo-gpt5
  humanlm eval --model hf:runs/x/model --data demo --judge embedding:minilm --detect-judge openai:gpt-5-mini

Population metrics (on by default, offline, from the same samples): diversity of the simulated and real replies (distinct-1/2, MATTR window 50, Yule's K, HD-D), reply-length and (reddit) AITA-verdict distributions with their distances, and detectability by a cross-validated classifier (accuracy x100, turing distance |accuracy - 50|). --seeds K samples every example K times and reports mean and standard error of every metric. --rescore judges a finished run's saved replies again without generating.
"""  # noqa: E501

_QUIET_LOGGERS = ("httpx", "httpx2", "openai")

Opt = typer.Option


def eval_command(
    model: Annotated[
        str | None,
        Opt("--model", help="hf:PATH, vllm:PATH or openai:MODEL@URL (or openai:MODEL)."),
    ] = None,
    data: Annotated[str | None, Opt("--data", help="demo, a prepared folder or a raw source.")] = (
        None
    ),
    dataset: Annotated[str, Opt("--dataset", help="Dataset id or hub name; auto: per row.")] = (
        "auto"
    ),
    split: Annotated[str, Opt("--split", help="Split to evaluate.")] = "test",
    limit: Annotated[
        int | None, Opt("--limit", min=1, help="First N rows (default: 2000, reddit 5000).")
    ] = None,
    judge: Annotated[
        str | None, Opt("--judge", help="Judge spec (default: claude-haiku-4-5).")
    ] = None,
    out: Annotated[
        Path | None, Opt("--out", help="Run folder (default: runs/<time>_eval-<ds>).")
    ] = None,
    name: Annotated[
        str | None, Opt("--name", help="Run label in reports (default: model).")
    ] = None,
    thinking: Annotated[bool | None, Opt("--thinking/--no-thinking", help="(default: on)")] = None,
    temperature: Annotated[float | None, Opt("--temperature", help="(default: 0.4)")] = None,
    top_p: Annotated[float | None, Opt("--top-p", help="(default: 1.0)")] = None,
    max_new_tokens: Annotated[
        int | None, Opt("--max-new-tokens", help="(default: 1024/512)")
    ] = None,
    no_repeat_ngram: Annotated[
        int | None, Opt("--no-repeat-ngram", help="0: off (default: 4)")
    ] = None,
    seed: Annotated[int | None, Opt("--seed", help="Sampling/bootstrap seed (default: 0).")] = None,
    batch_size: Annotated[
        int | None, Opt("--batch-size", help="hf/vllm batch (default: 8).")
    ] = None,
    judge_temperature: Annotated[
        float | None, Opt("--judge-temperature", help="(default: 0)")
    ] = None,
    judge_max_tokens: Annotated[int | None, Opt("--judge-max-tokens")] = None,
    api_key_env: Annotated[str | None, Opt("--api-key-env", help="Judge key variable.")] = None,
    simulator_api_key_env: Annotated[
        str | None, Opt("--simulator-api-key-env", help="openai: simulator key variable.")
    ] = None,
    concurrency: Annotated[
        int | None, Opt("--concurrency", help="In flight (default: 32).")
    ] = None,
    aspects: Annotated[bool | None, Opt("--aspects/--no-aspects", help="(default: on)")] = None,
    embedding: Annotated[
        bool | None, Opt("--embedding/--no-embedding", help="(default: on)")
    ] = None,
    no_cache: Annotated[bool, Opt("--no-cache", help="No judge cache.")] = False,
    cache: Annotated[
        Path | None, Opt("--cache", help="Cache file (default: in the run folder).")
    ] = None,
    timeout: Annotated[
        float | None, Opt("--timeout", help="Per request, s (default: 120).")
    ] = None,
    max_retries: Annotated[int | None, Opt("--max-retries", help="(default: 4)")] = None,
    resume: Annotated[bool | None, Opt("--resume/--fresh", help="(default: resume)")] = None,
    bootstrap_resamples: Annotated[
        int | None, Opt("--bootstrap-resamples", help="(default: 1000)")
    ] = None,
    max_failed_fraction: Annotated[
        float | None, Opt("--max-failed-fraction", help="(default: 0.5)")
    ] = None,
    progress: Annotated[bool, Opt("--progress/--no-progress")] = True,
    population: Annotated[
        bool | None,
        Opt("--population/--no-population", help="Diversity, distribution, detectability."),
    ] = None,
    seeds: Annotated[
        int | None, Opt("--seeds", min=1, help="Samples per example, one seed each (default: 1).")
    ] = None,
    detect_judge: Annotated[
        str | None,
        Opt("--detect-judge", help="LLM that picks the human reply of each pair (default: off)."),
    ] = None,
    rescore: Annotated[
        Path | None,
        Opt("--rescore", help="Judge this finished run's saved replies again (needs --judge)."),
    ] = None,
) -> None:
    given: dict[str, Any] = dict(locals())  # the options, by their EvalConfig names
    from humanlm.errors import ConfigError
    from humanlm.eval import EvalConfig, run_eval

    given.update(cache=not no_cache, cache_path=str(cache) if cache else None, timeout_s=timeout)
    given["out"] = str(out) if out else None
    del given["no_cache"], given["timeout"], given["rescore"]
    for logger_name in _QUIET_LOGGERS:
        logging.getLogger(logger_name).setLevel(logging.WARNING)
    if rescore is not None:
        typer.echo(_rescore(rescore, given).summary())
        return
    if model is None or data is None:
        raise ConfigError("--model and --data are required (or --rescore RUN_DIR --judge SPEC)")
    cfg = EvalConfig(**{k: v for k, v in given.items() if v is not None})
    typer.echo("humanlm eval settings:")
    for key, value in cfg.resolved().items():
        typer.echo(f"  {key}: {value}")
    result = run_eval(cfg)
    typer.echo(result.summary())


# Settings a rescoring run may change: how it judges, never how the replies were generated.
_RESCORE_SETTINGS = (
    "judge_temperature", "judge_max_tokens", "api_key_env", "concurrency", "aspects",
    "embedding", "cache", "cache_path", "timeout_s", "max_retries", "bootstrap_resamples",
    "max_failed_fraction", "progress", "population", "name", "detect_judge",
)  # fmt: skip


def _rescore(run_dir: Path, given: dict[str, Any]) -> Any:
    from humanlm.errors import ConfigError
    from humanlm.eval.rescore import rescore_run

    if given["judge"] is None:
        raise ConfigError("--rescore needs --judge SPEC (the judge to score the saved replies)")
    overrides = {k: given[k] for k in _RESCORE_SETTINGS if given.get(k) is not None}
    return rescore_run(run_dir, judge=given["judge"], out=given["out"], **overrides)


eval_command.__doc__ = _HELP
