"""``humanlm serve`` against the unmodified openai SDK: sync, async, streaming, errors."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest

from tests.serve.conftest import RunningServer

PERSONA = "A retired teacher who writes short, polite messages."
CHAT = [
    {"role": "system", "content": PERSONA},
    {"role": "user", "content": "Can you help me plan a garden?"},
    {"role": "assistant", "content": "Of course! What would you like to grow?"},
]


def _client(served: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.base_url, api_key=served.api_key, max_retries=0)


def _assert_alive(served: RunningServer) -> None:
    assert served.process.poll() is None
    assert httpx.get(served.base_url.removesuffix("/v1") + "/health").json()["status"] == "ok"


def test_models_lists_the_served_model_as_humanlm(served: RunningServer) -> None:
    models = _client(served).models.list()
    assert [(m.id, m.owned_by) for m in models.data] == [("tiny", "humanlm")]


def test_sync_chat_completion_returns_a_user_turn_with_the_extension(served: RunningServer) -> None:
    response = _client(served).chat.completions.create(
        model="tiny", messages=CHAT, max_tokens=12, temperature=0.7, top_p=0.9, seed=3
    )
    [choice] = response.choices
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content
    for marker in ("<response>", "</response>", "<think>", "</think>"):
        assert marker not in choice.message.content
    extension = choice.model_extra["humanlm"]
    assert extension["ended"] is False
    assert set(extension) == {"ended", "states", "thinking", "raw"}
    assert response.usage.prompt_tokens > 0 and 0 < response.usage.completion_tokens <= 12


def test_same_seed_gives_the_same_reply(served: RunningServer) -> None:
    client = _client(served)
    first, second = (
        client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=8, seed=11)
        for _ in range(2)
    )
    assert first.choices[0].message.content == second.choices[0].message.content


def test_n_and_stop_are_honoured(served: RunningServer) -> None:
    response = _client(served).chat.completions.create(
        model="tiny", messages=CHAT, max_tokens=10, n=3, temperature=1.0, stop=["e"]
    )
    assert [c.index for c in response.choices] == [0, 1, 2]
    assert all("e" not in (c.message.content or "") for c in response.choices)


def test_streaming_chat_completion_assembles_to_one_message(served: RunningServer) -> None:
    stream = _client(served).chat.completions.create(
        model="tiny",
        messages=CHAT,
        max_tokens=8,
        seed=5,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert text and finishes in (["stop"], ["length"])
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    plain = _client(served).chat.completions.create(
        model="tiny", messages=CHAT, max_tokens=8, seed=5
    )
    assert plain.choices[0].message.content == text


def test_async_clients_concurrently(served: RunningServer) -> None:
    async def go() -> list[str]:
        client = openai.AsyncOpenAI(base_url=served.base_url, api_key=served.api_key)
        try:
            replies = await asyncio.gather(
                *(
                    client.chat.completions.create(
                        model="tiny",
                        messages=[*CHAT[:1], {"role": "assistant", "content": f"Question {i}?"}],
                        max_tokens=6,
                    )
                    for i in range(6)
                )
            )
        finally:
            await client.close()
        return [r.choices[0].message.content or "" for r in replies]

    assert len(asyncio.run(go())) == 6


def test_raw_completions_endpoint(served: RunningServer) -> None:
    response = _client(served).completions.create(
        model="tiny", prompt=["<|im_start|>user\n<name>HUMAN</name>\n"], max_tokens=5
    )
    [choice] = response.choices
    assert isinstance(choice.text, str) and response.usage.completion_tokens == 5


def test_thread_messages_with_names(served: RunningServer) -> None:
    messages = [
        {
            "role": "system",
            "content": '{"demographics": {"age group": "30s"}, "interests": ["cats"]}',
        },
        {"role": "user", "name": "OP", "content": "AITA for keeping the cat?"},
        {"role": "user", "name": "commenter_1", "content": "NTA, cats are great."},
    ]
    response = _client(served).chat.completions.create(
        model="tiny", messages=messages, max_tokens=6
    )
    assert response.choices[0].message.content


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "tiny", "messages": []}, "messages"),  # empty
        ({"model": "tiny", "messages": "hello"}, "messages"),  # not a list
        ({"model": "tiny", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
        ({"model": "tiny", "messages": [{"role": "user", "content": "  "}]}, "messages[0].content"),
        ({"model": "tiny", "messages": [{"role": "user"}]}, "messages[0].content"),
        (
            {"model": "tiny", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0]",
        ),
        ({"model": "tiny", "messages": CHAT, "temperature": "hot"}, "temperature"),
        ({"model": "tiny", "messages": CHAT, "n": 0}, "n"),
        ({"model": "tiny", "messages": CHAT, "max_tokens": -1}, "max_tokens"),
        ({"model": "tiny", "messages": CHAT, "stop": [1]}, "stop"),
        ({"messages": CHAT}, "model"),
        ({"model": "tiny", "messages": [{"role": "user", "content": "word " * 5000}]}, "messages"),
    ],
)
def test_bad_requests_get_openai_errors(served: RunningServer, body: dict, param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _client(served).post("/chat/completions", body=body, cast_to=httpx.Response)
    error = caught.value.body
    assert caught.value.status_code == 400
    assert error["param"] == param and error["type"] == "invalid_request_error" and error["message"]
    _assert_alive(served)


def test_context_length_error_has_its_code(served: RunningServer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _client(served).chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "word " * 5000}]
        )
    assert caught.value.code == "context_length_exceeded"


def test_non_json_body_and_unknown_route(served: RunningServer) -> None:
    headers = {"Authorization": f"Bearer {served.api_key}", "Content-Type": "application/json"}
    bad = httpx.post(f"{served.base_url}/chat/completions", content=b"{not json", headers=headers)
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    missing = httpx.get(f"{served.base_url}/nothing-here", headers=headers)
    assert missing.status_code == 404 and "error" in missing.json()
    _assert_alive(served)


def test_wrong_key_gets_401(served: RunningServer) -> None:
    client = openai.OpenAI(base_url=served.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="tiny", messages=CHAT)
    assert caught.value.status_code == 401
    _assert_alive(served)


def test_user_simulator_from_spec_talks_to_humanlm_serve(
    served: RunningServer, monkeypatch
) -> None:
    from humanlm.generate import GenerationSettings
    from humanlm.simulate.served import ServedUserSimulator
    from humanlm.simulate.user import UserSimulator

    monkeypatch.setenv("SERVE_KEY_FOR_TEST", served.api_key)
    sim = UserSimulator.from_spec(
        f"openai:tiny@{served.base_url}",
        settings=GenerationSettings(max_new_tokens=6),
        api_key_env="SERVE_KEY_FOR_TEST",
    )
    assert isinstance(sim, ServedUserSimulator)
    reply = sim.reply(PERSONA, CHAT[1:])
    assert reply.error is None and reply.text and reply.raw is not None


def test_the_served_user_reads_every_choice(served: RunningServer, monkeypatch) -> None:
    import asyncio

    from humanlm.generate import GenerationSettings
    from humanlm.simulate.served import ServedUserSimulator

    monkeypatch.setenv("SERVE_KEY_FOR_TEST", served.api_key)
    sim = ServedUserSimulator(
        "tiny",
        base_url=served.base_url,
        settings=GenerationSettings(max_new_tokens=6),
        api_key_env="SERVE_KEY_FOR_TEST",
    )

    async def two() -> list:
        try:
            return await sim.areplies(PERSONA, CHAT[1:], n=2)
        finally:
            await sim.aclose()

    replies = asyncio.run(two())
    assert len(replies) == 2 and all(r.error is None and r.raw for r in replies)
    assert sim.client.ledger.calls == 1  # one request with n=2


def test_simulate_with_the_served_user(served: RunningServer, tmp_path, monkeypatch) -> None:
    from humanlm.generate import GenerationSettings
    from humanlm.simulate.assistant import Assistant
    from humanlm.simulate.conversation import run_simulate
    from humanlm.simulate.scenarios import Scenario
    from humanlm.simulate.user import UserSimulator
    from humanlm.testing import ScriptedServer

    monkeypatch.setenv("SERVE_KEY_FOR_TEST", served.api_key)
    user = UserSimulator.from_spec(
        f"openai:tiny@{served.base_url}",
        settings=GenerationSettings(max_new_tokens=6),
        api_key_env="SERVE_KEY_FOR_TEST",
    )
    with ScriptedServer(reply_fn=lambda request: "Tell me more.") as bot:
        assistant = Assistant("bot", base_url=bot.base_url, api_key="x")
        summary = run_simulate(
            scenarios=[Scenario("a", PERSONA, goal="plan a garden")],
            user=user,
            assistant=assistant,
            out_dir=tmp_path,
            max_turns=2,
        )
        sent = [r.messages for r in bot.chat_requests]
    assert summary.written == 1
    assert sent and sent[0][0]["role"] == "user"  # the simulated user opened


def test_flipped_route_swaps_the_roles(served: RunningServer) -> None:
    base = served.base_url.removesuffix("/v1")
    flipped = openai.OpenAI(base_url=f"{base}/flipped/v1", api_key=served.api_key, max_retries=0)
    mine = [
        CHAT[0],
        {"role": "assistant", "content": CHAT[1]["content"]},  # the simulator's own turn
        {"role": "user", "content": CHAT[2]["content"]},  # the agent's turn
    ]
    a = flipped.chat.completions.create(model="tiny", messages=mine, max_tokens=6, seed=2)
    b = _client(served).chat.completions.create(model="tiny", messages=CHAT, max_tokens=6, seed=2)
    assert a.choices[0].model_extra["humanlm"]["raw"] == b.choices[0].model_extra["humanlm"]["raw"]


# Regression (issue 24): these gave a 500 (a lone surrogate, deep nesting) or ran for 23 s
# (500 prompts in one completions request).
@pytest.mark.parametrize(
    ("route", "raw", "param"),
    [
        (  # a lone surrogate escape: half of an emoji cut in two
            "chat/completions",
            b'{"model": "tiny", "messages": [{"role": "user", "content": "hi \\ud800"}]}',
            "messages[0].content",
        ),
        (  # a lone surrogate in the model name, which the answer would echo
            "chat/completions",
            b'{"model": "\\udfff", "messages": [{"role": "user", "content": "hi"}]}',
            "model",
        ),
        ("chat/completions", b'{"model": "tiny", "messages": ' + b"[" * 50_000, None),  # nesting
        (
            "chat/completions",
            b'{"model": "tiny", "messages": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["hi"]]]]]]]]]]]]'
            b"]]]]]]]]]]]]]]]]]]]]]]]}",
            None,
        ),
        ("chat/completions", b'{"model": "tiny", "messages": [], "temperature": NaN}', None),
        (
            "completions",
            b'{"model": "tiny", "prompt": [' + b'"a", ' * 499 + b'"a"]}',
            "prompt",
        ),
        ("completions", b'{"model": "tiny", "prompt": ["a", "b"], "n": 9}', "prompt"),
        ("completions", b'{"model": "tiny", "prompt": "a", "n": 17}', "n"),
        ("completions", b'{"model": "tiny", "prompt": "a", "stop": "' + b"x" * 300 + b'"}', "stop"),
    ],
)
def test_input_faults_get_openai_4xx(
    served: RunningServer, route: str, raw: bytes, param: str | None
) -> None:
    headers = {"Authorization": f"Bearer {served.api_key}", "Content-Type": "application/json"}
    answer = httpx.post(f"{served.base_url}/{route}", content=raw, headers=headers, timeout=60)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    assert error["param"] == param
    _assert_alive(served)


def test_sixteen_completions_per_request_are_served(served: RunningServer) -> None:
    response = _client(served).completions.create(
        model="tiny", prompt=["Hello", "Good morning"], n=8, max_tokens=2
    )
    assert len(response.choices) == 16
