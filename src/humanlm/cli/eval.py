"""``humanlm eval``: score a user simulator on a Humanual split with the paper's protocol.

Settings come from ``--config FILE.yaml`` (the keys of ``humanlm.eval.EvalConfig``, the judge
as the same ``judge:`` block training uses), then the flags, then ``KEY=VALUE`` overrides; every
setting left out takes the protocol default. ``-v`` prints the resolved settings before the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from humanlm.config import default_value
from humanlm.eval.config import EvalConfig, paper_eval_judge
from humanlm.states.modes import max_new_tokens_for

__all__ = ["eval_command"]

_HELP = """Evaluate a simulator: generate one reply per example and score it with the judge.

Protocol defaults (paper): response prompt only (prompt and thinking from the training mode saved with a humanlm model or checkpoint, else thinking on), temperature {temperature}, one sample, no-repeat {ngram}-gram ban, {think_tokens} new tokens with thinking ({plain_tokens} without), the first 2,000 test rows (5,000 for reddit) whose prompt fits the dataset's token limit, judge {judge} at temperature {judge_temperature:g}. Metrics: response alignment, state alignment (six states), embedding similarity (MiniLM), valid-format rate; run scores are means x 100 with bootstrap 95% intervals. Re-running the same command resumes.

Settings: --config FILE.yaml (keys of EvalConfig; the judge: block as in training, the simulator: block for how the simulator is reached), then the flags given, then KEY=VALUE overrides; -v prints them all before the run. The default judge needs the litellm extra (pip install 'humanlm[litellm]') and ANTHROPIC_API_KEY; without them eval stops before writing anything and names the other judges (--judge openai:MODEL[@URL], --judge embedding:minilm).

\b
Examples:
  humanlm eval --model hf:runs/x/model --data demo --limit 8 --judge embedding:minilm
  humanlm eval --config eval.yaml model=hf:runs/x/model judge.temperature=0.2 limit=100
  humanlm eval --model openai:Qwen/Qwen3-8B@http://127.0.0.1:8000/v1 --data data/reddit --dataset reddit --judge-api-key-env ANTHROPIC_API_KEY
  humanlm eval --model openai:runs/x/model@http://127.0.0.1:8000/v1 --simulator-api completions --tokenizer runs/x/model simulator.ngram_xargs=true --data demo
  humanlm eval --model vllm:runs/x/model --data snap-stanford/humanual-opinion --dataset reddit --judge openai:gpt-5-mini --no-thinking --out runs/eval-grpo
  humanlm eval --model hf:runs/x/model --data demo --judge embedding:minilm --seeds 3
  humanlm eval --model hf:runs/x/checkpoints/checkpoint-200 --data demo --judge embedding:minilm
  humanlm eval --model hf:runs/merged_step150 --mode humanlm --data data/reddit --dataset reddit
  humanlm eval --rescore runs/eval-grpo --judge openai:gpt-5-mini --out runs/eval-grpo-gpt5
  humanlm eval --model hf:runs/x/model --data demo --judge embedding:minilm --detect-judge openai:gpt-5-mini

Population metrics (on by default, offline, from the same samples): diversity of the simulated and real replies (distinct-1/2, MATTR window 50, Yule's K, HD-D), reply-length and (reddit) AITA-verdict distributions with their distances, and detectability by a cross-validated classifier (accuracy x100, turing distance |accuracy - 50|). --seeds K samples every example K times and reports mean and standard error of every metric. --rescore judges a finished run's saved replies again without generating.

Exit codes: 0 done; 1 when the judge scored the response alignment of no example at all (--allow-unscored: 0); 2 bad settings or data.
"""  # noqa: E501
_HELP = _HELP.format(
    temperature=EvalConfig.temperature,
    ngram=EvalConfig.no_repeat_ngram,
    think_tokens=max_new_tokens_for(True),
    plain_tokens=max_new_tokens_for(False),
    judge=paper_eval_judge().spec,
    judge_temperature=paper_eval_judge().temperature,
)

Opt = typer.Option


def _default(name: str) -> Any:
    """The ``EvalConfig`` default of ``name`` (dotted names reach into a block), which the
    option shows as ``[default: ...]``; only options given on the command line are applied."""
    return default_value(EvalConfig, name)


# flag name -> the EvalConfig key it sets, where the two differ
_FLAG_KEYS: dict[str, str] = {
    "judge": "judge.spec",
    "judge_temperature": "judge.temperature",
    "judge_max_tokens": "judge.max_tokens",
    "judge_timeout": "judge.timeout_s",
    "judge_max_retries": "judge.max_retries",
    "judge_concurrency": "judge.concurrency",
    "judge_api_key_env": "judge.api_key_env",
    "cache_file": "judge.cache",
    "simulator_api": "simulator.api",
    "simulator_api_key_env": "simulator.api_key_env",
    "simulator_timeout": "simulator.timeout_s",
    "simulator_max_retries": "simulator.max_retries",
    "simulator_concurrency": "simulator.concurrency",
}
# Options that are not EvalConfig settings.
_NOT_SETTINGS = ("ctx", "overrides", "config", "no_cache", "rescore", "allow_unscored", "verbose")


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether option ``name`` was given (not its default): a default never overrides a value
    from ``--config``."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def eval_command(
    ctx: typer.Context,
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
        str,
        Opt(
            "--data",
            help="demo, a prepared folder, or a raw file (every row in test, as data prepare "
            "--eval-only writes it).",
        ),
    ] = _default("data"),
    dataset: Annotated[
        str,
        Opt(
            "--dataset",
            help="Dataset id or hub name; auto: from each row, else generic (as data validate).",
        ),
    ] = _default("dataset"),
    split: Annotated[
        str,
        Opt("--split", help="Split to evaluate."),
    ] = _default("split"),
    limit: Annotated[
        int | None, Opt("--limit", min=1, help="First N rows.", show_default="2000, reddit 5000")
    ] = None,
    judge: Annotated[
        str,
        Opt("--judge", help="openai:MODEL[@URL], embedding:minilm or litellm:PROVIDER/MODEL."),
    ] = _default("judge.spec"),
    out: Annotated[
        Path | None, Opt("--out", help="Run folder.", show_default="runs/<time>_eval-<dataset>")
    ] = None,
    name: Annotated[
        str | None, Opt("--name", help="Run label in reports.", show_default="a short model name")
    ] = None,
    mode: Annotated[
        str | None,
        Opt(
            "--mode",
            help="Training mode whose prompt the model gets.",
            show_default="the mode saved with the model, else a base model's prompt",
        ),
    ] = None,
    thinking: Annotated[
        bool | None,
        Opt(
            "--thinking/--no-thinking",
            help="Let the simulator think first.",
            show_default="the model's training mode, else on",
        ),
    ] = None,
    state_set: Annotated[
        str | None,
        Opt(
            "--state-set",
            help="Response prompt: r or r_no_tag...",
            show_default="the model's mode, else r",
        ),
    ] = None,
    simulator_api: Annotated[
        str, Opt("--simulator-api", help="openai: chat or completions.")
    ] = _default("simulator.api"),
    tokenizer: Annotated[
        str | None,
        Opt(
            "--tokenizer", help="Tokenizer of the prompt-length filter.", show_default="the model's"
        ),
    ] = None,
    temperature: Annotated[float, Opt("--temperature", help="Sampling temperature.")] = _default(
        "temperature"
    ),
    top_p: Annotated[float, Opt("--top-p", help="Nucleus sampling.")] = _default("top_p"),
    max_new_tokens: Annotated[
        int | None,
        Opt(
            "--max-new-tokens",
            help="Generation budget.",
            show_default=f"{max_new_tokens_for(True)} with thinking, "
            f"{max_new_tokens_for(False)} without",
        ),
    ] = None,
    no_repeat_ngram: Annotated[
        int, Opt("--no-repeat-ngram", help="No-repeat n-gram ban size; 0: off.")
    ] = _default("no_repeat_ngram"),
    seed: Annotated[int, Opt("--seed", help="Sampling/bootstrap seed.")] = _default("seed"),
    batch_size: Annotated[int, Opt("--batch-size", help="hf/vllm prompts per batch.")] = _default(
        "batch_size"
    ),
    judge_temperature: Annotated[
        float, Opt("--judge-temperature", help="Judge temperature.")
    ] = _default("judge.temperature"),
    judge_max_tokens: Annotated[
        int, Opt("--judge-max-tokens", help="Judge reply limit sent.")
    ] = _default("judge.max_tokens"),
    judge_api_key_env: Annotated[
        str | None,
        Opt(
            "--judge-api-key-env",
            help="Judge key variable; none: a key-less server.",
            show_default="OPENAI_API_KEY for openai:, the provider's own for litellm:",
        ),
    ] = None,
    simulator_api_key_env: Annotated[
        str | None,
        Opt(
            "--simulator-api-key-env",
            help="openai: simulator key variable; none: a key-less server.",
            show_default="OPENAI_API_KEY",
        ),
    ] = None,
    simulator_concurrency: Annotated[
        int,
        Opt("--simulator-concurrency", min=1, help="Simulator requests (and examples) in flight."),
    ] = _default("simulator.concurrency"),
    judge_concurrency: Annotated[
        int, Opt("--judge-concurrency", min=1, help="Judge calls in flight.")
    ] = _default("judge.concurrency"),
    aspects: Annotated[
        bool, Opt("--aspects/--no-aspects", help="Score state alignment.")
    ] = _default("aspects"),
    embedding: Annotated[
        bool, Opt("--embedding/--no-embedding", help="Score embedding similarity.")
    ] = _default("embedding"),
    no_cache: Annotated[bool, Opt("--no-cache", help="No judge cache.")] = False,
    cache_file: Annotated[
        Path | None,
        Opt(
            "--cache", help="Judge cache file.", show_default="judge_cache.sqlite in the run folder"
        ),
    ] = None,
    simulator_timeout: Annotated[
        float,
        Opt("--simulator-timeout", help="Per simulator request, retries included, s."),
    ] = _default("simulator.timeout_s"),
    simulator_max_retries: Annotated[
        int, Opt("--simulator-max-retries", min=0, help="Retries per simulator request.")
    ] = _default("simulator.max_retries"),
    judge_timeout: Annotated[
        float, Opt("--judge-timeout", help="Per judge call, retries included, s.")
    ] = _default("judge.timeout_s"),
    judge_max_retries: Annotated[
        int, Opt("--judge-max-retries", min=0, help="Retries per judge call.")
    ] = _default("judge.max_retries"),
    resume: Annotated[
        bool, Opt("--resume/--fresh", help="Continue a run folder with the same settings.")
    ] = _default("resume"),
    bootstrap_resamples: Annotated[
        int, Opt("--bootstrap-resamples", help="Resamples of the 95% interval.")
    ] = _default("bootstrap_resamples"),
    max_failed_fraction: Annotated[
        float,
        Opt("--max-failed-fraction", help="Fail when more examples got no simulator output."),
    ] = _default("max_failed_fraction"),
    progress: Annotated[
        bool, Opt("--progress/--no-progress", help="Show a progress bar.")
    ] = _default("progress"),
    population: Annotated[
        bool,
        Opt("--population/--no-population", help="Diversity, distribution, detectability."),
    ] = _default("population"),
    seeds: Annotated[
        int, Opt("--seeds", min=1, help="Samples per example, one seed each.")
    ] = _default("seeds"),
    detect_judge: Annotated[
        str | None,
        Opt(
            "--detect-judge",
            help="LLM that picks the human reply of each pair.",
            show_default="off",
        ),
    ] = None,
    rescore: Annotated[
        Path | None,
        Opt("--rescore", help="Judge this finished run's saved replies again (needs --judge)."),
    ] = None,
    allow_unscored: Annotated[
        bool, Opt("--allow-unscored", help="Exit 0 even when the judge scored no example.")
    ] = False,
    verbose: Annotated[
        bool, Opt("--verbose", "-v", help="Print every resolved setting before the run.")
    ] = False,
) -> None:
    flags: dict[str, Any] = dict(locals())  # the options, by their EvalConfig names
    from humanlm.config import load_config
    from humanlm.eval import run_eval
    from humanlm.eval.config import check_runnable, read_saved_mode

    given: dict[str, Any] = {}
    for flag, value in flags.items():
        if flag in _NOT_SETTINGS or value is None or not _given(ctx, flag):
            continue
        given[_FLAG_KEYS.get(flag, flag)] = str(value) if isinstance(value, Path) else value
    if no_cache:
        given["cache"] = False
    if rescore is not None:
        rescored = _rescore(rescore, given)
        typer.echo(rescored.summary())
        _exit_if_nothing_scored(rescored, allow_unscored)
        return
    cfg = read_saved_mode(load_config(config, list(overrides or []), cls=EvalConfig, given=given))
    check_runnable(cfg)  # a missing extra or key stops the run before its folder exists
    if verbose:
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
    "aspects", "embedding", "cache", "bootstrap_resamples", "max_failed_fraction", "progress",
    "population", "name", "detect_judge",
)  # fmt: skip


def _rescore(run_dir: Path, given: dict[str, Any]) -> Any:
    import dataclasses

    from humanlm.errors import ConfigError
    from humanlm.eval.config import check_judge_runnable
    from humanlm.eval.rescore import rescore_run

    if "judge.spec" not in given:
        raise ConfigError("--rescore needs --judge SPEC (the judge to score the saved replies)")
    judge = dataclasses.replace(
        paper_eval_judge(given["judge.spec"]),
        **{k[len("judge.") :]: v for k, v in given.items() if k.startswith("judge.")},
    )
    check_judge_runnable(judge, detect_judge=given.get("detect_judge"))
    overrides: dict[str, Any] = {k: given[k] for k in _RESCORE_SETTINGS if k in given}
    if "simulator.concurrency" in given:  # the examples in flight
        overrides["simulator"] = {"concurrency": given["simulator.concurrency"]}
    return rescore_run(run_dir, judge=judge, out=given.get("out"), **overrides)


eval_command.__doc__ = _HELP
