"""The process ``test_grpo_vllm`` starts: ``humanlm train`` with TRL's colocated vLLM on the CPU.

vLLM's colocated engine sets rank variables and a process group in the process that trains, so
it runs here, away from the test session. With the CPU patch applied (``vllm_cpu_patch``), it
trains, then checks TRL's own weight sync: it compares vLLM's log-probabilities of a training
prompt with the policy's before and after ``sync_weights``, and with the untrained model's.

Run (from the repository root):
    VLLM_CPU_KVCACHE_SPACE=1 python -m tests.train.grpo_vllm_child REPORT.json RUN_DIR KEY=VALUE...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _policy_logprobs(model: Any, ids: list[int]) -> tuple[list[float], dict[int, float]]:
    """Log-probability of each prompt token after the first, and of every next token."""
    import torch

    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    prompt = [logprobs[i - 1, ids[i]].item() for i in range(1, len(ids))]
    return prompt, dict(enumerate(logprobs[-1].tolist()))


def _vllm_logprobs(llm: Any, ids: list[int]) -> tuple[list[float], dict[int, float]]:
    """The same from vLLM: prompt log-probabilities and the top 20 next tokens."""
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=1, temperature=1.0, prompt_logprobs=0, logprobs=20)
    (out,) = llm.generate([{"prompt_token_ids": ids}], sampling_params=params, use_tqdm=False)
    prompt = [out.prompt_logprobs[i][ids[i]].logprob for i in range(1, len(ids))]
    return prompt, {t: lp.logprob for t, lp in out.outputs[0].logprobs[0].items()}


def _gap(vllm_side: tuple[list[float], dict[int, float]], policy: Any, ids: list[int]) -> float:
    """Largest log-probability difference between vLLM and ``policy`` on ``ids``."""
    prompt, top = vllm_side
    want_prompt, want_next = _policy_logprobs(policy, ids)
    gaps = [abs(a - b) for a, b in zip(prompt, want_prompt, strict=True)]
    gaps += [abs(lp - want_next[t]) for t, lp in top.items()]
    return max(gaps)


def main(report_path: str, run_dir: str, *overrides: str) -> None:
    import vllm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import humanlm.train.run as train_run
    from humanlm.config import load_config
    from humanlm.demo import demo_config_path
    from humanlm.testing.judge_replies import judge_reply_fn
    from humanlm.testing.server import ScriptedServer
    from tests.train.vllm_cpu_patch import apply_vllm_cpu_patch

    # vLLM would downcast the float32 checkpoint to bfloat16; the sync check compares with the
    # float32 policy, so vLLM keeps float32 too.
    apply_vllm_cpu_patch(dtype="float32")
    trainers: list[Any] = []
    start: dict[str, Any] = {}  # the policy's weights when GRPO starts (after the warm-up)
    build = train_run.build_grpo_trainer

    def keep_trainer(**kwargs: Any) -> Any:
        start.update({k: v.detach().clone() for k, v in kwargs["model"].state_dict().items()})
        trainers.append(build(**kwargs))
        return trainers[-1]

    train_run.build_grpo_trainer = keep_trainer
    generated: list[int] = []  # prompts per call of vLLM's generate
    generate = vllm.LLM.generate

    def count_prompts(self: Any, prompts: Any, *args: Any, **kwargs: Any) -> Any:
        generated.append(len(prompts))
        return generate(self, prompts, *args, **kwargs)

    vllm.LLM.generate = count_prompts

    # Scores that differ between candidates of a group (by length), so GRPO has a signal even
    # where the real reply and a state share no words.
    scorer = judge_reply_fn(lambda candidate, real: 0.1 + (len(candidate) % 8) / 10)
    with ScriptedServer(reply_fn=scorer) as server:
        cfg = load_config(
            demo_config_path(),
            [*overrides, f"judge.spec=openai:scripted@{server.base_url}", "judge.timeout_s=120"],
        )
        result = train_run.run_train(cfg, run_dir=Path(run_dir))
    rollouts = list(generated)

    (trainer,) = trainers
    llm = trainer.vllm_generation.llm
    policy = trainer.model.eval()
    tokenizer = AutoTokenizer.from_pretrained(cfg.model.path)
    ids = tokenizer(trainer.train_dataset[0]["prompt"], add_special_tokens=False)["input_ids"]
    stale = _gap(_vllm_logprobs(llm, ids), policy, ids)  # the last update is not synced yet
    trainer.vllm_generation.sync_weights()
    synced = _vllm_logprobs(llm, ids)
    untrained = AutoModelForCausalLM.from_pretrained(cfg.model.path).eval()
    trained = policy.state_dict()
    report = {
        "global_step": result.global_step,
        "changed_by_grpo": sorted(k for k, v in start.items() if not v.equal(trained[k])),
        "metrics_path": str(result.metrics_path),
        "model_dir": str(result.model_dir),
        "engine": type(llm).__module__ + "." + type(llm).__name__,
        "rollout_prompts": rollouts,
        "prompt_tokens": len(ids),
        "gap_before_sync": stale,
        "gap_after_sync": _gap(synced, policy, ids),
        "gap_to_untrained": _gap(synced, untrained, ids),
    }
    Path(report_path).write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:])
