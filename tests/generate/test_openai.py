"""The ``openai:`` simulator against a scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from humanlm.errors import ConfigError, HumanlmError
from humanlm.llm.limits import RetryPolicy
from humanlm.simulate import GenerationSettings, build_sim_prompt, build_simulator, generate_all
from humanlm.simulate.openai_chat import to_chat_messages
from humanlm.testing import Reply, faults

FAST_RETRY = RetryPolicy(
    max_retries=2, timeout_s=3.0, request_timeout_s=1.0, backoff_s=0.01, backoff_max_s=0.02
)


def make(server, **settings):
    settings.setdefault("retry", FAST_RETRY)
    return build_simulator(
        f"openai:sim-model@{server.base_url}", settings=GenerationSettings(**settings)
    )


def test_chat_message_mapping():
    messages = [
        {"role": "system", "name": "system", "content": "persona and task"},  # system prompt
        {"role": "user", "name": "OP", "content": "my story"},  # another author
        {"role": "user", "name": "HUMAN", "content": "my own earlier comment"},  # the target
        {"role": "assistant", "name": "assistant", "content": "bot answer"},  # a chatbot turn
    ]
    assert to_chat_messages(messages) == [
        {"role": "system", "content": "persona and task"},
        {"role": "user", "content": "OP wrote:\nmy story"},
        {"role": "assistant", "content": "my own earlier comment"},
        {"role": "user", "content": "assistant wrote:\nbot answer"},
    ]


@pytest.mark.parametrize("thinking", [True, False])
def test_request_carries_protocol_settings(server, demo_examples, thinking):
    server.enqueue("<response>NTA.</response>")
    sim = make(server, max_new_tokens=77)
    (out,) = generate_all(sim, [build_sim_prompt(demo_examples[0], thinking=thinking)])
    assert out.text == "<response>NTA.</response>" and out.error is None
    body = server.chat_requests[0].body
    assert body["model"] == "sim-model"
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.4, 1.0, 77)
    assert body["stop"] == ["</response>"]
    assert body["chat_template_kwargs"] == {"enable_thinking": thinking}
    assert body["messages"][0]["role"] == "system"
    assert sim.ngram_ban == 0  # the chat API cannot ban n-grams; results record it


def test_closing_tag_cut_by_the_server_is_restored(server, demo_examples):
    server.enqueue("plan</think>\n\n<response>NTA, pay your share.")
    (out,) = generate_all(make(server), [build_sim_prompt(demo_examples[0], thinking=True)])
    assert out.text == "plan</think>\n\n<response>NTA, pay your share.</response>"


def test_separate_reasoning_becomes_a_think_block(server, demo_examples):
    body = {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "sim-model",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {
                    "role": "assistant",
                    "content": "<response>fine</response>",
                    "reasoning_content": "they want a verdict",
                },
            }
        ],
    }
    server.enqueue(Reply(body=json.dumps(body)))
    (out,) = generate_all(make(server), [build_sim_prompt(demo_examples[0], thinking=True)])
    assert out.text == "<think>\nthey want a verdict\n</think>\n\n<response>fine</response>"


def test_transport_failures_are_retried(server, demo_examples):
    server.enqueue(faults.server_error(), faults.rate_limited(0.01), "<response>ok</response>")
    (out,) = generate_all(make(server), [build_sim_prompt(demo_examples[0], thinking=False)])
    assert out.text == "<response>ok</response>"
    assert len(server.chat_requests) == 3


def test_failure_after_retries_is_a_failed_generation(server, demo_examples):
    server.reply_fn = lambda request: faults.server_error()
    sim = make(server)
    (out,) = generate_all(sim, [build_sim_prompt(demo_examples[0], thinking=False)])
    assert out.text is None and out.error == "transport_error"
    assert len(server.chat_requests) == 3  # first try + 2 retries
    assert sim.failures["transport_error"] == 1


def test_refused_credentials_stop_the_run(server, demo_examples):
    server.enqueue(Reply(status=401))
    with pytest.raises(HumanlmError, match="refused the credentials"):
        generate_all(make(server), [build_sim_prompt(demo_examples[0], thinking=False)])
    assert len(server.chat_requests) == 1  # not retried


def test_concurrency_bounds_requests_in_flight(server, demo_examples):
    server.latency_s = 0.2
    server.reply_fn = lambda request: "<response>x</response>"
    prompts = [build_sim_prompt(ex, thinking=False) for ex in demo_examples[:8]]
    started = time.monotonic()
    outs = generate_all(make(server, concurrency=2), prompts)
    assert all(o.text == "<response>x</response>" for o in outs)
    assert time.monotonic() - started >= 4 * 0.2  # 8 requests, 2 at a time


def test_waiting_for_a_slot_does_not_eat_the_deadline(server, demo_examples):
    server.latency_s = 0.2
    server.reply_fn = lambda request: "<response>x</response>"
    retry = RetryPolicy(max_retries=0, timeout_s=0.6, request_timeout_s=0.6)
    prompts = [build_sim_prompt(ex, thinking=False) for ex in demo_examples[:5]]
    outs = generate_all(make(server, concurrency=1, retry=retry), prompts)  # ~1 s in all
    assert [o.error for o in outs] == [None] * 5


def test_one_client_per_event_loop(server, demo_examples):
    server.reply_fn = lambda request: "<response>x</response>"
    sim = make(server)
    prompt = build_sim_prompt(demo_examples[0], thinking=False)
    for _ in range(2):  # a second asyncio.run must not reuse the first loop's connections
        assert asyncio.run(sim.generate([prompt]))[0].text == "<response>x</response>"


def test_public_api_needs_a_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        build_simulator("openai:gpt-4o-mini", settings=GenerationSettings())


@pytest.mark.parametrize("thinking", [True, False])
def test_completions_mode_sends_the_rendered_prompt(server, demo_examples, thinking):
    prompt = build_sim_prompt(demo_examples[0], thinking=thinking)
    server.enqueue(" plan</think>\n\n<response>NTA.")
    sim = build_simulator(
        f"openai:sim-model@{server.base_url}",
        settings=GenerationSettings(retry=FAST_RETRY, max_new_tokens=50),
        api="completions",
    )
    (out,) = generate_all(sim, [prompt])
    assert server.chat_requests == []
    (request,) = server.completion_requests
    assert request.path.endswith("/v1/completions") and request.body["prompt"] == prompt.text
    assert (
        request.body["add_special_tokens"] is False and "chat_template_kwargs" not in request.body
    )
    assert (request.body["max_tokens"], request.body["stop"]) == (50, ["</response>"])
    assert out.text == " plan</think>\n\n<response>NTA.</response>"  # the stop tag put back


def test_completions_mode_retries_like_the_chat_mode(server, demo_examples):
    server.enqueue(faults.server_error(), "<response>ok</response>")
    sim = build_simulator(
        f"openai:m@{server.base_url}",
        settings=GenerationSettings(retry=FAST_RETRY),
        api="completions",
    )
    (out,) = generate_all(sim, [build_sim_prompt(demo_examples[0], thinking=False)])
    assert out.text == "<response>ok</response>" and len(server.completion_requests) == 2


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_ngram_ban_is_requested_through_vllm_xargs_when_asked(server, demo_examples, api):
    server.enqueue("<response>a</response>", "<response>b</response>")
    prompt = build_sim_prompt(demo_examples[0], thinking=True)
    asked = build_simulator(
        f"openai:m@{server.base_url}",
        settings=GenerationSettings(retry=FAST_RETRY),
        api=api,
        ngram_xargs=True,
    )
    plain = build_simulator(
        f"openai:m@{server.base_url}", settings=GenerationSettings(retry=FAST_RETRY), api=api
    )
    generate_all(asked, [prompt])
    generate_all(plain, [prompt])
    first, second = server.requests
    assert first.body["vllm_xargs"] == {"no_repeat_ngram_size": 4, "ngram_ban_scope": "reply"}
    assert asked.ngram_ban == 4
    assert "vllm_xargs" not in second.body and plain.ngram_ban == 0


def test_unknown_api_is_a_config_error(server):
    with pytest.raises(ConfigError, match="simulator_api"):
        build_simulator(
            f"openai:m@{server.base_url}", settings=GenerationSettings(), api="responses"
        )


def test_hf_and_completions_mode_give_identical_prompt_ids_for_every_platform(
    server, tiny_model_dir, tmp_path
):
    from humanlm.data.prepare import load_prepared, run_prepare
    from humanlm.simulate.backends import HFSimulator
    from tests.data.samples import SAMPLE, sample_rows

    sample_rows()  # skips when the real rows are absent
    run_prepare(source=SAMPLE, dataset="auto", out_dir=tmp_path / "prepared")
    examples = load_prepared(tmp_path / "prepared" / "train.parquet")
    hf = HFSimulator(str(tiny_model_dir), settings=GenerationSettings())
    sim = build_simulator(
        f"openai:m@{server.base_url}",
        settings=GenerationSettings(retry=FAST_RETRY),
        api="completions",
    )
    by_platform = {}
    for example in examples:
        by_platform.setdefault(example["data_source"], example)
    assert set(by_platform) == {"amazon", "enron", "reddit", "wildchat", "youtube", "medium"}
    for thinking in (True, False):
        prompts = [build_sim_prompt(ex, thinking=thinking) for ex in by_platform.values()]
        server.enqueue(*["<response>x</response>"] * len(prompts))
        generate_all(sim, prompts)
        sent = {r.body["prompt"]: r.body for r in server.completion_requests[-len(prompts) :]}
        for prompt in prompts:
            body = sent[prompt.text]
            # What a server does with the body: tokenize the prompt string as told.
            served = hf.tokenizer(body["prompt"], add_special_tokens=body["add_special_tokens"])
            local = hf.encode([prompt.text])["input_ids"][0].tolist()
            assert served["input_ids"] == local
