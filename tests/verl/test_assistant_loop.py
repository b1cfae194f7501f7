"""The humanlm_assistant loop: an assistant policy (a scripted verl server) against a simulated
user behind real HTTP; user tokens masked, stop reasons recorded, the episode reward set."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

pytest.importorskip("verl", reason="verl is not installed (pip install 'humanlm[verl]')")

from verl.experimental.agent_loop.agent_loop import (  # noqa: E402
    DictConfigWrap,
    _agent_loop_registry,
)
from verl.utils.dataset.rl_dataset import RLHFDataset  # noqa: E402

from humanlm.errors import ConfigError  # noqa: E402
from humanlm.simulate import Scenario  # noqa: E402
from humanlm.testing import ScriptedServer  # noqa: E402
from humanlm.verl.assistant_loop import (  # noqa: E402
    AGENT_NAME,
    HumanlmAssistantLoop,
    assistant_settings,
    scenario_rows,
)
from tests.assistant_rl.conftest import CHATML, USER_TEXT, scripted_user  # noqa: E402

from .conftest import configured, run  # noqa: E402
from .test_agent_loop import FakeLLM  # noqa: E402

ANSWER = "Sure, here it is."
OPENING = ({"role": "user", "content": "Hello, can you help me?"},)
SYSTEM = "You are a helpful assistant."


@pytest.fixture(scope="module")
def chat_tokenizer(tokenizer: Any) -> Any:
    """The tiny model's tokenizer with an assistant chat template (ChatML)."""
    chat = copy.deepcopy(tokenizer)
    chat.chat_template = CHATML
    return chat


def make_loop(cfg: Any, tokenizer: Any, server: Any) -> HumanlmAssistantLoop:
    return HumanlmAssistantLoop(
        trainer_config=DictConfigWrap(cfg),
        server_manager=server,
        tokenizer=tokenizer,
        processor=None,
        dataset_cls=RLHFDataset,
        data_config=DictConfigWrap(cfg.data),
        hf_model_type="qwen3",
    )


def play(cfg: Any, tokenizer: Any, scenario: Scenario, *, system: str | None = SYSTEM) -> Any:
    (row,) = scenario_rows([scenario], system=system)
    server = FakeLLM(tokenizer, lambda ids: ANSWER + "<|im_end|>")
    kwargs = {"raw_prompt": row["prompt"], "extra_info": row["extra_info"]}

    async def go() -> Any:
        # Built inside the running event loop, as verl's worker builds one per rollout.
        return await make_loop(cfg, tokenizer, server).run({"temperature": 1.0}, **kwargs)

    return run(go(), timeout=40), server


def test_loop_is_registered_under_its_name() -> None:
    assert _agent_loop_registry[AGENT_NAME] == {
        "_target_": "humanlm.verl.assistant_loop.HumanlmAssistantLoop"
    }


def test_user_tokens_get_no_loss_and_the_episode_is_scored(base_config, chat_tokenizer):
    with (
        ScriptedServer(reply_fn=scripted_user) as user,
        ScriptedServer(reply_fn=lambda r: '{"score": 8, "reason": "helpful"}') as judge,
    ):
        cfg = configured(
            base_config,
            {
                "humanlm_assistant": {
                    "user": f"openai:scripted@{user.base_url}",
                    "max_turns": 3,
                    "judge": f"openai:judge@{judge.base_url}",
                    "judge_weight": 1.0,
                    "user_end_weight": 0.5,
                }
            },
        )
        output, server = play(
            cfg, chat_tokenizer, Scenario("keeps", "A curious person.", "", OPENING)
        )
        judged = judge.chat_requests

    assert len(server.calls) == 3  # max_turns assistant turns, a user turn between each two
    info = output.extra_fields["reward_extra_info"]
    assert (info["stop_reason"], info["assistant_turns"], info["user_turns"]) == ("max_turns", 3, 2)
    assert output.reward_score == pytest.approx(0.8)  # judge 8/10, the user did not end it
    assert (info["reward/judge"], info["reward/user_end"], info["reward/unscored"]) == (
        0.8,
        0.0,
        0.0,
    )
    assert len(judged) == 1 and USER_TEXT in judged[0].prompt

    # The whole sequence is the chat template's rendering of the conversation, and the
    # tokens with mask 0 are exactly the user's turns.
    conversation = [
        {"role": "system", "content": SYSTEM},
        *OPENING,
        *[
            {"role": role, "content": text}
            for _ in range(2)
            for role, text in (("assistant", ANSWER), ("user", USER_TEXT))
        ],
        {"role": "assistant", "content": ANSWER},
    ]
    rendered = chat_tokenizer.apply_chat_template(conversation, tokenize=False)
    ids = output.prompt_ids + output.response_ids
    assert chat_tokenizer.decode(ids) == rendered.rstrip("\n")
    assert len(output.response_mask) == len(output.response_ids)
    policy = [t for t, m in zip(output.response_ids, output.response_mask, strict=True) if m]
    user_side = [t for t, m in zip(output.response_ids, output.response_mask, strict=True) if not m]
    assert chat_tokenizer.decode(policy) == (ANSWER + "<|im_end|>") * 3
    assert chat_tokenizer.decode(user_side).count(USER_TEXT) == 2
    assert ANSWER not in chat_tokenizer.decode(user_side)


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("A PATIENT person.", ("user_ended", 1, 0, 1.0, 0.0)),  # ends after one answer
        ("A BROKEN person.", ("user_error", 1, 0, 0.0, 1.0)),  # the simulator is refused
        ("A SILENT person.", ("empty_user_turn", 1, 0, 0.0, 0.0)),  # writes nothing, twice more
    ],
)
def test_each_stop_reason_is_recorded(base_config, chat_tokenizer, persona, expected):
    with ScriptedServer(reply_fn=scripted_user) as user:
        cfg = configured(
            base_config,
            {"humanlm_assistant": {"user": f"openai:s@{user.base_url}", "user_end_weight": 1.0}},
        )
        output, _ = play(cfg, chat_tokenizer, Scenario("s", persona, "a goal", OPENING))
    info = output.extra_fields["reward_extra_info"]
    got = (info["stop_reason"], info["assistant_turns"], info["user_turns"])
    assert got + (output.reward_score, info["reward/unscored"]) == expected
    assert 0 not in output.response_mask  # no user turn entered the sequence


def test_a_user_who_opens_writes_into_the_prompt(base_config, chat_tokenizer):
    with ScriptedServer(reply_fn=scripted_user) as user:
        cfg = configured(
            base_config,
            {
                "humanlm_assistant": {
                    "user": f"openai:s@{user.base_url}",
                    "max_turns": 1,
                    "user_end_weight": 1.0,
                }
            },
        )
        output, _ = play(cfg, chat_tokenizer, Scenario("opens", "Someone.", "", ()))
        asked = user.chat_requests
    assert len(asked) == 1  # the opening; max_turns 1 asks nothing after the answer
    assert USER_TEXT in chat_tokenizer.decode(output.prompt_ids)
    assert output.response_mask == [1] * len(output.response_ids)


@pytest.mark.parametrize(
    ("node", "problem"),
    [
        ({}, "humanlm_assistant.user: set the simulator spec"),
        ({"user": "openai:s", "max_turns": 0}, "max_turns: an integer >= 1"),
        ({"user": "openai:s", "judge_weight": "high"}, "judge_weight: a number"),
        ({"user": "openai:s", "colour": 1}, "humanlm_assistant.colour: unknown setting"),
        ({"user": "openai:s"}, "no reward; set judge"),
    ],
)
def test_bad_settings_are_refused_with_their_fix(node, problem):
    with pytest.raises(ConfigError, match=problem):
        assistant_settings(node)


def test_scenario_rows_carry_the_user_and_refuse_an_empty_prompt():
    persona = {"name": "Ann", "bio": "a nurse"}
    (row,) = scenario_rows([Scenario("a", persona, "a goal", OPENING)], system=SYSTEM)
    assert row["prompt"] == [{"role": "system", "content": SYSTEM}, *OPENING]
    assert row["agent_name"] == AGENT_NAME
    assert row["extra_info"] == {
        "scenario_id": "a",
        "persona": json.dumps(persona),
        "goal": "a goal",
    }
    with pytest.raises(ConfigError, match="no opening turns and no system message"):
        scenario_rows([Scenario("b", "x", "", ())])


def write_rows(path: Any, scenarios: list[Scenario]) -> str:
    import pandas as pd

    pd.DataFrame(scenario_rows(scenarios, system=SYSTEM)).to_parquet(path)
    return str(path)


def test_the_dry_run_composes_checks_and_verl_reads_the_rows(
    tmp_path, tiny_model_dir, chat_tokenizer
):
    from omegaconf import OmegaConf
    from verl.utils.import_utils import resolve_config_path

    from humanlm.verl.assistant_train import plan_assistant

    train = write_rows(tmp_path / "train.parquet", [Scenario("a", "A nurse.", "a refund", OPENING)])
    val = write_rows(tmp_path / "val.parquet", [Scenario("b", "A chef.", "", OPENING)])
    cfg = plan_assistant(
        None,
        [
            f"data.train_files={train}",
            f"data.val_files={val}",
            f"actor_rollout_ref.model.path={tiny_model_dir}",
            "humanlm_assistant.user=openai:sim@http://127.0.0.1:9/v1",
        ],
    )
    assert cfg.actor_rollout_ref.rollout.agent.default_agent_loop == AGENT_NAME
    # The registration file verl's workers load names our loop.
    (entry,) = OmegaConf.load(
        resolve_config_path(cfg.actor_rollout_ref.rollout.agent.agent_loop_config_path)
    )
    assert (entry.name, entry._target_) == (
        AGENT_NAME,
        "humanlm.verl.assistant_loop.HumanlmAssistantLoop",
    )
    # verl's own dataset reads the rows into what the loop's run() takes.
    item = RLHFDataset(train, chat_tokenizer, cfg.data)[0]
    assert item["agent_name"] == AGENT_NAME
    assert list(item["raw_prompt"]) == [{"role": "system", "content": SYSTEM}, *OPENING]
    assert item["extra_info"]["persona"] == "A nurse." and item["extra_info"]["goal"] == "a refund"


def test_the_dry_run_refuses_every_problem_at_once(tmp_path):
    from humanlm.verl.assistant_train import plan_assistant

    train = write_rows(tmp_path / "train.parquet", [Scenario("a", "A nurse.", "", OPENING)])
    with pytest.raises(ConfigError) as caught:
        plan_assistant(
            None,
            [
                f"data.train_files={train}",
                f"data.val_files={train}",
                "actor_rollout_ref.rollout.n=1",
                "humanlm_assistant.user=carrier-pigeon:x",
                "humanlm_assistant.max_turns=0",
            ],
        )
    text = str(caught.value)
    for problem in (
        "data.val_files: must differ",
        "actor_rollout_ref.model.path",
        "rollout.n: GRPO compares a group",
        "max_turns: an integer >= 1",
    ):
        assert problem in text
