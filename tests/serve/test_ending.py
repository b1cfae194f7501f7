"""The end signal through the server: content, finish_reason and the humanlm extension."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx
import openai

from humanlm.generate import Generation, GenerationSettings, SimPrompt
from humanlm.serve.app import build_app
from humanlm.simulate.user import UserSimulator
from humanlm.states import END_SIGNAL


class EndingGenerator:
    """A model that always ends the conversation, with a thought and a stance first."""

    spec = "ending"
    batch_size = None
    applies_ngram_ban = True
    context_length = 4096
    continues_prompt = True

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def health(self) -> None:
        return None

    async def generate(
        self, prompts: Sequence[SimPrompt], settings: GenerationSettings
    ) -> list[Generation]:
        raw = f"<stance>done with it</stance>\n<response>{END_SIGNAL}</response>"
        return [Generation(raw, finish_reason="stop", completion_tokens=9) for _ in prompts]

    async def aclose(self) -> None:
        return None


def _ask(end_text: str, **request) -> openai.types.chat.ChatCompletion:
    app = build_app(
        UserSimulator(EndingGenerator(), mode="grpo"), model_name="m", end_text=end_text
    )

    async def go():
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
        client = openai.AsyncOpenAI(base_url="http://test/v1", api_key="x", http_client=http)
        try:
            return await client.chat.completions.create(
                model="m", messages=[{"role": "assistant", "content": "Anything else?"}], **request
            )
        finally:
            await client.close()

    return asyncio.run(go())


def test_an_ended_conversation_is_reported_in_the_extension_and_the_content() -> None:
    [choice] = _ask(END_SIGNAL).choices
    assert choice.message.content == END_SIGNAL and choice.finish_reason == "stop"
    extension = choice.model_extra["humanlm"]
    assert extension["ended"] is True and extension["states"] == {"stance": "done with it"}


def test_the_end_text_can_be_what_a_harness_expects() -> None:
    [choice] = _ask("###STOP###").choices
    assert choice.message.content == "###STOP###" and choice.model_extra["humanlm"]["ended"]
