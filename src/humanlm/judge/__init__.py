"""The judge: scores simulated states and responses against the real reply.

- ``build_judge(JudgeConfig(spec, ...))`` -> a ``Judge`` (``openai:MODEL[@BASE_URL]``,
  ``litellm:PROVIDER/MODEL``, ``embedding:minilm``);
- ``Judge.judge_group(...)`` -> ``GroupVerdict``: the n rollouts of one (example, state), one call;
- ``Judge.judge_aspects(...)`` -> ``AspectVerdict``: one response on all six latent states;
- ``state_reward`` -> the GRPO reward for TRL (bind ``judge`` with ``functools.partial``);
- ``realism_reward`` -> the optional GRPO reward of how often a detector takes a rollout for the
  real reply (``humanlm.judge.realism``);
- ``run_judge`` -> the ``humanlm judge`` command on a JSONL file;
- ``check_judge`` -> one small judgement before training (a refused request stops the run);
- ``Ledger`` -> calls, tokens, failures, latency and cost of a run.
"""

from humanlm.config import JudgeConfig
from humanlm.judge.batch import JudgeRunResult, run_judge
from humanlm.judge.build import Judge, build_judge, parse_spec
from humanlm.judge.preflight import acheck_judge, check_judge
from humanlm.judge.realism import realism_reward
from humanlm.judge.reward import state_reward
from humanlm.judge.verdict import AspectVerdict, GroupVerdict, Verdict
from humanlm.llm.cache import LLMCache
from humanlm.llm.ledger import DEFAULT_PRICES, Ledger, Price
from humanlm.llm.limits import RateLimiter, RetryPolicy

__all__ = [
    "DEFAULT_PRICES",
    "AspectVerdict",
    "GroupVerdict",
    "Judge",
    "JudgeConfig",
    "LLMCache",
    "JudgeRunResult",
    "Ledger",
    "Price",
    "RateLimiter",
    "RetryPolicy",
    "Verdict",
    "acheck_judge",
    "build_judge",
    "check_judge",
    "parse_spec",
    "realism_reward",
    "run_judge",
    "state_reward",
]
