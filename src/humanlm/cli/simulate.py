"""``humanlm simulate``: multi-turn conversations between a simulated user and an assistant."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from humanlm.cli.simulate_options import VLLMArgs
from humanlm.states.modes import max_new_tokens_for

# The reply budget by default: the mode's (``Mode.max_new_tokens``).
_BUDGET_HELP = (
    f"User reply budget (default: the mode's, {max_new_tokens_for(True)} with thinking, "
    f"else {max_new_tokens_for(False)})."
)


def _build_user(
    spec: str,
    *,
    mode: str | None,
    temperature: float,
    max_new_tokens: int | None,
    api_key_env: str | None,
    vllm_args: list[str] | None = None,
) -> Any:
    from humanlm.generate import BatchingGenerator, GenerationSettings, VLLMSettings
    from humanlm.simulate.user import UserSimulator, resolve_mode
    from humanlm.states import get_mode

    mode = resolve_mode(spec, mode)
    budget = max_new_tokens or get_mode(mode).max_new_tokens
    settings = GenerationSettings(temperature=temperature, max_new_tokens=budget)
    vllm = VLLMSettings.from_pairs(vllm_args)
    user = UserSimulator.from_spec(
        spec, mode=mode, settings=settings, api_key_env=api_key_env, vllm=vllm
    )
    if spec.startswith("hf:"):
        # Concurrent conversations share one generate call per batch.
        user.generator = BatchingGenerator(user.generator)
    return user


def simulate(
    user: Annotated[
        str,
        typer.Option(
            help="The simulated user: hf:PATH, vllm:PATH or openai:MODEL[@BASE_URL] (a humanlm "
            "serve URL, or any chat model playing the user)."
        ),
    ],
    assistant: Annotated[
        str, typer.Option(help="The assistant under test: openai:MODEL[@BASE_URL].")
    ],
    out: Annotated[Path, typer.Option(help="Output folder (conversations.jsonl, report).")],
    scenarios: Annotated[
        Path | None, typer.Option(help="Scenarios JSONL: id, persona, goal?, messages?.")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="A prepared data folder (or .parquet file) of chat rows.")
    ] = None,
    dataset: Annotated[
        str, typer.Option(help="With --data: the dataset id of the rows to use.")
    ] = "wildchat",
    split: Annotated[str, typer.Option(help="With --data: the split file to read.")] = "test",
    max_turns: Annotated[int, typer.Option(min=1, help="Most simulated user turns.")] = 8,
    assistant_system: Annotated[
        str | None, typer.Option(help="System message for the assistant.")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Conversations at once.")] = 8,
    limit: Annotated[int | None, typer.Option(min=1, help="At most N scenarios.")] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            help="Training mode of a local user model (default: the one saved with the model, "
            "else humanlm)."
        ),
    ] = None,
    temperature: Annotated[float, typer.Option(min=0, help="User sampling temperature.")] = 0.4,
    max_new_tokens: Annotated[
        int | None,
        typer.Option(min=1, help=_BUDGET_HELP),
    ] = None,
    user_key_env: Annotated[
        str | None, typer.Option(help="Variable with the simulated user's endpoint key.")
    ] = None,
    assistant_key_env: Annotated[
        str | None, typer.Option(help="Variable with the assistant's key (default OPENAI_API_KEY).")
    ] = None,
    vllm_arg: VLLMArgs = None,
) -> None:
    """Run conversations between a simulated user and an assistant; write them and a report.

    Writes OUT/conversations.jsonl (one line per scenario: id, messages, turns, end_reason,
    usage) and OUT/report.md + report.html. Rerunning the same command keeps finished
    conversations and sends nothing new for them.

    Examples:

        humanlm simulate --user hf:runs/demo/humanlm/model --assistant openai:gpt-4o-mini --scenarios scenarios.jsonl --out runs/sim

        humanlm simulate --user openai:sim@http://127.0.0.1:8000/v1 --assistant openai:my-bot@http://127.0.0.1:9000/v1 --data data/wildchat --dataset wildchat --limit 50 --max-turns 6 --out runs/sim-wildchat
    """
    from humanlm.errors import ConfigError
    from humanlm.files import check_output_dir
    from humanlm.lock import output_lock
    from humanlm.model.check import check_model_files
    from humanlm.simulate.assistant import Assistant
    from humanlm.simulate.conversation import run_simulate
    from humanlm.simulate.scenarios import load_scenarios, scenarios_from_prepared

    if (scenarios is None) == (data is None):
        raise ConfigError("give exactly one of --scenarios FILE.jsonl or --data DIR")
    check_model_files(user)  # a weight file cut short: one line, before any work
    if scenarios is not None:
        chosen = load_scenarios(scenarios)[:limit]
    else:
        assert data is not None
        path = data if data.suffix == ".parquet" else data / f"{split}.parquet"
        chosen = scenarios_from_prepared(path, dataset=dataset, limit=limit)
    check_output_dir(out, what="simulate --out")
    with output_lock(out, command="simulate"):  # before the models load
        summary = run_simulate(
            scenarios=chosen,
            user=_build_user(
                user,
                mode=mode,
                temperature=temperature,
                max_new_tokens=max_new_tokens,
                api_key_env=user_key_env,
                vllm_args=vllm_arg,
            ),
            assistant=Assistant.from_spec(
                assistant, system=assistant_system, api_key_env=assistant_key_env
            ),
            out_dir=out,
            max_turns=max_turns,
            concurrency=concurrency,
            show_progress=True,
        )
    typer.echo(summary.describe())
