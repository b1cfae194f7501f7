"""``ChatClient``'s one retry loop, the same for chat and text requests: which failures are
retried, how long it waits, what it counts, and that a refused key ends the call at once."""

from __future__ import annotations

import pytest

from humanlm.errors import JudgeUnavailableError
from humanlm.llm.backends import OpenAIBackend
from humanlm.llm.client import ChatClient
from humanlm.llm.limits import RetryPolicy
from humanlm.testing import Reply, faults
from tests.judge.conftest import run

SECRET = "sk-test-SECRET-key"
APIS = ["chat", "text"]


def client(server, **settings) -> ChatClient:
    retry = RetryPolicy(
        **{"timeout_s": 5, "request_timeout_s": 2, "backoff_s": 0.01, "backoff_max_s": 0.02}
        | settings
    )
    backend = OpenAIBackend("m", api_key=SECRET, base_url=server.base_url)
    return ChatClient(backend, name="openai:m", retry=retry, seed=0)


def ask(chat: ChatClient, api: str, **kw):
    if api == "chat":
        return run(chat.ask([{"role": "user", "content": "q"}], **kw))
    return run(chat.ask_text("q", **kw))


def requests(server, api: str):
    return server.chat_requests if api == "chat" else server.completion_requests


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(
    "fault, kind, retried",
    [
        (faults.rate_limited(0.01), "rate_limited", True),  # 429
        (faults.server_error(500), "server_error", True),
        (faults.server_error(503), "server_error", True),
        (Reply(status=408), "server_error", True),  # request timeout
        (Reply(status=409), "server_error", True),  # conflict: OpenAI asks to retry
        (faults.disconnect(), "connection_error", True),
        (Reply(body="not json"), "server_error", True),  # a 2xx that is no reply
        (Reply(status=400), "rejected", False),  # the same request cannot succeed
        (Reply(status=422), "rejected", False),
    ],
)
def test_which_failures_are_retried(server, api, fault, kind, retried) -> None:
    server.enqueue(fault, "fine")
    chat = client(server)
    answer = ask(chat, api)
    assert answer.ok is retried and answer.calls == 1 + retried
    assert answer.value == ("fine" if retried else None)
    assert answer.reason == ("ok" if retried else kind)
    assert chat.ledger.retries == {kind: 1} and chat.ledger.calls == 1 + retried
    assert len(requests(server, api)) == 1 + retried


@pytest.mark.parametrize("api", APIS)
def test_retry_after_is_waited_for_on_every_api(server, api) -> None:
    server.enqueue(Reply(status=429, headers={"Retry-After": "0.3"}), "fine")
    answer = ask(client(server), api)
    assert answer.ok
    first, retry = requests(server, api)
    assert retry.received_at - first.received_at >= 0.3 - 0.02


@pytest.mark.parametrize("api", APIS)
def test_the_budget_ends_a_call_with_its_last_failure(server, api) -> None:
    server.enqueue(*[faults.server_error(502)] * 3)
    chat = client(server, max_retries=2)
    answer = ask(chat, api)
    assert (answer.reason, answer.calls, answer.error.status) == ("server_error", 3, 502)
    assert chat.ledger.retries == {"server_error": 3} and chat.ledger.calls == 3


@pytest.mark.parametrize("api", APIS)
def test_a_refused_reply_is_asked_again_and_counted(server, api) -> None:
    server.enqueue("no", "yes")
    chat = client(server)

    def parse(text: str):
        return (text, "ok") if text == "yes" else (None, "not_yes")

    answer = ask(chat, api, parse=parse)
    assert (answer.value, answer.calls) == ("yes", 2)
    assert chat.ledger.retries == {"not_yes": 1} and chat.ledger.calls == 2


@pytest.mark.parametrize("api", APIS)
def test_refused_credentials_end_the_call_at_once_without_the_key(server, api) -> None:
    server.enqueue(Reply(status=401), "never sent")
    chat = client(server)
    with pytest.raises(JudgeUnavailableError, match="credentials") as raised:
        ask(chat, api)
    assert SECRET not in str(raised.value) and len(requests(server, api)) == 1
