"""Episodes against a simulated user behind real HTTP: stop reasons, token masks, openings."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from typing import Any

import pytest

from humanlm.assistant_rl.episode import (
    check_assistant_template,
    play_episodes,
    user_turn_ids,
)
from humanlm.errors import ConfigError
from humanlm.simulate import Scenario
from humanlm.states.template import load_chat_template
from tests.assistant_rl.conftest import USER_TEXT

OPENING = ({"role": "user", "content": "Hello, can you help me?"},)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def scripted_policy(tokenizer: Any, text: str = "Sure, here it is.", *, close: bool = True):
    """A policy that always writes ``text`` (closing its turn with the end-of-turn token)."""
    ids = tokenizer.encode(text, add_special_tokens=False) + ([tokenizer.eos_token_id] * close)
    calls: list[list[list[int]]] = []

    def generate(batch: list[list[int]]) -> tuple[list[list[int]], None]:
        calls.append(batch)
        return [list(ids) for _ in batch], None

    generate.calls = calls  # type: ignore[attr-defined]
    return generate


def play(scenarios, *, user, tokenizer, loop, generate=None, max_turns=3, max_tokens=500):
    try:
        return play_episodes(
            scenarios,
            system=["You are a helpful assistant."] * len(scenarios),
            user=user,
            tokenizer=tokenizer,
            generate=generate or scripted_policy(tokenizer),
            run_async=loop.run_until_complete,
            max_turns=max_turns,
            max_tokens=max_tokens,
        )
    finally:
        loop.run_until_complete(user.aclose())


def test_each_stop_reason_is_recorded(user, user_server, assistant_tokenizer, loop):
    scenarios = [
        Scenario("ends", "A PATIENT person.", "a greeting", OPENING),  # ends after one answer
        Scenario("keeps", "A curious person.", "", OPENING),  # never ends: max_turns
        Scenario("broken", "A BROKEN person.", "", OPENING),  # the simulator is refused
        Scenario(
            "silent", "A SILENT person.", "", OPENING
        ),  # writes nothing, also when asked again
    ]
    played = play(scenarios, user=user, tokenizer=assistant_tokenizer, loop=loop, max_turns=3)
    got = {p.episode.scenario_id: p.episode for p in played}
    assert {k: (e.stop_reason, e.assistant_turns, e.user_turns) for k, e in got.items()} == {
        "ends": ("user_ended", 1, 0),
        "keeps": ("max_turns", 3, 2),
        "broken": ("user_error", 1, 0),
        "silent": ("empty_user_turn", 1, 0),
    }
    assert got["broken"].error == "rejected"
    assert got["ends"].goal == "a greeting" and got["ends"].persona == "A PATIENT person."
    silent_asks = [r for r in user_server.chat_requests if "SILENT" in r.messages[0]["content"]]
    assert len(silent_asks) == 3  # asked again twice
    # max_turns: the user is not asked after the last assistant turn.
    keeps_asks = [r for r in user_server.chat_requests if "curious" in r.messages[0]["content"]]
    assert len(keeps_asks) == 2


def test_the_user_tokens_and_only_they_are_masked(user, assistant_tokenizer, loop):
    tokenizer = assistant_tokenizer
    scenario = Scenario("keeps", "A curious person.", "", OPENING)
    [tokens] = play([scenario], user=user, tokenizer=tokenizer, loop=loop, max_turns=3)
    episode = tokens.episode
    assert [m["role"] for m in episode.messages] == ["system"] + ["user", "assistant"] * 3
    assert len(tokens.env_mask) == len(tokens.completion_ids)
    # The token sequence is the chat template's rendering of the whole conversation.
    whole = tokenizer.apply_chat_template(list(episode.messages), tokenize=True, return_dict=False)
    sequence = tokens.prompt_ids + tokens.completion_ids
    assert sequence == whole[: len(sequence)] and tokenizer.decode(whole[len(sequence) :]) == "\n"
    masked = [t for t, m in zip(tokens.completion_ids, tokens.env_mask, strict=True) if m == 0]
    sampled = [t for t, m in zip(tokens.completion_ids, tokens.env_mask, strict=True) if m == 1]
    assert masked == user_turn_ids(tokenizer, USER_TEXT) * 2
    assert tokenizer.decode(sampled).count("Sure, here it is.") == 3
    assert USER_TEXT not in tokenizer.decode(sampled)
    assert tokens.logprobs is None  # the scripted policy gives none


def test_a_turn_cut_by_the_token_limit_is_closed_without_loss(user, assistant_tokenizer, loop):
    tokenizer = assistant_tokenizer
    generate = scripted_policy(tokenizer, "Sure", close=False)
    scenario = Scenario("keeps", "A curious person.", "", OPENING)
    [tokens] = play([scenario], user=user, tokenizer=tokenizer, loop=loop, generate=generate)
    first = len(tokenizer.encode("Sure", add_special_tokens=False))
    assert tokens.completion_ids[first] == tokenizer.eos_token_id
    assert tokens.env_mask[: first + 1] == [1] * first + [0]


def test_the_token_budget_stops_an_episode(user, assistant_tokenizer, loop):
    tokenizer = assistant_tokenizer
    scenario = Scenario("keeps", "A curious person.", "", OPENING)
    # Room for the first answer, not for the user's turn after it.
    answer = len(tokenizer.encode("Sure, here it is.", add_special_tokens=False)) + 1
    [tokens] = play([scenario], user=user, tokenizer=tokenizer, loop=loop, max_tokens=answer + 3)
    assert tokens.episode.stop_reason == "length"
    assert tokens.env_mask == [1] * answer
    # A turn longer than the budget is cut at it.
    [cut] = play([scenario], user=user, tokenizer=tokenizer, loop=loop, max_tokens=3)
    assert cut.episode.stop_reason == "length" and len(cut.completion_ids) == 3


def test_the_simulated_user_opens_a_scenario_without_opening_turns(user, assistant_tokenizer, loop):
    tokenizer = assistant_tokenizer
    generate = scripted_policy(tokenizer)
    opens = Scenario("opens", "A curious person.", "learn about cats")
    broken = Scenario("broken", "A BROKEN person.", "")
    played = play([opens, broken], user=user, tokenizer=tokenizer, loop=loop, generate=generate)
    first, failed = played
    assert first.episode.messages[1] == {"role": "user", "content": USER_TEXT}
    assert USER_TEXT in tokenizer.decode(first.prompt_ids)  # the opening is prompt, not completion
    assert first.episode.user_turns == 3 and first.episode.stop_reason == "max_turns"
    # A user who cannot open: no generation for it, one end-of-turn token with no loss.
    assert failed.episode.stop_reason == "user_error" and failed.episode.assistant_turns == 0
    assert failed.completion_ids == [tokenizer.eos_token_id] and failed.env_mask == [0]
    assert all(len(batch) == 1 for batch in generate.calls)


def test_the_simulator_template_is_refused_as_the_assistant_template(assistant_tokenizer):
    simulator_tokenizer = copy.deepcopy(assistant_tokenizer)
    simulator_tokenizer.chat_template = load_chat_template()  # humanlm's, the tiny model's own
    with pytest.raises(ConfigError, match="not an assistant turn"):
        check_assistant_template(simulator_tokenizer)


# Like Qwen3's template: the last assistant turn after the last user message gets an empty think
# block, which disappears once a user turn follows it.
THINK_BLOCK_TEMPLATE = (
    "{%- set ns = namespace(last=-1) -%}"
    "{%- for m in messages -%}{%- if m['role'] == 'user' -%}{%- set ns.last = loop.index0 -%}"
    "{%- endif -%}{%- endfor -%}"
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'assistant' and loop.index0 > ns.last -%}"
    "{{- '<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n' + m['content'] + '<|im_end|>\\n' -}}"
    "{%- else -%}"
    "{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' -}}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


@pytest.mark.parametrize("template", ["chatml", "think_block"])
def test_a_user_turn_is_the_templates_own_tokens(assistant_tokenizer, template):
    tokenizer = copy.deepcopy(assistant_tokenizer)
    if template == "think_block":
        tokenizer.chat_template = THINK_BLOCK_TEMPLATE
    expected = "\n<|im_start|>user\nhello there<|im_end|>\n<|im_start|>assistant\n"
    ids = user_turn_ids(tokenizer, "hello there")
    assert ids == tokenizer.encode(expected, add_special_tokens=False)
