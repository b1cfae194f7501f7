"""The ``openai:`` generator against a scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from humanlm.errors import ConfigError, HumanlmError
from humanlm.generate import (
    GenerationSettings,
    HFGenerator,
    build_generator,
    build_sim_prompt,
    generate_all,
)
from humanlm.generate.openai import to_chat_messages
from humanlm.llm.limits import RetryPolicy
from humanlm.testing import Reply, faults

FAST_RETRY = RetryPolicy(
    max_retries=2, timeout_s=3.0, request_timeout_s=1.0, backoff_s=0.01, backoff_max_s=0.02
)


def make(server, *, api="chat", ngram_xargs=False, **client):
    client.setdefault("retry", FAST_RETRY)
    return build_generator(
        f"openai:sim-model@{server.base_url}",
        settings=GenerationSettings(**client),
        api=api,
        ngram_xargs=ngram_xargs,
    )


def run(generator, prompts, **settings):
    return generate_all(generator, prompts, GenerationSettings(**settings))


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
    sim = make(server)
    (out,) = run(sim, [build_sim_prompt(demo_examples[0], thinking=thinking)], max_new_tokens=77)
    assert out.text == "<response>NTA.</response>" and out.error is None
    body = server.chat_requests[0].body
    assert body["model"] == "sim-model"
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.4, 1.0, 77)
    assert body["stop"] == ["</response>"]
    assert body["chat_template_kwargs"] == {"enable_thinking": thinking}
    assert body["messages"][0]["role"] == "system"
    assert not sim.applies_ngram_ban  # the chat API cannot ban n-grams; results record it


def test_closing_tag_cut_by_the_server_is_restored(server, demo_examples):
    server.enqueue("plan</think>\n\n<response>NTA, pay your share.")
    (out,) = run(make(server), [build_sim_prompt(demo_examples[0], thinking=True)])
    assert out.text == "plan</think>\n\n<response>NTA, pay your share.</response>"


def test_text_past_the_stop_string_is_cut(server, demo_examples):
    # A server that ignores ``stop`` is read as hf: and vllm: stop: at the closing tag.
    server.enqueue("<response>NTA.</response> and more")
    (out,) = run(make(server), [build_sim_prompt(demo_examples[0], thinking=False)])
    assert out.text == "<response>NTA.</response>"


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
    (out,) = run(make(server), [build_sim_prompt(demo_examples[0], thinking=True)])
    assert out.text == "<think>\nthey want a verdict\n</think>\n\n<response>fine</response>"


def test_transport_failures_are_retried(server, demo_examples):
    server.enqueue(faults.server_error(), faults.rate_limited(0.01), "<response>ok</response>")
    (out,) = run(make(server), [build_sim_prompt(demo_examples[0], thinking=False)])
    assert out.text == "<response>ok</response>"
    assert len(server.chat_requests) == 3


def test_failure_after_retries_is_a_failed_generation(server, demo_examples):
    server.reply_fn = lambda request: faults.server_error()
    sim = make(server)
    (out,) = run(sim, [build_sim_prompt(demo_examples[0], thinking=False)])
    assert out.text is None and out.error == "transport_error"
    assert len(server.chat_requests) == 3  # first try + 2 retries
    assert sim.client.ledger.calls == 3


def test_refused_credentials_stop_the_run(server, demo_examples):
    server.enqueue(Reply(status=401))
    with pytest.raises(HumanlmError, match="refused the credentials"):
        run(make(server), [build_sim_prompt(demo_examples[0], thinking=False)])
    assert len(server.chat_requests) == 1  # not retried


def test_concurrency_bounds_requests_in_flight(server, demo_examples):
    server.latency_s = 0.2
    server.reply_fn = lambda request: "<response>x</response>"
    prompts = [build_sim_prompt(ex, thinking=False) for ex in demo_examples[:8]]
    started = time.monotonic()
    outs = run(make(server, concurrency=2), prompts)
    assert all(o.text == "<response>x</response>" for o in outs)
    assert time.monotonic() - started >= 4 * 0.2  # 8 requests, 2 at a time


def test_calls_with_other_settings_share_one_client(server, demo_examples):
    # issue 22: one client per endpoint for a whole run, whatever each call's settings: one
    # concurrency bound and one ledger.
    server.latency_s = 0.2
    server.reply_fn = lambda request: "<response>x</response>"
    sim = make(server, concurrency=2)
    prompts = [build_sim_prompt(ex, thinking=False) for ex in demo_examples[:4]]

    async def both() -> None:
        cold, hot = GenerationSettings(temperature=0.1), GenerationSettings(temperature=0.9)
        await asyncio.gather(sim.generate(prompts, cold), sim.generate(prompts, hot))
        await sim.aclose()

    started = time.monotonic()
    asyncio.run(both())
    assert time.monotonic() - started >= 4 * 0.2  # 8 requests, 2 at a time over both calls
    assert sim.client.ledger.calls == 8
    assert sorted({r.body["temperature"] for r in server.chat_requests}) == [0.1, 0.9]


def test_waiting_for_a_slot_does_not_eat_the_deadline(server, demo_examples):
    server.latency_s = 0.2
    server.reply_fn = lambda request: "<response>x</response>"
    retry = RetryPolicy(max_retries=0, timeout_s=0.6, request_timeout_s=0.6)
    prompts = [build_sim_prompt(ex, thinking=False) for ex in demo_examples[:5]]
    outs = run(make(server, concurrency=1, retry=retry), prompts)  # ~1 s in all
    assert [o.error for o in outs] == [None] * 5


def test_one_client_per_event_loop(server, demo_examples):
    server.reply_fn = lambda request: "<response>x</response>"
    sim = make(server)
    prompt = build_sim_prompt(demo_examples[0], thinking=False)
    settings = GenerationSettings()
    for _ in range(2):  # a second asyncio.run must not reuse the first loop's connections
        assert asyncio.run(sim.generate([prompt], settings))[0].text == "<response>x</response>"


def test_public_api_needs_a_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        build_generator("openai:gpt-4o-mini")


@pytest.mark.parametrize("thinking", [True, False])
def test_completions_mode_sends_the_rendered_prompt(server, demo_examples, thinking):
    prompt = build_sim_prompt(demo_examples[0], thinking=thinking)
    server.enqueue(" plan</think>\n\n<response>NTA.")
    sim = make(server, api="completions")
    (out,) = run(sim, [prompt], max_new_tokens=50)
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
    sim = make(server, api="completions")
    (out,) = run(sim, [build_sim_prompt(demo_examples[0], thinking=False)])
    assert out.text == "<response>ok</response>" and len(server.completion_requests) == 2


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_ngram_ban_is_requested_through_vllm_xargs_when_asked(server, demo_examples, api):
    server.enqueue("<response>a</response>", "<response>b</response>")
    prompt = build_sim_prompt(demo_examples[0], thinking=True)
    asked = make(server, api=api, ngram_xargs=True)
    plain = make(server, api=api)
    run(asked, [prompt])
    run(plain, [prompt])
    first, second = server.requests
    assert first.body["vllm_xargs"] == {"no_repeat_ngram_size": 4, "ngram_ban_scope": "reply"}
    assert asked.applies_ngram_ban
    assert "vllm_xargs" not in second.body and not plain.applies_ngram_ban


def test_unknown_api_is_a_config_error(server):
    with pytest.raises(ConfigError, match="simulator.api"):
        build_generator(f"openai:m@{server.base_url}", api="responses")


def test_hf_and_completions_mode_give_identical_prompt_ids_for_every_platform(
    server, tiny_model_dir, tmp_path
):
    from humanlm.data.prepare import load_prepared, run_prepare
    from tests.data.samples import SAMPLE, sample_rows

    sample_rows()  # skips when the real rows are absent
    run_prepare(source=SAMPLE, dataset="auto", out_dir=tmp_path / "prepared")
    examples = load_prepared(tmp_path / "prepared" / "train.parquet")
    hf = HFGenerator(str(tiny_model_dir))
    sim = make(server, api="completions")
    by_platform = {}
    for example in examples:
        by_platform.setdefault(example["data_source"], example)
    assert set(by_platform) == {"amazon", "enron", "reddit", "wildchat", "youtube", "medium"}
    for thinking in (True, False):
        prompts = [build_sim_prompt(ex, thinking=thinking) for ex in by_platform.values()]
        server.enqueue(*["<response>x</response>"] * len(prompts))
        run(sim, prompts)
        sent = {r.body["prompt"]: r.body for r in server.completion_requests[-len(prompts) :]}
        for prompt in prompts:
            body = sent[prompt.text]
            # What a server does with the body: tokenize the prompt string as told.
            served = hf.tokenizer(body["prompt"], add_special_tokens=body["add_special_tokens"])
            local = hf.encode([prompt.text])["input_ids"][0].tolist()
            assert served["input_ids"] == local
