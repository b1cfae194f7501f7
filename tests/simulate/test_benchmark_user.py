"""A humanlm simulator as a benchmark's user: tau2-bench's and tau-bench's user prompts mapped to
persona + goal, the harness's flipped roles, the stop token, against a scripted assistant; and the
same conversation through ``humanlm serve``'s ``/flipped/v1`` with the OpenAI SDK (what litellm's
``openai/`` provider uses)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from humanlm.errors import DataError, HumanlmError
from humanlm.simulate import Assistant, UserSimulator, load_scenarios
from humanlm.simulate.benchmark_user import (
    DEFAULT_PERSONA,
    STOP,
    BenchmarkUser,
    UserInstructions,
    from_harness_messages,
    read_user_instructions,
    tau2_scenarios,
    write_scenarios,
)
from humanlm.simulate.messages import ConversationError
from humanlm.testing import RecordedRequest, Reply, ScriptedServer

# tau2-bench's user system prompt, as its UserSimulator.system_prompt builds it: the global
# guidelines, then str(task.user_scenario) inside <scenario> (data/tau2/user_simulator/).
TAU2_GUIDELINES = (
    "# User Simulation Guidelines\nYou are playing the role of a customer contacting a customer "
    "service representative.\n## Task Completion\n- If the instruction goal is satisified, "
    "generate the '###STOP###' token to end the conversation."
)
TAU2_SCENARIO = (
    "Persona:\n\tA retired teacher who writes short, polite messages.\n"
    "Instructions:\n\tDomain: airline\n\tReason for call:\n\t\tYou want to cancel reservation "
    "EHGLP3.\n\tKnown info:\n\t\tYou are Emma Kim.\n\tTask instructions:\n\t\tYou don't want "
    "to cancel if you don't get a refund."
)
TAU2_SYSTEM = f"{TAU2_GUIDELINES}\n\n<scenario>\n{TAU2_SCENARIO}\n</scenario>"
TAU2_GOAL = (
    "Domain: airline\nReason for call:\n\tYou want to cancel reservation EHGLP3.\nKnown info:\n"
    "\tYou are Emma Kim.\nTask instructions:\n\tYou don't want to cancel if you don't get a refund."
)
# tau-bench's LLMUserSimulationEnv.build_system_prompt.
TAU_SYSTEM = (
    "You are a user interacting with an agent.\n\nInstruction: You are Yusuf Rossi. You want to "
    "return the cleaner.\n\nRules:\n- Just generate one line at a time to simulate the user's "
    "message.\n- If the instruction goal is satisified, generate '###STOP###' as a standalone "
    "message without anything else to end the conversation."
)
GREETING = "Hi! How can I help you today?"


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        (
            TAU2_SYSTEM,  # tau2: persona and structured instructions in <scenario>
            UserInstructions("A retired teacher who writes short, polite messages.", TAU2_GOAL),
        ),
        (
            f"{TAU2_GUIDELINES}\n\n<scenario>\nInstructions:\n\tGet a refund.\n</scenario>",
            UserInstructions(DEFAULT_PERSONA, "Get a refund."),  # tau2 without a persona
        ),
        (
            f"{TAU2_GUIDELINES}\n\n<scenario>\nJust get a refund.\n</scenario>",
            UserInstructions(DEFAULT_PERSONA, "Just get a refund."),  # plain tau2 instructions
        ),
        (
            TAU_SYSTEM,  # tau-bench: the Instruction paragraph
            UserInstructions(
                DEFAULT_PERSONA, "You are Yusuf Rossi. You want to return the cleaner."
            ),
        ),
        (" A night-shift nurse. ", UserInstructions("A night-shift nurse.")),  # plain persona
        ("", UserInstructions(DEFAULT_PERSONA)),  # no system message
    ],
)
def test_harness_instructions_map_to_persona_and_goal(system: str, expected: UserInstructions):
    assert read_user_instructions(system) == expected


def test_harness_roles_are_swapped_back():
    instructions, conversation = from_harness_messages(
        [
            {"role": "system", "content": TAU2_SYSTEM},
            {"role": "user", "content": GREETING},  # the agent
            {"role": "assistant", "content": "I want to cancel a flight."},  # the user model
            {"role": "user", "content": ""},  # an agent turn that only called tools
            {"role": "user", "content": [{"type": "text", "text": "Which one?"}]},
        ]
    )
    assert instructions.goal == TAU2_GOAL
    assert conversation == [
        {"role": "assistant", "content": GREETING},
        {"role": "user", "content": "I want to cancel a flight."},
        {"role": "assistant", "content": "Which one?"},
    ]


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ("hello", "messages"),  # not a list
        ([{"role": "tool", "content": "{}"}], "messages[0]"),  # a user tool's result
        ([{"role": "assistant", "content": None, "tool_calls": [{}]}], "messages[0]"),
        ([{"role": "critic", "content": "x"}], "messages[0].role"),
    ],
)
def test_messages_a_text_user_cannot_take_are_refused(messages: Any, param: str):
    with pytest.raises(ConversationError) as caught:
        from_harness_messages(messages)
    assert caught.value.param == param


LOUD_ASKED: list[str] = []


def seen(request: RecordedRequest) -> str:
    """What the simulator model was shown (a chat or, behind humanlm serve, a text prompt)."""
    return request.prompt if request.is_text_completion else json.dumps(request.messages)


def user_by_request(request: RecordedRequest) -> Reply | str:
    """The scripted simulator: ends once the agent has confirmed, else asks about the refund;
    a persona with LOUD writes like an assistant the first time, one with MUTE writes nothing."""
    prompt = seen(request)
    if "LOUD" in prompt and not LOUD_ASKED:
        LOUD_ASKED.append(prompt)
        return "<response>Great question! I'd be happy to help you with that.</response>"
    if "MUTE" in prompt:
        return "<response> </response>"
    if "cancelled with a full refund" in prompt:
        return "<|endconversation|>"
    return "<response>Can I cancel EHGLP3 and get a refund?</response>"


def agent_by_request(request: RecordedRequest) -> str:
    """The scripted assistant under test: confirms once the user asked about a refund."""
    last = request.messages[-1]["content"]
    return "Done: EHGLP3 is cancelled with a full refund." if "refund" in last else "Sure."


async def play_tau2(user: BenchmarkUser, agent: Assistant, system: str, max_turns: int = 5):
    """tau2's orchestration in small: the agent greets, the user model gets its flipped view."""
    agent_view = [{"role": "assistant", "content": GREETING}]
    user_view: list[dict[str, Any]] = [
        {"role": "system", "content": system},
        {"role": "user", "content": GREETING},
    ]
    turns = []
    for _ in range(max_turns):
        turn = await user.arespond(user_view)
        turns.append(turn)
        user_view.append({"role": "assistant", "content": turn.content})
        if STOP in turn.content:  # tau2's UserSimulator.is_stop
            break
        agent_view.append({"role": "user", "content": turn.content})
        answer = await agent.reply(agent_view)
        assert answer.text is not None
        agent_view.append({"role": "assistant", "content": answer.text})
        user_view.append({"role": "user", "content": answer.text})
    await user.aclose()
    await agent.aclose()
    return turns, agent_view


@pytest.fixture
def servers():
    with (
        ScriptedServer(reply_fn=user_by_request) as user_server,
        ScriptedServer(reply_fn=agent_by_request) as agent_server,
    ):
        yield user_server, agent_server


def test_a_tau2_conversation_with_a_scripted_assistant_ends_with_the_stop_token(servers):
    user_server, agent_server = servers
    user = BenchmarkUser(UserSimulator.from_spec(f"openai:sim@{user_server.base_url}"))
    agent = Assistant.from_spec(f"openai:agent@{agent_server.base_url}")
    turns, agent_view = asyncio.run(play_tau2(user, agent, TAU2_SYSTEM))

    assert [(t.content, t.stop, t.reason) for t in turns] == [
        ("Can I cancel EHGLP3 and get a refund?", False, None),
        (STOP, True, "user_ended"),
    ]
    assert [m["role"] for m in agent_view] == ["assistant", "user", "assistant"]
    # The simulator saw the persona and the goal, not the guidelines written for a chat model.
    first = json.dumps(user_server.chat_requests[0].messages)
    assert "A retired teacher" in first and "cancel reservation EHGLP3" in first
    assert "User Simulation Guidelines" not in first and "###STOP###" not in first
    # ... and the agent's greeting as the assistant's turn, its own turn as the user's.
    last = user_server.chat_requests[-1].messages
    assert GREETING in json.dumps(last)
    assert all(STOP not in json.dumps(r.messages) for r in agent_server.chat_requests)


def test_assistant_like_turns_are_drawn_again_and_empty_ones_stop(servers):
    user_server, _ = servers
    sim = UserSimulator.from_spec(f"openai:sim@{user_server.base_url}")
    loud = TAU2_SYSTEM.replace("A retired teacher", "A LOUD retired teacher")
    turn = BenchmarkUser(sim).respond([{"role": "system", "content": loud}])
    assert (turn.content, turn.stop, turn.redrawn) == (
        "Can I cancel EHGLP3 and get a refund?",
        False,
        {"assistant_voice": 1},
    )

    mute = TAU2_SYSTEM.replace("A retired teacher", "A MUTE retired teacher")
    before = len(user_server.chat_requests)
    turn = BenchmarkUser(sim, stop_text="###TRANSFER###").respond(
        [{"role": "system", "content": mute}, {"role": "user", "content": GREETING}]
    )
    assert (turn.content, turn.stop, turn.reason) == ("###TRANSFER###", True, "empty_user_turn")
    assert len(user_server.chat_requests) - before == 3  # asked twice more


def test_a_failing_simulator_is_an_error_not_a_turn():
    with ScriptedServer(reply_fn=lambda r: Reply(status=400)) as broken:
        user = BenchmarkUser(UserSimulator.from_spec(f"openai:sim@{broken.base_url}"))
        with pytest.raises(HumanlmError, match="failed"):
            user.respond([{"role": "system", "content": TAU2_SYSTEM}])


def test_tau2_tasks_become_simulate_scenarios(tmp_path: Path):
    tasks = [
        {
            "id": "0",
            "user_scenario": {
                "persona": None,
                "instructions": {
                    "domain": "airline",
                    "reason_for_call": "You want to cancel reservation EHGLP3.",
                    "known_info": "You are Emma Kim.",
                    "unknown_info": None,
                    "task_instructions": "You don't want to cancel if you don't get a refund.",
                },
            },
        },
        {"id": 7, "user_scenario": {"persona": "A nurse.", "instructions": "Ask for a refund."}},
    ]
    (tmp_path / "tasks.json").write_text(json.dumps(tasks), encoding="utf-8")
    scenarios = tau2_scenarios(tmp_path / "tasks.json")
    assert [(s.id, s.persona, s.goal) for s in scenarios] == [
        ("0", DEFAULT_PERSONA, TAU2_GOAL),  # rendered as tau2 renders it
        ("7", "A nurse.", "Ask for a refund."),
    ]
    write_scenarios(tmp_path / "scenarios.jsonl", scenarios)
    assert load_scenarios(tmp_path / "scenarios.jsonl") == scenarios

    (tmp_path / "bad.json").write_text(json.dumps([{"id": "1"}]), encoding="utf-8")
    with pytest.raises(DataError, match="user_scenario.instructions"):
        tau2_scenarios(tmp_path / "bad.json")
    with pytest.raises(DataError, match="no such"):
        tau2_scenarios(tmp_path / "missing.json")


def test_a_litellm_style_client_plays_the_user_through_humanlm_serve(servers):
    """What a harness's ``litellm.completion(model="openai/sim", api_base=.../flipped/v1)`` sends,
    through the OpenAI SDK that litellm's ``openai/`` provider calls."""
    from openai import OpenAI

    from tests.serve.conftest import start_server, stop_server

    user_server, _ = servers
    served = start_server(
        f"sim@{user_server.base_url}",
        *("--mode", "grpo", "--end-text", STOP, "--served-name", "sim"),
        kind="openai",
    )
    try:
        flipped = served.base_url.replace("/v1", "/flipped/v1")
        client = OpenAI(base_url=flipped, api_key=served.api_key)
        user_view = [
            {"role": "system", "content": TAU2_SYSTEM},
            {"role": "user", "content": GREETING},
        ]
        first = client.chat.completions.create(model="sim", messages=user_view, temperature=0.4)
        user_view += [
            {"role": "assistant", "content": first.choices[0].message.content},
            {"role": "user", "content": "Done: EHGLP3 is cancelled with a full refund."},
        ]
        second = client.chat.completions.create(model="sim", messages=user_view)
    finally:
        stop_server(served)
    assert first.choices[0].message.content == "Can I cancel EHGLP3 and get a refund?"
    assert second.choices[0].message.content == STOP  # tau2's is_stop matches it
    # The roles came back swapped: the agent's greeting went to the simulator as the agent's.
    backend = seen(user_server.completion_requests[-1])
    assert GREETING in backend and "full refund" in backend
    # The scenario was taken apart as BenchmarkUser does: persona and goal, no guidelines.
    assert "A retired teacher" in backend and "User Simulation Guidelines" not in backend


def doc_blocks() -> list[str]:
    """The Python blocks of docs/benchmark_user.md that this file runs."""
    doc = (Path(__file__).parents[2] / "docs" / "benchmark_user.md").read_text(encoding="utf-8")
    marker = "<!-- docs-test: elsewhere tests/simulate/test_benchmark_user.py -->\n```python\n"
    return [part.split("```", 1)[0] for part in doc.split(marker)[1:]]


def test_the_docs_examples_run_as_written(servers, tmp_path, monkeypatch, capsys):
    user_server, _ = servers
    turn_block, scenarios_block = doc_blocks()
    spec = f"openai:sim@{user_server.base_url}"
    exec(turn_block.replace("hf:runs/demo/humanlm/model", spec), {})  # only the spec differs
    assert capsys.readouterr().out == "Can I cancel EHGLP3 and get a refund? False None\n"
    prompt = seen(user_server.chat_requests[-1])
    assert "A retired teacher" in prompt and "User Simulation Guidelines" not in prompt

    monkeypatch.chdir(tmp_path)
    task = {"id": "0", "user_scenario": {"persona": None, "instructions": "Get a refund."}}
    Path("tasks.json").write_text(json.dumps([task]), encoding="utf-8")
    exec(scenarios_block, {})
    assert [(s.id, s.goal) for s in load_scenarios("scenarios.jsonl")] == [("0", "Get a refund.")]
