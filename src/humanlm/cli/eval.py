"""``humanlm eval``: score a user simulator on a Humanual split with the paper's protocol.

Settings come from ``--config FILE.yaml`` (the keys of ``humanlm.eval.EvalConfig``, the judge
as the same ``judge:`` block training uses), then the flags, then ``KEY=VALUE`` overrides; every
setting left out takes the protocol default. The resolved settings are printed before the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["eval_command"]

_HELP = """Evaluate a simulator: generate one reply per example and score it with the judge.

Protocol defaults (paper): response prompt only (prompt and thinking from the training mode saved with a humanlm model or checkpoint, else thinking on), temperature 0.4, one sample, no-repeat 4-gram ban, 1024 new tokens with thinking (512 without), the first 2,000 test rows (5,000 for reddit) whose prompt fits the dataset's token limit, judge litellm:anthropic/claude-haiku-4-5 at temperature 0. Metrics: response alignment, state alignment (six states), embedding similarity (MiniLM), valid-format rate; run scores are means x 100 with bootstrap 95% intervals. Re-running the same command resumes.

Settings: --config FILE.yaml (keys of EvalConfig; the judge: block as in training), then the flags, then KEY=VALUE overrides.

\b
Examples:
  humanlm eval --model hf:runs/x/model --data demo --limit 8 --judge embedding:minilm
  humanlm eval --config eval.yaml model=hf:runs/x/model judge.temperature=0.2 limit=100
  humanlm eval --model openai:Qwen/Qwen3-8B@http://127.0.0.1:8000/v1 --data data/reddit --dataset reddit --api-key-env ANTHROPIC_API_KEY
  humanlm eval --model openai:runs/x/model@http://127.0.0.1:8000/v1 --simulator-api completions --tokenizer runs/x/model simulator_ngram_xargs=true --data demo
  humanlm eval --model vllm:runs/x/model --data snap-stanford/humanual-opinion --dataset reddit --judge openai:gpt-5-mini --no-thinking --out runs/eval-grpo
  humanlm eval --model hf:runs/x/model --data demo --judge embedding:minilm --seeds 3
  humanlm eval --model hf:runs/x/checkpoints/checkpoint-200 --data demo --judge embedding:minilm
  humanlm eval --model hf:runs/merged_step150 --mode humanlm --data data/reddit --dataset reddit
  humanlm eval --rescore runs/eval-grpo --judge openai:gpt-5-mini --out runs/eval-grpo-gpt5
  humanlm eval --model hf:runs/x/model --data demo --judge embedding:minilm --detect-judge openai:gpt-5-mini

Population metrics (on by default, offline, from the same samples): diversity of the simulated and real replies (distinct-1/2, MATTR window 50, Yule's K, HD-D), reply-length and (reddit) AITA-verdict distributions with their distances, and detectability by a cross-validated classifier (accuracy x100, turing distance |accuracy - 50|). --seeds K samples every example K times and reports mean and standard error of every metric. --rescore judges a finished run's saved replies again without generating.

Exit codes: 0 done; 1 when the judge scored the response alignment of no example at all (--allow-unscored: 0); 2 bad settings or data.
"""  # noqa: E501

Opt = typer.Option


def _default(name: str) -> str:
    """``(default: X)`` read from ``EvalConfig`` (dotted names reach into ``judge``)."""
    import dataclasses

    from humanlm.eval.config import EvalConfig

    value: object = EvalConfig(model="hf:x")
    for part in name.split("."):
        value = getattr(value, part)
    if isinstance(value, bool):
        value = "on" if value else "off"
    elif value is None:
        value = "unset"
    elif dataclasses.is_dataclass(value):
        value = type(value).__name__
    return f"(default: {value})"


# flag name -> the EvalConfig keys it sets
_FLAG_KEYS: dict[str, tuple[str, ...]] = {
    "judge": ("judge.spec",),
    "judge_temperature": ("judge.temperature",),
    "judge_max_tokens": ("judge.max_tokens",),
    "api_key_env": ("judge.api_key_env",),
    "cache_file": ("judge.cache",),
    "timeout": ("timeout_s", "judge.timeout_s"),
    "max_retries": ("max_retries", "judge.max_retries"),
    "concurrency": ("concurrency", "judge.concurrency"),
}


def eval_command(
    overrides: Annotated[
        list[str] | None,
        typer.Argument(help="KEY=VALUE overrides, e.g. limit=8 judge.temperature=0.2"),
    ] = None,
    config: Annotated[
        Path | None, Opt("--config", "-c", help="Eval config YAML (keys of EvalConfig).")
    ] = None,
    model: Annotated[
        str | None, Opt("--model", help="hf:PATH, vllm:PATH or openai:MODEL[@URL].")
    ] = None,
    data: Annotated[
        str | None,
        Opt("--data", help=f"demo, a prepared folder or a raw source {_default('data')}."),
    ] = None,
    dataset: Annotated[
        str | None,
        Opt("--dataset", help=f"Dataset id or hub name; auto: per row {_default('dataset')}."),
    ] = None,
    split: Annotated[str | None, Opt("--split", help=f"Split {_default('split')}.")] = None,
    limit: Annotated[
        int | None, Opt("--limit", min=1, help="First N rows (default: 2000, reddit 5000).")
    ] = None,
    judge: Annotated[
        str | None, Opt("--judge", help=f"Judge spec {_default('judge.spec')}.")
    ] = None,
    out: Annotated[
        Path | None, Opt("--out", help="Run folder (default: runs/<time>_eval-<ds>).")
    ] = None,
    name: Annotated[
        str | None, Opt("--name", help="Run label in reports (default: a short model name).")
    ] = None,
    mode: Annotated[
        str | None,
        Opt(
            "--mode",
            help="Training mode whose prompt the model gets (default: the mode saved with the "
            "model, else a base model's prompt).",
        ),
    ] = None,
    thinking: Annotated[
        bool | None,
        Opt("--thinking/--no-thinking", help="(default: the model's training mode, else on)"),
    ] = None,
    state_set: Annotated[
        str | None,
        Opt(
            "--state-set",
            help="Response prompt: r or r_no_tag... (default: the model's mode, else r).",
        ),
    ] = None,
    simulator_api: Annotated[
        str | None,
        Opt("--simulator-api", help=f"openai: chat or completions {_default('simulator_api')}."),
    ] = None,
    tokenizer: Annotated[
        str | None,
        Opt("--tokenizer", help="Tokenizer of the prompt-length filter (default: the model's)."),
    ] = None,
    temperature: Annotated[float | None, Opt("--temperature", help=_default("temperature"))] = None,
    top_p: Annotated[float | None, Opt("--top-p", help=_default("top_p"))] = None,
    max_new_tokens: Annotated[
        int | None, Opt("--max-new-tokens", help="(default: 1024 with thinking, 512 without)")
    ] = None,
    no_repeat_ngram: Annotated[
        int | None, Opt("--no-repeat-ngram", help=f"0: off {_default('no_repeat_ngram')}")
    ] = None,
    seed: Annotated[
        int | None, Opt("--seed", help=f"Sampling/bootstrap seed {_default('seed')}.")
    ] = None,
    batch_size: Annotated[
        int | None, Opt("--batch-size", help=f"hf/vllm batch {_default('batch_size')}.")
    ] = None,
    judge_temperature: Annotated[
        float | None, Opt("--judge-temperature", help=_default("judge.temperature"))
    ] = None,
    judge_max_tokens: Annotated[
        int | None, Opt("--judge-max-tokens", help=_default("judge.max_tokens"))
    ] = None,
    api_key_env: Annotated[
        str | None, Opt("--api-key-env", help="Judge key variable; none: a key-less server.")
    ] = None,
    simulator_api_key_env: Annotated[
        str | None, Opt("--simulator-api-key-env", help="openai: simulator key variable.")
    ] = None,
    concurrency: Annotated[
        int | None, Opt("--concurrency", help=f"In flight {_default('concurrency')}.")
    ] = None,
    aspects: Annotated[bool | None, Opt("--aspects/--no-aspects", help=_default("aspects"))] = None,
    embedding: Annotated[
        bool | None, Opt("--embedding/--no-embedding", help=_default("embedding"))
    ] = None,
    no_cache: Annotated[bool, Opt("--no-cache", help="No judge cache.")] = False,
    cache_file: Annotated[
        Path | None, Opt("--cache", help="Judge cache file (default: in the run folder).")
    ] = None,
    timeout: Annotated[
        float | None, Opt("--timeout", help=f"Per request, s {_default('timeout_s')}.")
    ] = None,
    max_retries: Annotated[int | None, Opt("--max-retries", help=_default("max_retries"))] = None,
    resume: Annotated[bool | None, Opt("--resume/--fresh", help=_default("resume"))] = None,
    bootstrap_resamples: Annotated[
        int | None, Opt("--bootstrap-resamples", help=_default("bootstrap_resamples"))
    ] = None,
    max_failed_fraction: Annotated[
        float | None, Opt("--max-failed-fraction", help=_default("max_failed_fraction"))
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
    allow_unscored: Annotated[
        bool,
        Opt(
            "--allow-unscored",
            help="Exit 0 even when the judge scored no example (default: exit 1).",
        ),
    ] = False,
) -> None:
    flags: dict[str, Any] = dict(locals())  # the options, by their EvalConfig names
    from humanlm.config import load_config
    from humanlm.eval import EvalConfig, run_eval

    for key in ("overrides", "config", "no_cache", "rescore", "allow_unscored"):
        del flags[key]
    given: dict[str, Any] = {}
    for flag, value in flags.items():
        if value is None:
            continue
        value = str(value) if isinstance(value, Path) else value
        for key in _FLAG_KEYS.get(flag, (flag,)):
            given[key] = value
    if no_cache:
        given["cache"] = False
    if rescore is not None:
        rescored = _rescore(rescore, given)
        typer.echo(rescored.summary())
        _exit_if_nothing_scored(rescored, allow_unscored)
        return
    cfg = load_config(config, list(overrides or []), cls=EvalConfig, given=given)
    typer.echo("humanlm eval settings:")
    for key, value in cfg.resolved().items():
        for sub, item in value.items() if isinstance(value, dict) else [("", value)]:
            typer.echo(f"  {key}{'.' + sub if sub else ''}: {item}")
    result = run_eval(cfg)
    typer.echo(result.summary())
    _exit_if_nothing_scored(result, allow_unscored)


# The metric a run is read by: the judge's response alignment (the embedding similarity where a
# run has no judge).
_PRIMARY_METRICS = ("response_alignment", "embedding_similarity")


def _exit_if_nothing_scored(result: Any, allow_unscored: bool) -> None:
    """Exit 1 with one line when the run's primary metric scored no example, so that a pipeline
    does not read a run without a number as a success (``--allow-unscored``: exit 0)."""
    metrics = result.results.get("metrics") or {}
    name = next((m for m in _PRIMARY_METRICS if m in metrics), None)
    if name is None or metrics[name].get("scored") or allow_unscored:
        return
    summary = metrics[name]
    typer.echo(
        f"error: nothing scored: {name} has no score for any of the {summary['examples']} "
        f"examples ({summary['unscored']} unscored; reasons in {result.run_dir}); re-run the "
        "same command to judge them again, or pass --allow-unscored to exit 0",
        err=True,
    )
    raise typer.Exit(1)


# Settings a rescoring run may change: how it judges, never how the replies were generated.
_RESCORE_SETTINGS = (
    "concurrency", "aspects", "embedding", "cache", "timeout_s", "max_retries",
    "bootstrap_resamples", "max_failed_fraction", "progress", "population", "name",
    "detect_judge",
)  # fmt: skip


def _rescore(run_dir: Path, given: dict[str, Any]) -> Any:
    import dataclasses

    from humanlm.errors import ConfigError
    from humanlm.eval.config import paper_eval_judge
    from humanlm.eval.rescore import rescore_run

    if "judge.spec" not in given:
        raise ConfigError("--rescore needs --judge SPEC (the judge to score the saved replies)")
    judge = dataclasses.replace(
        paper_eval_judge(given["judge.spec"]),
        **{k[len("judge.") :]: v for k, v in given.items() if k.startswith("judge.")},
    )
    overrides = {k: given[k] for k in _RESCORE_SETTINGS if k in given}
    return rescore_run(run_dir, judge=judge, out=given.get("out"), **overrides)


eval_command.__doc__ = _HELP
