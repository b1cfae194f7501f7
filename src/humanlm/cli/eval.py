"""``humanlm eval``: score a user simulator on a Humanual split with the paper's protocol.

Settings come from ``--config FILE.yaml`` (the keys of ``humanlm.eval.EvalConfig``, the judge
as the same ``judge:`` block training uses), then the flags, then ``KEY=VALUE`` overrides; every
setting left out takes the protocol default. The resolved settings are printed before the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from humanlm.config import default_help
from humanlm.eval.config import EvalConfig, paper_eval_judge
from humanlm.states.modes import max_new_tokens_for

__all__ = ["eval_command"]

_HELP = """Evaluate a simulator: generate one reply per example and score it with the judge.

Protocol defaults (paper): response prompt only (prompt and thinking from the training mode saved with a humanlm model or checkpoint, else thinking on), temperature {temperature}, one sample, no-repeat {ngram}-gram ban, {think_tokens} new tokens with thinking ({plain_tokens} without), the first 2,000 test rows (5,000 for reddit) whose prompt fits the dataset's token limit, judge {judge} at temperature {judge_temperature:g}. Metrics: response alignment, state alignment (six states), embedding similarity (MiniLM), valid-format rate; run scores are means x 100 with bootstrap 95% intervals. Re-running the same command resumes.

Settings: --config FILE.yaml (keys of EvalConfig; the judge: block as in training, the simulator: block for how the simulator is reached), then the flags, then KEY=VALUE overrides.

\b
Examples:
  humanlm eval --model hf:runs/x/model --data demo --limit 8 --judge embedding:minilm
  humanlm eval --config eval.yaml model=hf:runs/x/model judge.temperature=0.2 limit=100
  humanlm eval --model openai:Qwen/Qwen3-8B@http://127.0.0.1:8000/v1 --data data/reddit --dataset reddit --api-key-env ANTHROPIC_API_KEY
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


def _default(name: str) -> str:
    """``(default: X)`` read from the ``EvalConfig`` field (dotted names reach into a block)."""
    return default_help(EvalConfig, name)


# flag name -> the EvalConfig key it sets, where the two differ
_FLAG_KEYS: dict[str, str] = {
    "judge": "judge.spec",
    "judge_temperature": "judge.temperature",
    "judge_max_tokens": "judge.max_tokens",
    "judge_timeout": "judge.timeout_s",
    "judge_max_retries": "judge.max_retries",
    "judge_concurrency": "judge.concurrency",
    "api_key_env": "judge.api_key_env",
    "cache_file": "judge.cache",
    "simulator_api": "simulator.api",
    "simulator_api_key_env": "simulator.api_key_env",
    "simulator_timeout": "simulator.timeout_s",
    "simulator_max_retries": "simulator.max_retries",
    "simulator_concurrency": "simulator.concurrency",
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
        Opt("--simulator-api", help=f"openai: chat or completions {_default('simulator.api')}."),
    ] = None,
    tokenizer: Annotated[
        str | None,
        Opt("--tokenizer", help="Tokenizer of the prompt-length filter (default: the model's)."),
    ] = None,
    temperature: Annotated[float | None, Opt("--temperature", help=_default("temperature"))] = None,
    top_p: Annotated[float | None, Opt("--top-p", help=_default("top_p"))] = None,
    max_new_tokens: Annotated[
        int | None,
        Opt(
            "--max-new-tokens",
            help=f"(default: {max_new_tokens_for(True)} with thinking, "
            f"{max_new_tokens_for(False)} without)",
        ),
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
    simulator_concurrency: Annotated[
        int | None,
        Opt(
            "--simulator-concurrency",
            min=1,
            help=f"Simulator requests (and examples) in flight {_default('simulator.concurrency')}.",
        ),
    ] = None,
    judge_concurrency: Annotated[
        int | None,
        Opt(
            "--judge-concurrency",
            min=1,
            help=f"Judge calls in flight {_default('judge.concurrency')}.",
        ),
    ] = None,
    aspects: Annotated[bool | None, Opt("--aspects/--no-aspects", help=_default("aspects"))] = None,
    embedding: Annotated[
        bool | None, Opt("--embedding/--no-embedding", help=_default("embedding"))
    ] = None,
    no_cache: Annotated[bool, Opt("--no-cache", help="No judge cache.")] = False,
    cache_file: Annotated[
        Path | None, Opt("--cache", help="Judge cache file (default: in the run folder).")
    ] = None,
    simulator_timeout: Annotated[
        float | None,
        Opt(
            "--simulator-timeout",
            help=f"Per simulator request, retries included, s {_default('simulator.timeout_s')}.",
        ),
    ] = None,
    simulator_max_retries: Annotated[
        int | None,
        Opt("--simulator-max-retries", min=0, help=_default("simulator.max_retries")),
    ] = None,
    judge_timeout: Annotated[
        float | None,
        Opt(
            "--judge-timeout",
            help=f"Per judge call, retries included, s {_default('judge.timeout_s')}.",
        ),
    ] = None,
    judge_max_retries: Annotated[
        int | None, Opt("--judge-max-retries", min=0, help=_default("judge.max_retries"))
    ] = None,
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
    from humanlm.eval import run_eval
    from humanlm.eval.config import read_saved_mode

    for key in ("overrides", "config", "no_cache", "rescore", "allow_unscored"):
        del flags[key]
    given: dict[str, Any] = {}
    for flag, value in flags.items():
        if value is None:
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
    from humanlm.eval.rescore import rescore_run

    if "judge.spec" not in given:
        raise ConfigError("--rescore needs --judge SPEC (the judge to score the saved replies)")
    judge = dataclasses.replace(
        paper_eval_judge(given["judge.spec"]),
        **{k[len("judge.") :]: v for k, v in given.items() if k.startswith("judge.")},
    )
    overrides: dict[str, Any] = {k: given[k] for k in _RESCORE_SETTINGS if k in given}
    if "simulator.concurrency" in given:  # the examples in flight
        overrides["simulator"] = {"concurrency": given["simulator.concurrency"]}
    return rescore_run(run_dir, judge=judge, out=given.get("out"), **overrides)


eval_command.__doc__ = _HELP
