"""TRL options of a run, and vLLM-style rollouts whose stopping token runs past the closing tag."""

from __future__ import annotations

import asyncio

from transformers import AutoTokenizer

from humanlm.config import load_config
from humanlm.demo import demo_config_path
from humanlm.testing.judge_replies import judge_reply_fn
from humanlm.testing.server import ScriptedServer
from humanlm.train.run import _state_reward
from humanlm.train.trainers import GRPO_DEFAULTS, closing_tags, trl_options

CONTEXT = [{"name": "OP", "content": "AITA for keeping the deposit?"}]


def test_trl_options_layer_defaults_user_and_stop_strings():
    cfg = load_config(
        demo_config_path(), ["grpo.use_vllm=true", "model.gradient_checkpointing=true"]
    )
    name, options = trl_options(cfg)
    assert name == "GRPOConfig"
    assert options["beta"] == GRPO_DEFAULTS["beta"]  # our default
    assert options["max_completion_length"] == cfg.grpo["max_completion_length"]  # the config wins
    assert options["gradient_checkpointing"] is True
    assert options["generation_kwargs"]["stop"] == closing_tags()
    name, options = trl_options(load_config(demo_config_path(), ["mode=sft"]))
    assert name == "SFTConfig" and "generation_kwargs" not in options


def test_grpo_max_completion_length_defaults_to_the_mode_budget():
    for mode, budget in (("grpo", 512), ("grpo-think", 1024)):
        cfg = load_config(demo_config_path(), [f"mode={mode}"])
        cfg.grpo.pop("max_completion_length", None)
        assert trl_options(cfg)[1]["max_completion_length"] == budget


def test_a_merged_token_rollout_from_vllm_is_scored_not_zeroed(tiny_model_dir):
    # vLLM stops on the token that completes "</stance>"; Qwen's vocabulary merges ">" with
    # the next "<", so the ids end in "><" and the decoded completion ends "</stance><".
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = tokenizer.encode("<stance>backs OP fully</stance><", add_special_tokens=False)
    assert tokenizer.decode(ids[-1:]) == "><"
    completion = tokenizer.decode(ids, skip_special_tokens=True)
    assert completion.endswith("</stance><")

    with ScriptedServer(reply_fn=judge_reply_fn(lambda cand, real: 0.7)) as server:
        overrides = [f"judge.spec=openai:scripted@{server.base_url}", "judge.timeout_s=10"]
        columns = {
            "prompts": ["p", "p"],
            "completions": [completion, "<stance>backs OP fully</stance>"],
            "example_id": ["e1", "e1"],
            "state": ["stance", "stance"],
            "ground_truth": ["NTA, she owes you.", "NTA, she owes you."],
            "context": [CONTEXT, CONTEXT],
        }
        cfg = load_config(demo_config_path(), [*overrides, "grpo.use_vllm=true"])
        _, reward = _state_reward(cfg)
        assert asyncio.run(reward(**columns)) == [0.7, 0.7]
        # Without stop strings (HF generate) text after the tag is the model's own: a format error.
        _, reward = _state_reward(load_config(demo_config_path(), overrides))
        assert asyncio.run(reward(**columns)) == [0.0, 0.7]
