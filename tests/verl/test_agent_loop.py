"""The humanlm_agent loop: registered by name, renders our template per item (hetero thinking),
stops at the closing tags; and the whole rollout-to-reward path through verl's own
AgentLoopWorker and RewardLoopWorker, with a fake LLM server and a scripted judge."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import pytest

pytest.importorskip("verl", reason="verl is not installed (pip install 'humanlm[verl]')")

import numpy as np  # noqa: E402
from verl.experimental.agent_loop.agent_loop import (  # noqa: E402
    DictConfigWrap,
    _agent_loop_registry,
)
from verl.workers.rollout.replica import TokenOutput  # noqa: E402

from humanlm.states import STATES  # noqa: E402
from humanlm.testing import ScriptedServer  # noqa: E402
from humanlm.testing.judge_replies import (  # noqa: E402
    candidates_in,
    judge_reply_fn,
    real_reply_in,
)
from humanlm.verl.agent_loop import (  # noqa: E402
    AGENT_NAME,
    STOP_STRINGS,
    HumanlmAgentLoop,
    build_prompt_ids,
    build_prompt_text,
    with_stop_strings,
)
from humanlm.verl.dataset import HumanlmDataset  # noqa: E402
from humanlm.verl.reward import EXTRA_KEYS  # noqa: E402

from .conftest import configured, items_of_state, run, tagged  # noqa: E402


class FakeLLM:
    """Stands in for verl's LLM server client: answers each prompt with ``answer(prompt_ids)``."""

    def __init__(self, tokenizer: Any, answer: Any, *, jitter_s: float = 0.0):
        self.tokenizer, self.answer, self.jitter_s = tokenizer, answer, jitter_s
        self.calls: list[dict[str, Any]] = []
        self._rng = random.Random(0)

    async def generate(
        self, request_id: str, *, prompt_ids: list[int], sampling_params: dict, **kw
    ):
        self.calls.append({"prompt_ids": prompt_ids, "sampling_params": sampling_params, **kw})
        if self.jitter_s:
            await asyncio.sleep(self._rng.random() * self.jitter_s)  # finish out of order
        text = self.answer(prompt_ids)
        return TokenOutput(token_ids=self.tokenizer.encode(text, add_special_tokens=False))


def make_loop(cfg: Any, tokenizer: Any, server: Any) -> HumanlmAgentLoop:
    return HumanlmAgentLoop(
        trainer_config=DictConfigWrap(cfg),
        server_manager=server,
        tokenizer=tokenizer,
        processor=None,
        dataset_cls=HumanlmDataset,
        data_config=DictConfigWrap(cfg.data),
        hf_model_type="qwen3",
    )


def test_loop_is_registered_under_its_name() -> None:
    assert _agent_loop_registry[AGENT_NAME] == {
        "_target_": "humanlm.verl.agent_loop.HumanlmAgentLoop"
    }


def test_stop_strings_are_every_closing_tag() -> None:
    assert set(STOP_STRINGS) == {s.close_tag for s in STATES.values()}
    params = {"temperature": 0.8, "top_p": 1.0}
    assert with_stop_strings(params, "vllm") == {
        **params,
        "stop": list(STOP_STRINGS),
        "include_stop_str_in_output": True,
    }
    assert with_stop_strings(params, "sglang")["no_stop_trim"] is True
    assert "include_stop_str_in_output" not in with_stop_strings(params, "trtllm")
    assert params == {"temperature": 0.8, "top_p": 1.0}  # the caller's dict is untouched


@pytest.mark.parametrize("state", ["stance", "response"])
def test_run_renders_our_template_and_stops_at_tags(base_config, tokenizer, train_dataset, state):
    (item,) = items_of_state(train_dataset, state, 1)
    long_answer = tagged(state, "word " * 200)  # longer than the 64-token response budget
    server = FakeLLM(tokenizer, lambda ids: long_answer)
    loop = make_loop(base_config, tokenizer, server)
    output = run(loop.run({"temperature": 0.8}, **item))

    (call,) = server.calls
    thinking = state == "response"
    assert call["prompt_ids"] == build_prompt_ids(tokenizer, item["raw_prompt"], thinking=thinking)
    text = tokenizer.decode(call["prompt_ids"])
    assert text == build_prompt_text(item["raw_prompt"], thinking=thinking)
    assert text.endswith("<think>\n" if thinking else "<think>\n\n</think>\n\n")
    assert call["sampling_params"]["stop"] == list(STOP_STRINGS)
    assert call["sampling_params"]["include_stop_str_in_output"] is True
    assert call["sampling_params"]["temperature"] == 0.8
    assert output.prompt_ids == call["prompt_ids"]
    assert len(output.response_ids) == base_config.actor_rollout_ref.rollout.response_length
    assert output.response_mask == [1] * len(output.response_ids)
    assert output.num_turns == 2


def _state_of(tokenizer: Any, prompt_ids: list[int]) -> str:
    """Which state a prompt asks for: its system prompt names exactly one output tag."""
    system = tokenizer.decode(prompt_ids).split("<|im_end|>")[0]
    (state,) = [s for s in STATES if f"<{s}>" in system]
    return state


class _Handle:
    """A stand-in for a Ray actor handle: ``await handle.compute_score.remote(data)``."""

    def __init__(self, worker: Any):
        self.compute_score = type("Method", (), {"remote": staticmethod(worker.compute_score)})


def test_rollouts_flow_through_verl_workers_to_one_judge_call_per_group(
    base_config, tokenizer, train_dataset
) -> None:
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker
    from verl.protocol import DataProto
    from verl.utils.dataset.rl_dataset import collate_fn

    states = ["stance", "response", "goal"]
    items = [items_of_state(train_dataset, s, 1)[0] for s in states]
    rng = random.Random(1)

    def answer(prompt_ids: list[int]) -> str:
        state = _state_of(tokenizer, prompt_ids)
        return tagged(state, rng.choice(["backs the poster", "mild irritation", "asks for help"]))

    with ScriptedServer(reply_fn=judge_reply_fn()) as judge_server:
        cfg = configured(
            base_config,
            {"reward.reward_kwargs.judge.spec": f"openai:judge@{judge_server.base_url}"},
        )
        llm = FakeLLM(tokenizer, answer, jitter_s=0.05)

        async def go() -> Any:
            reward_worker = RewardLoopWorker(cfg)
            worker = AgentLoopWorker(cfg, llm, None, [_Handle(reward_worker)])
            batch = DataProto.from_single_dict(collate_fn(items))
            batch.non_tensor_batch["uid"] = np.array(
                [str(uuid.uuid4()) for _ in items], dtype=object
            )
            batch = batch.repeat(4, interleave=True)  # what verl's trainer does before rollout
            return batch, await worker.generate_sequences(batch)

        batch, output = run(go(), timeout=40)
        requests = judge_server.chat_requests

    assert len(llm.calls) == 12
    assert all(c["sampling_params"]["stop"] == list(STOP_STRINGS) for c in llm.calls)
    assert len(requests) == 3  # one judge call per (uid, state) group of 4
    truths = sorted(real_reply_in(r.prompt) for r in requests)
    assert truths == sorted(item["reward_model"]["ground_truth"] for item in items)
    for request in requests:
        assert 1 <= len(candidates_in(request.prompt)) <= 4  # identical candidates judged once

    assert output.meta_info["reward_extra_keys"] == list(EXTRA_KEYS)
    scores = output.batch["rm_scores"].sum(-1).tolist()
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert list(output.non_tensor_batch["valid_format"]) == [1.0] * 12
    assert list(output.non_tensor_batch["group_complete"]) == [1.0] * 12
    assert list(output.non_tensor_batch["judge_failed"]) == [0.0] * 12
    for i, info in enumerate(batch.non_tensor_batch["extra_info"]):
        state = info["state"]
        assert output.non_tensor_batch[f"state_reward/{state}"][i] == pytest.approx(scores[i])
        others = [s for s in STATES if s != state]
        assert all(output.non_tensor_batch[f"state_reward/{s}"][i] is None for s in others)
