"""A tiny assistant trained 2 GRPO steps (TRL, CPU) against a scripted simulated user, graded by
a scripted LLM judge over real HTTP: the user's tokens get no loss, both stop reasons occur and
the episode reward is logged."""

from __future__ import annotations

import json
from collections import Counter
from functools import partial

import pytest
import torch

from humanlm.assistant_rl import (
    ConversationJudge,
    Episode,
    UserRollout,
    judge_reward,
    task_reward,
    user_end_reward,
)
from humanlm.assistant_rl.episode import user_turn_ids
from humanlm.llm.limits import RetryPolicy
from humanlm.simulate import Scenario
from humanlm.testing import RecordedRequest, ScriptedServer
from humanlm.train.cpu import enable_compact_lm_head_on_cpu
from tests.assistant_rl.conftest import USER_TEXT

OPENING = ({"role": "user", "content": "Hello, can you help me?"},)
SCENARIOS = [
    Scenario("ends", "A PATIENT person.", "a greeting", OPENING),  # ends after one answer
    Scenario("keeps", "A curious person.", "learn about cats", OPENING),  # runs to max_turns
]
MAX_TURNS = 3
TURN_TOKENS = 6  # the per-turn token limit
STEPS = 2


def grade(request: RecordedRequest) -> str:
    """The scripted judge: 8 when the person ended the conversation, else 2."""
    score = 8 if "ended because the person ended it" in request.prompt else 2
    return json.dumps({"reason": "scripted", "score": score})


def concise(e: Episode) -> float:
    """The task check: fewer characters of assistant text score higher."""
    chars = sum(len(m["content"]) for m in e.conversation() if m["role"] == "assistant")
    return 1.0 / (1.0 + chars / 10)


@pytest.mark.slow
def test_grpo_against_a_simulated_user(
    tiny_model_dir, assistant_tokenizer, user, tmp_path, one_torch_thread, monkeypatch
):
    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is experimental in TRL
    enable_compact_lm_head_on_cpu()  # what `humanlm train` does on a CPU
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    rollout = UserRollout(user=user, scenarios=SCENARIOS, max_turns=MAX_TURNS)
    played: list[dict] = []

    def recording_rollout(prompts, trainer):
        out = rollout(prompts, trainer)
        played.append(out)
        return out

    with ScriptedServer(reply_fn=grade) as judge_server:
        judge = ConversationJudge.from_spec(
            f"openai:judge@{judge_server.base_url}", retry=RetryPolicy(max_retries=1)
        )
        args = GRPOConfig(
            output_dir=str(tmp_path / "run"),
            max_steps=STEPS,
            per_device_train_batch_size=4,
            num_generations=2,
            max_completion_length=96,
            generation_kwargs={"max_new_tokens": TURN_TOKENS},  # per assistant turn
            learning_rate=1e-2,
            beta=0.0,
            logging_steps=1,
            report_to="none",
            save_strategy="no",
            use_cpu=True,
            seed=0,
            reward_weights=[1.0, 1.0, 1.0],
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=[
                partial(judge_reward, judge=judge),
                partial(task_reward, check=concise),
                user_end_reward,
            ],
            args=args,
            train_dataset=rollout.dataset(system="You are a helpful assistant."),
            processing_class=assistant_tokenizer,
            rollout_func=recording_rollout,
        )
        # What the loss reads: TRL's batch after generation and scoring.
        batches = []
        score = trainer._generate_and_score_completions

        def recording_score(inputs):
            batch = score(inputs)
            batches.append(batch)
            return batch

        trainer._generate_and_score_completions = recording_score
        try:
            trainer.train()
        finally:
            rollout.close()
        judged = len(judge_server.chat_requests)

    # Each rollout call got a GRPO group of each scenario; both stop reasons occurred.
    assert len(played) == STEPS and judged == STEPS * 4
    episodes = [e for out in played for e in out["episode"]]
    assert Counter(e.scenario_id for e in episodes) == {"ends": 2 * STEPS, "keeps": 2 * STEPS}
    reasons = {e.scenario_id: e.stop_reason for e in episodes}
    assert reasons == {"ends": "user_ended", "keeps": "max_turns"}
    assert all(e.assistant_turns == MAX_TURNS for e in episodes if e.scenario_id == "keeps")

    # The mask TRL receives is the rollout's env_mask, and its zeros are exactly the user's turns.
    user_turn = user_turn_ids(assistant_tokenizer, USER_TEXT)
    for out, batch in zip(played, batches, strict=True):
        assert "tool_mask" in batch  # TRL multiplies it into the loss mask
        for row, (ids, mask, e) in enumerate(
            zip(out["completion_ids"], out["env_mask"], out["episode"], strict=True)
        ):
            received = batch["tool_mask"][row, : len(mask)].tolist()
            assert received == mask
            assert batch["completion_ids"][row, : len(ids)].tolist() == ids
            masked = [t for t, m in zip(ids, mask, strict=True) if m == 0]
            sampled = [t for t, m in zip(ids, mask, strict=True) if m == 1]
            assert len(sampled) == TURN_TOKENS * e.assistant_turns
            assert USER_TEXT not in assistant_tokenizer.decode(sampled)
            # Masked: each user turn, after the end-of-turn token that closes an assistant turn
            # cut at the per-turn limit.
            for _ in range(e.assistant_turns - 1):
                if masked[0] == assistant_tokenizer.eos_token_id:
                    masked = masked[1:]
                assert masked[: len(user_turn)] == user_turn
                masked = masked[len(user_turn) :]
            assert masked == []

    # The episode reward and the stop reasons are logged each step.
    logs = [h for h in trainer.state.log_history if "reward" in h]
    assert len(logs) == STEPS
    for log in logs:
        assert log["episodes/user_ended"] == 0.5 and log["episodes/max_turns"] == 0.5
        assert log["rewards/judge_reward/mean"] == pytest.approx((0.8 + 0.2) / 2)
        assert log["rewards/user_end_reward/mean"] == 0.5
        parts = ("judge_reward", "task_reward", "user_end_reward")
        assert log["reward"] == pytest.approx(sum(log[f"rewards/{p}/mean"] for p in parts))
    # The task check varies within groups, so the policy moved.
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert changed
