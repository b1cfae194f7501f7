"""The ``humanlm_agent`` agent loop: one rollout of one (example, state) item on verl.

verl's single-turn loop renders every prompt with the tokenizer's chat template and one global set
of template arguments. HumanLM needs two things per item instead (paper section 3): our multi-role
template (context authors as named user turns, the model speaking as the user HUMAN) and hetero
thinking (an open ``<think>`` block for the response, an empty pre-filled one for the six states).
So this loop renders the prompt itself with the template shipped in ``humanlm.states`` -- no
``custom_chat_template`` string travels through Hydra -- and asks the rollout server to stop at the
closing tags.

Importing this module registers the loop under ``humanlm_agent``; ``humanlm.verl.dataset`` imports
it, so every process that loads the dataset class (verl's agent-loop workers do) knows the name.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import uuid4

from verl.experimental.agent_loop.agent_loop import (
    AgentLoopBase,
    AgentLoopMetrics,
    AgentLoopOutput,
    register,
)
from verl.utils.profiler import simple_timer

from humanlm.states import STATES
from humanlm.states.template import render_chat

__all__ = [
    "AGENT_NAME",
    "STOP_STRINGS",
    "HumanlmAgentLoop",
    "build_prompt_ids",
    "build_prompt_text",
    "with_stop_strings",
]

logger = logging.getLogger(__name__)

AGENT_NAME = "humanlm_agent"
# Every closing tag, as in the TRL path: a rollout that opens the wrong tag stops early and
# scores 0 on format instead of running on to the length limit.
STOP_STRINGS: tuple[str, ...] = tuple(s.close_tag for s in STATES.values())


def build_prompt_text(messages: Sequence[Mapping[str, Any]], *, thinking: bool) -> str:
    """The exact prompt text of one item: our template, generation prompt included."""
    return render_chat([dict(m) for m in messages], thinking=thinking)


def build_prompt_ids(
    tokenizer: Any, messages: Sequence[Mapping[str, Any]], *, thinking: bool
) -> list[int]:
    """Token ids of ``build_prompt_text`` (no BOS or other special tokens added)."""
    text = build_prompt_text(messages, thinking=thinking)
    return list(tokenizer.encode(text, add_special_tokens=False))


def with_stop_strings(sampling_params: Mapping[str, Any], engine: str | None) -> dict[str, Any]:
    """A copy of verl's sampling parameters that stops at the closing tags and keeps them.

    The closing tag must stay in the decoded text: the reward's strict format check needs it.
    vLLM and SGLang name that switch differently; other engines get the stop list only.
    """
    params = dict(sampling_params)
    params["stop"] = list(STOP_STRINGS)
    if engine == "vllm":
        params["include_stop_str_in_output"] = True
    elif engine == "sglang":
        params["no_stop_trim"] = True
    return params


@register(AGENT_NAME)
class HumanlmAgentLoop(AgentLoopBase):
    """Single-turn rollout of one HumanLM item (verl requires subclassing ``AgentLoopBase``).

    Reads from the dataset row: ``raw_prompt`` (system prompt + context messages) and
    ``extra_info.thinking`` (open a think block for the response). Everything else in the row is
    passed through by verl to the reward manager.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.response_length = self.rollout_config.response_length
        self.engine = self.rollout_config.get("name")

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        info = kwargs.get("extra_info") or {}
        thinking = bool(info.get("thinking", False))
        messages = list(kwargs["raw_prompt"])
        prompt_ids = await asyncio.get_running_loop().run_in_executor(
            None, lambda: build_prompt_ids(self.tokenizer, messages, thinking=thinking)
        )
        prompt_ids = self._cap_text_prompt_length(prompt_ids)

        priority = int(kwargs.get("priority", 0))
        deterministic = bool(self.rollout_config.get("full_determinism", False))
        request_id = f"det-{priority}" if deterministic else uuid4().hex
        timing: dict[str, float] = {}
        with simple_timer("generate_sequences", timing):
            output = await self.server_manager.generate(
                request_id=request_id,
                prompt_ids=prompt_ids,
                sampling_params=with_stop_strings(sampling_params, self.engine),
                priority=priority,
            )
        response_ids = list(output.token_ids)[: self.response_length]
        log_probs = list(output.log_probs)[: self.response_length] if output.log_probs else None
        routed = output.routed_experts
        num_preempted = output.num_preempted if output.num_preempted is not None else -1
        extra_fields = dict(output.extra_fields or {})
        # The same extra keys as verl's own loops, so batches from several loops concatenate.
        extra_fields.update({"turn_scores": [], "tool_rewards": []})
        return AgentLoopOutput(
            prompt_ids=prompt_ids,
            response_ids=response_ids,
            response_mask=[1] * len(response_ids),
            response_logprobs=log_probs,
            routed_experts=(
                routed[: len(prompt_ids) + self.response_length] if routed is not None else None
            ),
            num_turns=2,
            metrics=AgentLoopMetrics(
                generate_sequences=timing["generate_sequences"], num_preempted=num_preempted
            ),
            extra_fields=extra_fields,
        )
