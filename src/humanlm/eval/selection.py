"""The evaluation set: the first N test rows whose prompt fits the dataset's token limit.

The paper's reference dropped over-long prompts (5,120 tokens for reddit and youtube, 7,168 for
the others; ``humanlm.data.sources.DATASETS``) before taking the first 2,000 test rows (5,000 for
reddit), so the rows evaluated are not simply the first N. The prompt measured is the one the
simulator gets (the response prompt, rendered with our template), in the tokenizer of the model
under test. Rows are measured in order and only until N fit, so a large split costs little.

An ``openai:`` model has no local tokenizer: pass ``tokenizer`` (a local folder) to filter, or
the rows are taken unfiltered and the results carry a note saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from humanlm.data.sources import DATASETS
from humanlm.errors import ConfigError
from humanlm.llm.specs import parse_spec
from humanlm.states import RESPONSE
from humanlm.states.examples import render_prompt

__all__ = ["max_prompt_tokens", "select_eval_examples", "tokenizer_for"]

logger = logging.getLogger(__name__)


def max_prompt_tokens(data_source: str | None) -> int:
    """The prompt-length limit of a dataset (``generic``'s for unknown sources)."""
    facts = DATASETS.get(str(data_source), DATASETS["generic"])
    return int(facts["max_prompt_tokens"])


def tokenizer_for(model: str, tokenizer: str | None) -> tuple[Any | None, str | None]:
    """The tokenizer that measures prompts, and where it came from (``None``: none available).

    Raises:
        ConfigError: the named tokenizer (or the model's own) cannot be loaded.
    """
    parsed = parse_spec(model, role="simulator")
    path = tokenizer or (parsed.model if parsed.kind in ("hf", "vllm") else None)
    if path is None:
        return None, None
    from transformers import AutoTokenizer  # seconds to import: only when there is a tokenizer

    try:
        return AutoTokenizer.from_pretrained(path), path
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"tokenizer: cannot load {path!r} for the prompt-length filter ({err}); set "
            "tokenizer: to a local folder or length_filter: false"
        ) from None


def select_eval_examples(
    examples: Sequence[Mapping[str, Any]],
    *,
    limit: int,
    tokenizer: Any | None,
    state_set: str,
    thinking: bool,
    tokenizer_name: str | None = None,
    enabled: bool = True,
) -> tuple[list[Mapping[str, Any]], dict[str, Any]]:
    """Take the first ``limit`` examples whose response prompt fits its dataset's limit.

    Returns:
        The selected examples and what was done, for ``results.json``: ``applied``,
        ``tokenizer``, ``limits`` (data source -> tokens), ``examined``, ``filtered`` (rows
        dropped as too long), ``note``.
    """
    report: dict[str, Any] = {
        "applied": False,
        "tokenizer": tokenizer_name,
        "limits": {},
        "examined": 0,
        "filtered": 0,
        "note": None,
    }
    if not enabled:
        report["note"] = "length_filter is off: the first rows were taken as they are"
        return list(examples[:limit]), report
    if tokenizer is None:
        report["note"] = (
            "no tokenizer for this model (set tokenizer:): the first rows were taken without "
            "the prompt-length filter"
        )
        logger.warning("eval: %s", report["note"])
        return list(examples[:limit]), report
    report["applied"] = True
    kept: list[Mapping[str, Any]] = []
    for example in examples:
        if len(kept) == limit:
            break
        report["examined"] += 1
        source = str(example.get("data_source"))
        cap = report["limits"].setdefault(source, max_prompt_tokens(source))
        text = render_prompt(example, RESPONSE, state_set=state_set, thinking=thinking)
        if len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= cap:
            kept.append(example)
        else:
            report["filtered"] += 1
    if report["filtered"]:
        logger.info(
            "eval: dropped %d of the first %d rows whose prompt is over the dataset's limit",
            report["filtered"],
            report["examined"],
        )
    return kept, report
