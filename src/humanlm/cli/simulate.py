"""``humanlm simulate``: multi-turn conversations between a simulated user and an assistant."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from humanlm.cli.simulate_options import VLLMArgs
from humanlm.config import default_value
from humanlm.generate.protocol import GenerationSettings
from humanlm.states.modes import max_new_tokens_for

# The reply budget by default: the mode's (``Mode.max_new_tokens``).
_BUDGET_DEFAULT = (
    f"the mode's: {max_new_tokens_for(True)} with thinking, else {max_new_tokens_for(False)}"
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
    concurrency: Annotated[
        int, typer.Option(min=1, help="Conversations at once (requests in flight per model).")
    ] = default_value(GenerationSettings, "concurrency"),
    limit: Annotated[int | None, typer.Option(min=1, help="At most N scenarios.")] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            help="Training mode of a local user model.",
            show_default="the one saved with the model, else humanlm",
        ),
    ] = None,
    temperature: Annotated[
        float, typer.Option(min=0, help="User sampling temperature.")
    ] = default_value(GenerationSettings, "temperature"),
    max_new_tokens: Annotated[
        int | None,
        typer.Option(min=1, help="User reply budget.", show_default=_BUDGET_DEFAULT),
    ] = None,
    user_api_key_env: Annotated[
        str | None,
        typer.Option(
            help="Variable with the simulated user's endpoint key; none: a key-less server.",
            show_default="OPENAI_API_KEY",
        ),
    ] = None,
    assistant_api_key_env: Annotated[
        str | None,
        typer.Option(
            help="Variable with the assistant's key; none: a key-less server.",
            show_default="OPENAI_API_KEY",
        ),
    ] = None,
    vllm_arg: VLLMArgs = None,
) -> None:
    """Run conversations between a simulated user and an assistant; write them and a report.

    Writes OUT/conversations.jsonl (one line per scenario: id, messages, turns, end_reason,
    usage) and OUT/report.md + report.html. Rerunning the same command keeps finished
    conversations and sends nothing new for them.

    \b
    Examples:
      humanlm simulate --user hf:runs/demo/humanlm/model --assistant openai:gpt-4o-mini --scenarios scenarios.jsonl --out runs/sim
      humanlm simulate --user openai:sim@http://127.0.0.1:8000/v1 --assistant openai:my-bot@http://127.0.0.1:9000/v1 --data data/wildchat --dataset wildchat --limit 50 --max-turns 6 --out runs/sim-wildchat --assistant-api-key-env none
    """  # noqa: E501
    from humanlm.errors import ConfigError
    from humanlm.extras import require_spec_extra
    from humanlm.files import check_output_dir
    from humanlm.llm.specs import parse_spec, resolve_api_key
    from humanlm.lock import output_lock
    from humanlm.model.check import check_model_files
    from humanlm.simulate.assistant import Assistant
    from humanlm.simulate.conversation import run_simulate
    from humanlm.simulate.scenarios import load_scenarios, scenarios_from_prepared

    if (scenarios is None) == (data is None):
        raise ConfigError("give exactly one of --scenarios FILE.jsonl or --data DIR")
    check_model_files(user)  # a weight file cut short: one line, before any work
    require_spec_extra(user, needed_by="--user")
    resolve_api_key(
        parse_spec(user, role="simulated user"),
        user_api_key_env,
        role="simulated user",
        flag="--user-api-key-env",
    )
    # The assistant is an endpoint: its key is checked here, before the output folder exists.
    answerer = Assistant.from_spec(
        assistant, system=assistant_system, api_key_env=assistant_api_key_env
    )
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
                api_key_env=user_api_key_env,
                vllm_args=vllm_arg,
            ),
            assistant=answerer,
            out_dir=out,
            max_turns=max_turns,
            concurrency=concurrency,
            show_progress=True,
        )
    typer.echo(summary.describe())
