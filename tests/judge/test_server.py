"""The scripted OpenAI-compatible server itself (reused by other test suites)."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from humanlm.testing import Reply, ScriptedServer, faults


def chat(server: ScriptedServer, content: str = "hi", **kw) -> httpx.Response:
    body = {"model": "m", "messages": [{"role": "user", "content": content}]}
    return httpx.post(
        f"{server.base_url}/chat/completions", json=body, timeout=kw.get("timeout", 5)
    )


def test_queue_then_reply_function_then_500() -> None:
    with ScriptedServer(["first"], reply_fn=None) as server:
        server.enqueue(Reply(content="second", usage=(7, 3)))
        client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        one = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "q" * 40}]
        )
        two = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "q"}])
        assert one.choices[0].message.content == "first" and one.usage.prompt_tokens == 10
        assert two.usage.prompt_tokens == 7 and two.usage.completion_tokens == 3
        assert chat(server).status_code == 500
        server.reply_fn = lambda request: f"echo {request.prompt}"
        assert chat(server, "ping").json()["choices"][0]["message"]["content"] == "echo ping"
        assert len(server.chat_requests) == 4 and server.chat_requests[0].model == "m"
        assert server.pending == 0


def test_error_replies_and_headers() -> None:
    with ScriptedServer([faults.rate_limited(1.5), faults.server_error(502)]) as server:
        limited = chat(server)
        assert limited.status_code == 429 and limited.headers["retry-after"] == "1.5"
        assert "error" in limited.json()
        assert chat(server).status_code == 502
        assert httpx.get(f"{server.base_url}/models").json()["data"][0]["id"] == "scripted"
        assert httpx.post(f"{server.base_url}/embeddings", json={}).status_code == 404


def test_hang_times_out_the_client_and_stop_releases_it() -> None:
    server = ScriptedServer([faults.hang(30.0)]).start()
    with pytest.raises(httpx.TimeoutException):
        chat(server, timeout=0.2)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2.0


def test_latency_and_seeded_faults_are_reproducible() -> None:
    def statuses(seed: int) -> list[int]:
        with ScriptedServer(
            reply_fn=lambda r: "ok", fault_rate=0.5, faults=[faults.server_error], seed=seed
        ) as server:
            return [chat(server).status_code for _ in range(20)]

    assert statuses(1) == statuses(1) and 200 in statuses(1) and 500 in statuses(1)
    with ScriptedServer(reply_fn=lambda r: "ok", latency_s=0.2) as server:
        started = time.monotonic()
        chat(server)
        assert time.monotonic() - started >= 0.2


def test_content_faults() -> None:
    with ScriptedServer(
        [faults.empty(), faults.null_content(), faults.truncated('{"a": [1, 2]}')]
    ) as server:
        contents = [chat(server).json()["choices"][0]["message"]["content"] for _ in range(3)]
        assert contents[:2] == ["", None]
        with pytest.raises(json.JSONDecodeError):
            json.loads(contents[2])
    with ScriptedServer([faults.disconnect()]) as server:
        with pytest.raises(httpx.HTTPError):
            chat(server)


# issue 21: the stand-in refuses what OpenAI refuses for its reasoning models, so a test that
# asks such a model for a field its API does not take fails as a real run would.
REFUSED = [
    ({"model": "gpt-5-mini", "max_tokens": 4096}, "max_tokens", "unsupported_parameter"),
    ({"model": "o3-mini", "temperature": 0.0}, "temperature", "unsupported_value"),
    ({"model": "gpt-5", "top_p": 0.9}, "top_p", "unsupported_value"),
    ({"model": "o4-mini", "presence_penalty": 0.5}, "presence_penalty", "unsupported_value"),
    ({"model": "gpt-5-nano", "logprobs": True}, "logprobs", "unsupported_parameter"),
    ({"model": "o1", "logit_bias": {"50256": -100}}, "logit_bias", "unsupported_parameter"),
]
TAKEN = [
    {"model": "gpt-5-mini", "max_completion_tokens": 4096, "temperature": 1},  # the fitted judge
    {"model": "gpt-5-mini", "top_p": 1.0, "frequency_penalty": 0},  # the only allowed values
    {"model": "gpt-4.1-mini", "max_tokens": 4096, "temperature": 0.0},  # not a reasoning model
    {"model": "gpt-5-chat-latest", "temperature": 0.2},
]


def _post(server: ScriptedServer, fields: dict) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": "hi"}], **fields}
    return httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=5)


@pytest.mark.parametrize(("fields", "param", "code"), REFUSED)
def test_openai_reasoning_models_refuse_what_openai_refuses(fields, param, code) -> None:
    with ScriptedServer(["scripted"]) as server:
        answer = _post(server, fields)
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert (error["param"], error["code"], error["type"]) == (
            param,
            code,
            "invalid_request_error",
        )
        assert f"'{param}'" in error["message"]
        assert server.refused == 1 and len(server.chat_requests) == 1
        assert server.pending == 1  # the scripted reply is kept for the next request
        with ScriptedServer(["scripted"], openai_rules=False) as lenient:
            assert _post(lenient, fields).status_code == 200


@pytest.mark.parametrize("fields", TAKEN)
def test_fields_a_model_takes_are_answered(fields) -> None:
    with ScriptedServer(["scripted"]) as server:
        assert _post(server, fields).status_code == 200 and server.refused == 0


def test_the_sdk_reads_the_refusal_as_openai_sends_it() -> None:
    with ScriptedServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(
                model="gpt-5-mini", messages=[{"role": "user", "content": "q"}], max_tokens=10
            )
    assert info.value.status_code == 400 and info.value.param == "max_tokens"
    assert "max_completion_tokens" in info.value.message
