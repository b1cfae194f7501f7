"""Fixtures: the tiny model's tokenizer with an assistant chat template, and a scripted user."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from humanlm.simulate import UserSimulator
from humanlm.testing import RecordedRequest, Reply, ScriptedServer

# A plain ChatML template: the prompt ends by opening an assistant turn, as an assistant
# model's own template does (humanlm's simulator template opens a turn of the user instead).
CHATML = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

USER_TEXT = "tell me more"


def scripted_user(request: RecordedRequest) -> Reply | str:
    """The simulated user, by persona: PATIENT ends after one answer, BROKEN is refused (HTTP
    400), SILENT writes nothing, anyone else asks for more."""
    persona = request.messages[0]["content"]
    if "PATIENT" in persona:
        return "<|endconversation|>"
    if "BROKEN" in persona:
        return Reply(status=400)
    if "SILENT" in persona:
        return "<response> </response>"
    return f"<response>{USER_TEXT}</response>"


@pytest.fixture(scope="session")
def assistant_tokenizer(tiny_model_dir: Path) -> Any:
    """Loaded once (a second or more per load): tests must not change it."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = CHATML
    return tokenizer


@pytest.fixture
def user_server() -> Iterator[ScriptedServer]:
    with ScriptedServer(reply_fn=scripted_user) as server:
        yield server


@pytest.fixture
def user(user_server: ScriptedServer) -> UserSimulator:
    return UserSimulator.from_spec(f"openai:scripted@{user_server.base_url}")
