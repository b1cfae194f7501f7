"""UserSimulator: the user's-side message mapping, reply parsing and the Python API."""

from __future__ import annotations

from pathlib import Path

import pytest

from humanlm import Reply, UserSimulator
from humanlm.generate import GenerationSettings
from humanlm.simulate.messages import ConversationError, build_prompt
from humanlm.simulate.reply import parse_reply
from humanlm.states import END_SIGNAL


def test_roles_map_to_own_other_and_assistant_turns() -> None:
    prompt = build_prompt(
        "A nurse.",
        [
            {"role": "system", "content": "Lives in Leeds."},
            {"role": "user", "name": "OP", "content": "post"},
            {"role": "user", "content": "my earlier comment"},
            {"role": "user", "name": "HUMAN", "content": "also mine"},
            {"role": "assistant", "content": "an AI turn"},
        ],
        state_set="r",
        thinking=False,
    )
    system, *context = prompt.messages
    assert "A nurse." in system["content"] and "Lives in Leeds." in system["content"]
    assert [(m["role"], m["name"]) for m in context] == [
        ("user", "OP"),
        ("user", "HUMAN"),
        ("user", "HUMAN"),
        ("assistant", "assistant"),
    ]
    assert prompt.text.endswith("<name>HUMAN</name>\n<think>\n\n</think>\n\n")


def test_a_persona_object_is_rendered() -> None:
    persona = '{"demographics": {"age group": "60s"}, "interests": ["gardening"]}'
    prompt = build_prompt(persona, [], state_set="r", thinking=False)
    assert "age group: 60s" in prompt.messages[0]["content"]
    assert "gardening" in prompt.messages[0]["content"]


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "tool", "content": "x"}], "messages[0].role"),  # unknown role
        ([{"role": "user", "content": ""}], "messages[0].content"),  # empty
        ([{"role": "user", "content": 3}], "messages[0].content"),  # not text
        ([{"role": "user", "name": "", "content": "x"}], "messages[0].name"),  # empty name
        (["hello"], "messages[0]"),  # not an object
    ],
)
def test_bad_messages_name_the_field(messages: list, param: str) -> None:
    with pytest.raises(ConversationError) as caught:
        build_prompt("p", messages, state_set="r", thinking=False)
    assert caught.value.param == param


@pytest.mark.parametrize(
    ("raw", "thinking", "text", "ended", "thought"),
    [
        ("<response>hi there</response>", False, "hi there", False, None),  # tagged
        ("plain reply", False, "plain reply", False, None),  # untagged
        (
            "I should ask.</think>\n\n<response>Why?</response>",
            True,
            "Why?",
            False,
            "I should ask.",
        ),
        ("still thinking and out of tokens", True, "", False, "still thinking and out of tokens"),
        (f"<response>{END_SIGNAL}</response>", False, "", True, None),  # end signal
        (f"done.</think>\n<response> {END_SIGNAL} </response>", True, "", True, "done."),
    ],
)
def test_parse_reply(raw: str, thinking: bool, text: str, ended: bool, thought: str | None) -> None:
    reply = parse_reply(raw, thinking=thinking)
    assert (reply.text, reply.ended, reply.thinking) == (text, ended, thought)


def test_states_written_by_the_model_are_returned() -> None:
    reply = parse_reply("<stance>backs OP</stance>\n<response>NTA</response>", thinking=False)
    assert reply.states == {"stance": "backs OP"} and reply.text == "NTA"


def test_from_spec_hf_reply_sync_and_async(tiny_model_dir: Path) -> None:
    import asyncio

    settings = GenerationSettings(temperature=0.0, max_new_tokens=6)
    sim = UserSimulator.from_spec(f"hf:{tiny_model_dir}", mode="sft", settings=settings)
    messages = [{"role": "assistant", "content": "Hello! What can I do for you?"}]
    reply = sim.reply("A student.", messages)
    assert isinstance(reply, Reply) and reply.raw is not None and reply.completion_tokens == 6
    again = asyncio.run(sim.areply("A student.", messages))
    assert again.text == reply.text  # greedy: the same reply


def test_a_model_carrying_its_mode_is_prompted_in_it(
    tiny_model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # issue 21: serve, simulate and UserSimulator prompted every model as humanlm.
    from humanlm.simulate.user import resolve_mode
    from humanlm.states.mode_file import write_mode_file

    checkpoint = tmp_path / "run" / "checkpoints" / "checkpoint-4"
    checkpoint.mkdir(parents=True)
    for item in tiny_model_dir.iterdir():
        (checkpoint / item.name).symlink_to(item)
    write_mode_file(checkpoint, "sft")
    spec = f"hf:{checkpoint}"
    assert resolve_mode(spec) == "sft" and resolve_mode(f"hf:{tiny_model_dir}") == "humanlm"
    with caplog.at_level("WARNING"):
        assert resolve_mode(spec, "grpo") == "grpo"
    assert "replaces the training mode sft" in caplog.text

    user = UserSimulator.from_spec(spec)
    assert user.mode == "sft"
    prompt = user.prompt("A nurse.", [{"role": "user", "name": "OP", "content": "hi"}])
    untagged = build_prompt(
        "A nurse.", [{"role": "user", "name": "OP", "content": "hi"}], state_set="r_no_tag",
        thinking=False,
    )  # fmt: skip
    assert prompt.text == untagged.text
