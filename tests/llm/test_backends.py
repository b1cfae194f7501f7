"""``OpenAIBackend`` against the scripted server: what it sends, how it reads odd replies, and
that no connection is left open however the caller's event loop ends."""

from __future__ import annotations

import asyncio
import json
import threading
from types import SimpleNamespace

import pytest

from humanlm.llm.backends import OpenAIBackend
from humanlm.llm.failures import TransportError, provider_message
from humanlm.llm.replies import read_usage
from humanlm.testing import Reply
from humanlm.train.run import _close_judge


def backend(server, **kw) -> OpenAIBackend:
    return OpenAIBackend("m", api_key="sk-test-SECRET", base_url=server.base_url, **kw)


def test_sends_the_body_with_params_and_extra_body_merged(server):
    server.enqueue("hello")
    chat = backend(server, params={"temperature": 0.0, "extra_body": {"top_k": 5}})

    async def go():
        try:
            return await chat.complete(
                [{"role": "user", "content": "hi"}], timeout_s=5, params={"max_tokens": 7}
            )
        finally:
            await chat.aclose()

    reply = asyncio.run(go())
    assert reply.text == "hello" and reply.finish_reason == "stop"
    (request,) = server.chat_requests
    assert request.body == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.0,
        "top_k": 5,
        "max_tokens": 7,
    }
    assert request.headers["authorization"] == "Bearer sk-test-SECRET"
    assert request.headers["content-type"] == "application/json"
    assert "SECRET" not in repr(chat)


@pytest.mark.parametrize(
    "reply",
    [Reply(body="not json"), Reply(body=json.dumps([1, 2]))],
    ids=["not-json", "json-array"],
)
def test_a_2xx_that_is_not_a_reply_object_is_a_server_error(server, reply):
    server.enqueue(reply)
    chat = backend(server)

    async def go():
        try:
            await chat.complete([{"role": "user", "content": "hi"}], timeout_s=5)
        finally:
            await chat.aclose()

    with pytest.raises(TransportError) as info:
        asyncio.run(go())
    assert info.value.kind == "server_error"


def test_retry_after_is_read_from_a_429(server):
    server.enqueue(Reply(status=429, headers={"Retry-After": "1.5"}))
    chat = backend(server)
    with pytest.raises(TransportError) as info:
        asyncio.run(chat.complete([{"role": "user", "content": "hi"}], timeout_s=5))
    assert (info.value.kind, info.value.retry_after, info.value.status) == (
        "rate_limited",
        1.5,
        429,
    )


def test_a_caller_that_never_closes_leaves_no_session_open(server):
    server.reply_fn = lambda request: "ok"
    chat = backend(server)
    sessions = []

    async def once():
        await chat.complete([{"role": "user", "content": "hi"}], timeout_s=5)
        sessions.append(await chat._session())

    for _ in range(2):  # no aclose: the loop's shutdown closes the session
        asyncio.run(once())
    first, second = sessions
    assert first is not second and first.closed and second.closed
    asyncio.run(once())
    assert len(chat._sessions) == 1  # entries of ended loops are dropped


def test_close_judge_closes_connections_on_the_trainer_loop(server, make_judge):
    """TRL runs an async reward on a loop in its own thread, which outlives ``train``."""
    server.reply_fn = lambda request: '{"key_points": [], "scores": {"1": {"score": 0.5}}}'
    judge = make_judge()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        verdict = asyncio.run_coroutine_threadsafe(
            judge.judge_group(
                context=[{"name": "OP", "content": "hi"}],
                ground_truth="yes",
                state="response",
                candidates=["y"],
            ),
            loop,
        ).result(timeout=10)
        assert verdict.scores == [0.5]
        (session, _closer) = judge.backend._sessions[loop]
        _close_judge(judge, SimpleNamespace(async_loop=loop))
        assert session.closed and loop not in judge.backend._sessions
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _ask(chat: OpenAIBackend):
    async def go():
        try:
            return await chat.complete([{"role": "user", "content": "hi"}], timeout_s=5)
        finally:
            await chat.aclose()

    return asyncio.run(go())


def test_http_proxy_and_no_proxy_apply_as_for_the_sdk(server, monkeypatch):
    server.reply_fn = lambda request: "ok"
    # The scripted server as the proxy: it sees the target's absolute URL.
    monkeypatch.setenv("HTTP_PROXY", server.base_url.removesuffix("/v1"))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    chat = OpenAIBackend("m", api_key="k", base_url="http://judge.example:8000/v1")
    assert _ask(chat).text == "ok"
    assert server.chat_requests[0].path == "http://judge.example:8000/v1/chat/completions"
    # A host NO_PROXY names is reached directly, not through the (dead) proxy.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert _ask(backend(server)).text == "ok"


def test_a_netrc_entry_does_not_clash_with_the_key(server, monkeypatch, tmp_path):
    server.reply_fn = lambda request: "ok"
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password elsewhere\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert _ask(backend(server)).text == "ok"
    assert server.chat_requests[0].headers["authorization"] == "Bearer sk-test-SECRET"


def test_the_key_never_reaches_a_proxy(server, monkeypatch):
    import socket

    # An HTTPS proxy that records what it is sent (the CONNECT) and closes.
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    seen = []

    def accept_once():
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            seen.append(conn.recv(65536))

    thread = threading.Thread(target=accept_once, daemon=True)
    thread.start()
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{listener.getsockname()[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    chat = OpenAIBackend("m", api_key="sk-test-SECRET", base_url="https://judge.example/v1")
    with pytest.raises(TransportError):
        _ask(chat)
    thread.join(10)
    listener.close()
    (connect,) = seen
    assert connect.startswith(b"CONNECT judge.example:443") and b"SECRET" not in connect
    # Through a plain-HTTP proxy the target's header goes along, but no Proxy-Authorization.
    server.reply_fn = lambda request: "ok"
    monkeypatch.setenv("HTTP_PROXY", server.base_url.removesuffix("/v1"))
    _ask(OpenAIBackend("m", api_key="sk-test-SECRET", base_url="http://judge.example/v1"))
    assert "proxy-authorization" not in server.chat_requests[0].headers


def test_a_reasoning_model_gets_the_fields_its_api_takes(server):
    # issue 21: gpt-5-mini refuses max_tokens and any temperature but 1 (the server applies
    # OpenAI's rules for such names); per-request fields are fitted as well.
    server.reply_fn = lambda request: "ok"
    params = {"temperature": 1.0, "max_tokens": 4096}
    chat = OpenAIBackend("gpt-5-mini", api_key="k", base_url=server.base_url, params=params)

    async def go():
        try:
            first = await chat.complete([{"role": "user", "content": "hi"}], timeout_s=5)
            second = await chat.complete(
                [{"role": "user", "content": "hi"}],
                timeout_s=5,
                params={"max_tokens": 7, "temperature": 0.0},
            )
            return first, second
        finally:
            await chat.aclose()

    assert [reply.text for reply in asyncio.run(go())] == ["ok", "ok"]
    first, second = (r.body for r in server.chat_requests)
    assert server.refused == 0
    assert first["max_completion_tokens"] == 4096 and first["temperature"] == 1.0
    assert second["max_completion_tokens"] == 7 and second["temperature"] == 1.0
    assert "max_tokens" not in first and "max_tokens" not in second


def test_a_refused_request_carries_the_providers_message_without_the_key(server):
    # issue 21: a 400 is not retried and must say why; OpenAI's body names the field.
    body = {
        "error": {
            "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead. (key sk-test-SECRET, sk-proj-abcdefghijkl)",
            "type": "invalid_request_error",
            "param": "max_tokens",
            "code": "unsupported_parameter",
        }
    }
    server.enqueue(Reply(status=400, body=json.dumps(body)))
    with pytest.raises(TransportError) as info:
        _ask(backend(server))
    error = info.value
    assert (error.kind, error.status, error.param) == ("rejected", 400, "max_tokens")
    assert not error.is_retryable
    assert "Use 'max_completion_tokens' instead" in error.detail
    assert "SECRET" not in str(error) and "abcdefghijkl" not in str(error)
    assert "Use 'max_completion_tokens' instead" in str(error)


@pytest.mark.parametrize(
    ("body", "message", "param"),
    [
        (b'{"error": {"message": "bad  value", "param": "top_p"}}', "bad value", "top_p"),  # bytes
        ({"message": "no such field", "param": None}, "no such field", None),  # the SDK's body
        ("plain text refusal", "plain text refusal", None),  # litellm's message
        (b"<html>oops</html>", "<html>oops</html>", None),  # not JSON
        ({"error": {"code": "x"}}, None, None),  # no message
        (None, None, None),
        ("Bearer abc.def: refused", "[redacted] refused", None),
    ],
)
def test_provider_message_reads_error_bodies(body, message, param):
    assert provider_message(body) == (message, param)


def test_provider_message_is_cut_short():
    text, _ = provider_message({"error": {"message": "x" * 1000}})
    assert text is not None and len(text) == 300 and text.endswith("...")


@pytest.mark.parametrize(
    ("usage", "counts"),
    [
        (None, (0, 0)),  # not reported
        ({"prompt_tokens": 12, "completion_tokens": 3}, (12, 3)),
        ({"prompt_tokens": 12.0, "completion_tokens": 3}, (12, 3)),  # an integral float
        ({"prompt_tokens": 12}, (12, 0)),  # a count left out
        # issue 24: counts that are not non-negative integers make the usage unknown
        ({"prompt_tokens": -1_500_000_000_000, "completion_tokens": 3}, None),
        ({"prompt_tokens": 12, "completion_tokens": 2.5}, None),
        ({"prompt_tokens": "12", "completion_tokens": 3}, None),
        ({"prompt_tokens": True, "completion_tokens": 3}, None),
        ({"prompt_tokens": float("nan"), "completion_tokens": 3}, None),
        ({"prompt_tokens": 10**15, "completion_tokens": 3}, None),  # beyond any model
        ({"prompt_tokens": {"cached": 1}, "completion_tokens": 3}, None),
        ("12", None),
        (SimpleNamespace(prompt_tokens=7, completion_tokens=2), (7, 2)),  # an SDK object
        (SimpleNamespace(prompt_tokens=-7, completion_tokens=2), None),
    ],
)
def test_read_usage_takes_only_non_negative_integer_counts(usage, counts):
    assert read_usage(usage) == counts


def test_a_reply_with_invalid_usage_is_kept_with_its_usage_unknown(server):
    # issue 24: a text count raised inside the client and the reply was lost.
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": "hi"},
        "finish_reason": "stop",
    }
    usage = {"prompt_tokens": "many", "completion_tokens": -4}
    server.enqueue(Reply(body=json.dumps({"choices": [choice], "usage": usage})))
    chat = backend(server)

    async def go():
        try:
            return await chat.complete([{"role": "user", "content": "hi"}], timeout_s=5)
        finally:
            await chat.aclose()

    reply = asyncio.run(go())
    assert (reply.text, reply.usage_valid, reply.input_tokens, reply.output_tokens) == (
        "hi",
        False,
        0,
        0,
    )


def _client(server):
    from humanlm.llm.client import ChatClient
    from humanlm.llm.limits import RetryPolicy

    retry = RetryPolicy(timeout_s=5, request_timeout_s=5, backoff_s=0.01, backoff_max_s=0.02)
    return ChatClient(backend(server), name="t", retry=retry)


def test_a_text_request_sends_every_generation_field_and_reads_every_choice(server):
    choices = [
        {"index": 0, "text": "first", "logprobs": None, "finish_reason": "stop"},
        {"index": 1, "text": "second", "logprobs": None, "finish_reason": "length"},
    ]
    usage = {"prompt_tokens": 5, "completion_tokens": 9}
    server.enqueue(Reply(body=json.dumps({"choices": choices, "usage": usage})))
    client = _client(server)
    params = {
        "max_tokens": 16,
        "temperature": 0.7,
        "top_p": 0.9,
        "stop": ["</r>"],
        "seed": 3,
        "n": 2,
        "extra_body": {"vllm_xargs": {"ngram": 3}, "add_special_tokens": False},
    }

    async def go():
        try:
            return await client.ask_text("<s>persona", params=params)
        finally:
            await client.aclose()

    answer = asyncio.run(go())
    reply = answer.completion
    assert answer.ok and answer.value == "first"
    assert [(c.text, c.finish_reason) for c in reply.choices] == [
        ("first", "stop"),
        ("second", "length"),
    ]
    assert (reply.input_tokens, reply.output_tokens) == (5, 9)
    assert client.ledger.output_tokens == 9
    (request,) = server.completion_requests
    assert request.body == {
        "model": "m",
        "prompt": "<s>persona",
        "max_tokens": 16,
        "temperature": 0.7,
        "top_p": 0.9,
        "stop": ["</r>"],
        "seed": 3,
        "n": 2,
        "vllm_xargs": {"ngram": 3},
        "add_special_tokens": False,
    }


def test_a_chat_reply_keeps_the_fields_a_server_adds_to_each_choice(server):
    extra = {"states": {"stance": "for"}, "ended": False}
    choices = [
        {
            "index": i,
            "message": {"role": "assistant", "content": f"reply {i}"},
            "finish_reason": "stop",
            "humanlm": {**extra, "raw": f"raw {i}"},
        }
        for i in range(2)
    ]
    server.enqueue(Reply(body=json.dumps({"choices": choices, "usage": {"completion_tokens": 4}})))
    client = _client(server)

    async def go():
        try:
            return await client.ask([{"role": "user", "content": "hi"}], params={"n": 2})
        finally:
            await client.aclose()

    reply = asyncio.run(go()).completion
    assert [c.text for c in reply.choices] == ["reply 0", "reply 1"]
    assert [c.extra for c in reply.choices] == [
        {"humanlm": {**extra, "raw": "raw 0"}},
        {"humanlm": {**extra, "raw": "raw 1"}},
    ]
    assert reply.output_tokens == 4 and server.chat_requests[0].body["n"] == 2


def test_a_reply_without_choices_is_an_empty_text(server):
    server.enqueue(Reply(body=json.dumps({"choices": []})))
    client = _client(server)
    answer = asyncio.run(client.ask([{"role": "user", "content": "hi"}]))
    assert answer.ok and answer.value == "" and answer.completion.choices == ()
