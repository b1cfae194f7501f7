"""build_judge: spec strings, API keys from the environment only and never shown, the optional
litellm extra."""

from __future__ import annotations

import logging
import sys

import pytest

from humanlm.errors import ConfigError
from humanlm.judge import Judge, JudgeConfig, Price, build_judge, parse_spec
from humanlm.judge.embedding import EmbeddingJudge
from humanlm.llm import ModelSpec
from humanlm.testing.judge_replies import judge_reply_fn

from .conftest import CONTEXT, TRUTH, run

SECRET = "sk-test-DO-NOT-LEAK-42"

SPEC_CASES = [
    ("openai:gpt-5-mini", ModelSpec("openai", "gpt-5-mini")),
    (
        "openai:Qwen/Qwen3-8B@http://127.0.0.1:8000/v1/",
        ModelSpec("openai", "Qwen/Qwen3-8B", "http://127.0.0.1:8000/v1/"),
    ),
    ("litellm:anthropic/claude-haiku-4-5", ModelSpec("litellm", "anthropic/claude-haiku-4-5")),
    ("embedding:minilm", ModelSpec("embedding", "minilm")),
]


@pytest.mark.parametrize(("spec", "parsed"), SPEC_CASES)
def test_parse_spec(spec: str, parsed: ModelSpec) -> None:
    assert parse_spec(spec) == parsed


@pytest.mark.parametrize(
    "spec",
    [
        "gpt-5-mini",
        "openai:",
        "claude:haiku",
        "litellm:claude",
        "embedding:bert",
        "openai:m@ftp://x",
    ],
)
def test_bad_specs_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_spec(spec)


def test_display_drops_credentials_in_the_url() -> None:
    spec = parse_spec("openai:m@https://user:pw@example.com/v1")
    assert spec.display == "openai:m@https://example.com/v1"


def test_missing_key_for_a_remote_server_is_a_config_error(monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("MY_JUDGE_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        build_judge(JudgeConfig("openai:gpt-5-mini"))
    with pytest.raises(ConfigError, match="MY_JUDGE_KEY"):
        build_judge(
            JudgeConfig("openai:m@https://judge.example.com/v1", api_key_env="MY_JUDGE_KEY")
        )


def test_local_server_needs_no_key(server, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server.reply_fn = judge_reply_fn()
    judge = build_judge(JudgeConfig(f"openai:m@{server.base_url}"))
    assert isinstance(judge, Judge)
    run(judge.judge_group(context=CONTEXT, ground_truth=TRUTH, state="goal", candidates=["a"]))
    assert server.chat_requests[0].headers["authorization"] == "Bearer EMPTY"


def test_key_comes_from_the_named_variable_and_never_shows(
    server, monkeypatch, caplog, capsys, tmp_path
) -> None:
    monkeypatch.setenv("MY_JUDGE_KEY", SECRET)
    server.reply_fn = judge_reply_fn()
    caplog.set_level(logging.DEBUG)
    judge = build_judge(
        JudgeConfig(f"openai:m@{server.base_url}", api_key_env="MY_JUDGE_KEY"),
        cache=tmp_path / "c.sqlite",
    )
    verdict = run(
        judge.judge_group(context=CONTEXT, ground_truth=TRUTH, state="goal", candidates=["a"])
    )
    assert server.chat_requests[0].headers["authorization"] == f"Bearer {SECRET}"
    judge.ledger.write(tmp_path)
    shown = [
        repr(judge),
        repr(judge.backend),
        str(vars(judge)),
        repr(verdict),
        str(verdict.verdicts[0].prompt),
        judge.ledger.summary(),
        (tmp_path / "judge_ledger.json").read_text(),
        caplog.text,
        "".join(capsys.readouterr()),
        (tmp_path / "c.sqlite").read_bytes().decode("latin-1"),
    ]
    assert not any(SECRET in text for text in shown)


def test_litellm_missing_extra_names_the_install_command(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "litellm", None)  # import litellm -> ImportError
    with pytest.raises(ConfigError, match=r"pip install 'humanlm\[litellm\]'"):
        build_judge(JudgeConfig("litellm:anthropic/claude-haiku-4-5"))


def test_embedding_spec_builds_an_offline_judge() -> None:
    judge = build_judge(JudgeConfig("embedding:minilm"), cache="ignored.sqlite")
    assert isinstance(judge, EmbeddingJudge) and isinstance(judge, Judge)


def test_bad_settings_are_config_errors(server) -> None:
    with pytest.raises(ConfigError):
        build_judge(JudgeConfig(f"openai:m@{server.base_url}", concurrency=0))
    with pytest.raises(ConfigError):
        build_judge(JudgeConfig(f"openai:m@{server.base_url}", timeout_s=-1))


def test_chat_gate_settings_are_checked(server) -> None:
    # issue 21: the gate is a judge setting; an embedding judge cannot gate.
    with pytest.raises(ConfigError, match="chat_gate"):
        JudgeConfig(chat_gate="sometimes")
    with pytest.raises(ConfigError, match="LLM judge"):
        build_judge(JudgeConfig("embedding:minilm", chat_gate="on"))
    assert not build_judge(JudgeConfig("embedding:minilm")).gates("wildchat")
    judge = build_judge(JudgeConfig(spec=f"openai:judge-model@{server.base_url}", chat_gate="off"))
    assert judge.chat_gate == "off" and not judge.gates("wildchat")
    assert build_judge(JudgeConfig(f"openai:judge-model@{server.base_url}")).gates("wildchat")


def test_every_setting_of_the_block_reaches_the_judge(server, tmp_path) -> None:
    # issue 22: one way to build a judge; no setting of the block is dropped on the way.
    cfg = JudgeConfig(
        f"openai:m@{server.base_url}",
        temperature=0.3,
        max_tokens=77,
        concurrency=5,
        timeout_s=9.0,
        request_timeout_s=2.0,
        max_retries=2,
        backoff_s=0.02,
        backoff_max_s=0.2,
        hedge_after_s=1.5,
        rpm=600.0,
        tpm=60000.0,
        cache=str(tmp_path / "c.sqlite"),
        params={"reasoning_effort": "low"},
        prices={"m": [1.0, 2.0]},
        structured_output=False,
        chat_gate="off",
    )
    judge = build_judge(cfg, seed=3)
    retry = judge.retry
    assert (retry.max_retries, retry.timeout_s, retry.request_timeout_s) == (2, 9.0, 2.0)
    assert (retry.backoff_s, retry.backoff_max_s, retry.hedge_after_s) == (0.02, 0.2, 1.5)
    assert judge.params == {"reasoning_effort": "low", "temperature": 0.3, "max_tokens": 77}
    assert judge.cache is not None and judge.chat_gate == "off" and not judge.structured
    assert judge.ledger.prices["m"] == Price(1.0, 2.0)
    server.reply_fn = judge_reply_fn()
    run(judge.judge_group(context=CONTEXT, ground_truth=TRUTH, state="goal", candidates=["a"]))
    body = server.chat_requests[0].body
    assert body["temperature"] == 0.3 and body["reasoning_effort"] == "low"
    assert "response_format" not in body
