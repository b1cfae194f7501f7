"""The system prompt: the chat sentence for chats with an AI assistant (issue 21)."""

from __future__ import annotations

import pytest

from humanlm.states import build_messages
from humanlm.states.prompts import CHAT_SOURCES, build_system_prompt
from humanlm.states.render import load_template

EXAMPLE = {
    "persona": "A user who is chatting with an AI assistant.",
    "messages": [{"role": "user", "name": "HUMAN", "content": "What grows on a fig tree?"}],
}


@pytest.mark.parametrize("state", ["response", "stance"])
def test_a_chat_source_is_told_it_is_the_user_not_the_assistant(state) -> None:
    chat_role = load_template("chat_role")
    assert "not the AI assistant" in chat_role
    chat = build_messages({**EXAMPLE, "data_source": "wildchat"}, state)[0]["content"]
    assert chat_role in chat and CHAT_SOURCES == ("wildchat",)
    for other in ({**EXAMPLE, "data_source": "reddit"}, EXAMPLE):
        assert chat_role not in build_messages(other, state)[0]["content"]


def test_other_sources_keep_the_prompt_text_they_had() -> None:
    text = build_system_prompt("p", "response", source="reddit")
    assert text.startswith(
        "You are a real person, not an assistant. In the conversation below you are the user "
        "named HUMAN, and you are about to write your next message.\n\nThis is who you are:"
    )
