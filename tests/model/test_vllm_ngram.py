"""The vLLM n-gram ban processor on CPU: batch bookkeeping against a brute-force batch model.

vLLM is not needed. The stand-ins below mirror vLLM 0.31.0 exactly as read from its source:

- ``BatchUpdate``: ``vllm/v1/sample/logits_processor/interface.py`` lines 36-57, a frozen
  dataclass with ``batch_size``, ``removed`` (indices), ``added`` (``(index, params,
  prompt_tok_ids, output_tok_ids)`` tuples, the output list a live reference) and ``moved``
  (``(index 1, index 2, directionality)``);
- ``MoveDirectionality``: the same file, lines 17-21 (``UNIDIRECTIONAL``, ``SWAP``);
- how a batch changes between steps, ``vllm/v1/worker/gpu_input_batch.py``: a new request takes
  the lowest removed index first (``BatchUpdateBuilder.pop_removed``,
  ``vllm/v1/sample/logits_processor/state.py`` lines 103-108, so a refilled index is not reported
  as removed) and is appended to ``added`` (line 336); condensing moves the last request into a
  hole, one-way (line 792); reordering swaps two rows (line 662);
- the order updates are applied in (added, removed, moved): vLLM's own sparse processors,
  ``process_dict_updates`` in ``vllm/v1/sample/logits_processor/builtin.py`` lines 374-411;
- ``SamplingParams.extra_args``: ``vllm/sampling_params.py`` line 349, filled from a request's
  ``vllm_xargs`` (``vllm/entrypoints/openai/completion/protocol.py`` line 354).
"""

from __future__ import annotations

import enum
import importlib
import random
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

from humanlm.model.vllm_ngram import (
    SCOPE_XARG,
    THINK_END_XARG,
    THINK_START_XARG,
    XARG,
    NGramBanLogitsProcessor,
    ngram_xargs,
    requested_ngram_size,
    requested_scope,
)

VOCAB = 6
OPEN, CLOSE = 4, 5  # stand-ins for the ids of <think> and </think>


class MoveDirectionality(enum.Enum):
    UNIDIRECTIONAL = enum.auto()
    SWAP = enum.auto()


@dataclass(frozen=True)
class BatchUpdate:
    batch_size: int
    removed: list[int]
    added: list[tuple[int, Any, list[int] | None, list[int]]]
    moved: list[tuple[int, int, MoveDirectionality]]


@dataclass
class SamplingParams:
    extra_args: dict[str, Any] | None = None


@dataclass
class Request:
    ngram: int
    scope: str = "all"
    prompt: list[int] = field(default_factory=lambda: [1, 2, 3])
    output: list[int] = field(default_factory=list)

    def banned(self) -> set[int]:
        """What the request's ban must refuse next, by definition."""
        if not self.ngram:
            return set()
        if self.scope == "all":
            return reference_banned(self.output, self.ngram)
        start = 0
        for position, token in enumerate([*self.prompt, *self.output]):
            if token in (OPEN, CLOSE):
                start = None if token == OPEN else max(0, position + 1 - len(self.prompt))
        return set() if start is None else reference_banned(self.output[start:], self.ngram)


def reference_banned(output: list[int], n: int) -> set[int]:
    """By definition: t is banned iff output + [t] ends with an n-gram seen earlier in it."""
    banned = set()
    for token in range(VOCAB):
        extended = [*output, token]
        last = extended[-n:]
        if len(extended) > n and any(extended[s : s + n] == last for s in range(len(extended) - n)):
            banned.add(token)
    return banned


def next_update(rng: random.Random, slots: list[Request | None]) -> BatchUpdate | None:
    """Change the batch the way vLLM's persistent batch does; ``slots`` is updated in place."""
    occupied = [i for i, r in enumerate(slots) if r is not None]
    removed = sorted(rng.sample(occupied, rng.randint(0, len(occupied))))
    for i in removed:
        slots[i] = None
    added = []
    for _ in range(rng.randint(0, 3)):
        request = Request(
            ngram=rng.choice([0, 2, 3, 4]),
            scope=rng.choice(["all", "reply"]),
            prompt=rng.choice([[1, 2, 3], [1, OPEN], [1, OPEN, CLOSE, 2]]),
        )
        index = removed.pop(0) if removed else len(slots)
        if index == len(slots):
            slots.append(None)
        slots[index] = request
        extra = {XARG: request.ngram} if request.ngram or rng.random() < 0.5 else None
        if extra is not None and (request.scope == "reply" or rng.random() < 0.5):
            extra.update(ngram_xargs(request.ngram, request.scope, (OPEN, CLOSE)))
        added.append((index, SamplingParams(extra), request.prompt, request.output))
    moved = []
    while True:  # condense: the last request moves into the first hole
        holes = [i for i, r in enumerate(slots) if r is None]
        while slots and slots[-1] is None:
            slots.pop()
        holes = [i for i in holes if i < len(slots)]
        if not holes:
            break
        last = len(slots) - 1
        slots[holes[0]], slots[last] = slots[last], None
        moved.append((last, holes[0], MoveDirectionality.UNIDIRECTIONAL))
    for _ in range(rng.randint(0, 2)):
        if len(slots) >= 2:
            a, b = rng.sample(range(len(slots)), 2)
            slots[a], slots[b] = slots[b], slots[a]
            moved.append((a, b, MoveDirectionality.SWAP))
    if not (removed or added or moved):
        return None
    return BatchUpdate(len(slots), sorted(removed, reverse=True), added, moved)


@pytest.mark.parametrize("seed", range(12))
def test_bookkeeping_matches_a_brute_force_batch(seed):
    rng = random.Random(seed)
    processor = NGramBanLogitsProcessor(None, torch.device("cpu"), False)
    slots: list[Request | None] = []
    for _step in range(40):
        update = next_update(rng, slots) if rng.random() < 0.5 else None
        processor.update_state(update)
        if not slots:
            continue
        logits = torch.randn(len(slots), VOCAB)
        original = logits.clone()
        out = processor.apply(logits)
        for i, request in enumerate(slots):
            assert request is not None
            banned = request.banned()
            got = {t for t in range(VOCAB) if out[i, t] == -float("inf")}
            assert got == banned, (seed, _step, i)
            kept = [t for t in range(VOCAB) if t not in banned]
            assert torch.equal(out[i, kept], original[i, kept])
        for request in slots:  # the engine appends to the live output lists
            assert request is not None
            allowed = [t for t in range(VOCAB) if out[slots.index(request), t] != -float("inf")]
            # markers less often, so replies grow long enough to ban something
            plain = [t for t in allowed if t not in (OPEN, CLOSE)]
            request.output.append(
                rng.choice(plain if plain and rng.random() < 0.85 else allowed or [0])
            )
        assert set(processor.requests) == {i for i, r in enumerate(slots) if r and r.ngram}


def test_a_new_request_without_the_ban_clears_the_row_it_takes():
    processor = NGramBanLogitsProcessor()
    banned_output = [1, 2, 1]
    processor.update_state(
        BatchUpdate(1, [], [(0, SamplingParams({XARG: 2}), None, banned_output)], [])
    )
    assert torch.isinf(processor.apply(torch.zeros(1, VOCAB))[0, 2])
    processor.update_state(BatchUpdate(1, [], [(0, SamplingParams(None), None, [1, 2, 1])], []))
    assert (
        processor.requests == {} and not torch.isinf(processor.apply(torch.zeros(1, VOCAB))).any()
    )


@pytest.mark.parametrize(
    ("extra", "size"),
    [(None, 0), ({}, 0), ({XARG: 4}, 4), ({XARG: "4"}, 4), ({XARG: 0}, 0), ({"other": 1}, 0)],
)
def test_requested_size(extra, size):
    assert requested_ngram_size(SamplingParams(extra)) == size


@pytest.mark.parametrize("value", [-1, "four", 2.5, True, [4]])
def test_a_malformed_argument_is_refused_when_the_request_arrives(value):
    with pytest.raises(ValueError, match=XARG):
        NGramBanLogitsProcessor.validate_params(SamplingParams({XARG: value}))


def test_loads_by_the_name_vllm_serve_is_given():
    # ``vllm serve --logits-processors MODULE:CLASS`` imports MODULE and reads CLASS from it.
    module, qualname = "humanlm.model.vllm_ngram:NGramBanLogitsProcessor".split(":")
    cls = getattr(importlib.import_module(module), qualname)
    assert cls is NGramBanLogitsProcessor and isinstance(cls, type)
    assert cls().is_argmax_invariant() is False


# The ban's scope on vLLM (issue 21): the same rule as the transformers processor.
def _banned_after(processor: NGramBanLogitsProcessor) -> set[int]:
    out = processor.apply(torch.zeros(1, VOCAB))
    return {t for t in range(VOCAB) if out[0, t] == -float("inf")}


@pytest.mark.parametrize(
    ("prompt", "output", "scope", "banned"),
    [
        pytest.param([1, OPEN], [1, 2, 3, CLOSE, 1, 2], "reply", set(), id="reuse-thinking-draft"),
        pytest.param([1, OPEN], [1, 2, 3, CLOSE, 1, 2], "all", {3}, id="all-covers-thinking"),
        pytest.param([1, OPEN], [1, 2, 3, 1, 2], "reply", set(), id="still-thinking"),
        pytest.param([OPEN, CLOSE], [1, 2, 3, 1, 2], "reply", {3}, id="thinking-off"),
        pytest.param(None, [1, 2, 3, 1, 2], "reply", {3}, id="no-prompt-ids"),
        pytest.param([1, OPEN], [1, 2, CLOSE, 1, 2], "reply", set(), id="straddling-ngram"),
        pytest.param([1, OPEN], [1, 2, CLOSE, 1, 2], "all", {CLOSE}, id="straddling-all"),
    ],
)
def test_scope_cases(prompt, output, scope, banned):
    processor = NGramBanLogitsProcessor()
    params = SamplingParams(ngram_xargs(3, scope, (OPEN, CLOSE)))
    processor.update_state(BatchUpdate(1, [], [(0, params, prompt, output)], []))
    assert _banned_after(processor) == banned


def test_a_request_without_a_scope_keeps_the_ban_over_everything():
    processor = NGramBanLogitsProcessor()
    params = SamplingParams({XARG: 3})
    processor.update_state(BatchUpdate(1, [], [(0, params, [1, OPEN], [1, 2, 3, CLOSE, 1, 2])], []))
    assert _banned_after(processor) == {3}


def test_reply_scope_reads_the_markers_from_the_engine_tokenizer(tiny_model_dir):
    from types import SimpleNamespace

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    start, end = tokenizer.convert_tokens_to_ids(["<think>", "</think>"])
    config = SimpleNamespace(model_config=SimpleNamespace(tokenizer=str(tiny_model_dir)))
    processor = NGramBanLogitsProcessor(config, torch.device("cpu"), False)
    params = SamplingParams({XARG: 2, SCOPE_XARG: "reply"})  # no ids: the engine's own
    output = [7, 7, end, 7]
    processor.update_state(BatchUpdate(1, [], [(0, params, [1, start], output)], []))
    assert processor.engine_think_ids() == (start, end)
    logits = processor.apply(torch.zeros(1, end + 1))
    assert not torch.isinf(logits).any()  # "7 7" was drafted while thinking
    output.append(7)  # the engine appends to the live list: "7 7" now repeats in the reply
    assert torch.isinf(processor.apply(torch.zeros(1, end + 1))[0, 7])


def test_the_xargs_a_client_sends():
    assert ngram_xargs(0, "reply", (OPEN, CLOSE)) == {}
    assert ngram_xargs(4, "all", (OPEN, CLOSE)) == {XARG: 4, SCOPE_XARG: "all"}
    assert ngram_xargs(4, "reply", (151667, 151668)) == {
        "no_repeat_ngram_size": 4,
        "ngram_ban_scope": "reply",
        "think_start_token_id": 151667,
        "think_end_token_id": 151668,
    }
    assert requested_scope(SamplingParams(ngram_xargs(4, "reply", (OPEN, CLOSE)))) == (
        "reply",
        (OPEN, CLOSE),
    )
    assert requested_scope(SamplingParams({XARG: 4})) == ("all", None)


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({SCOPE_XARG: "thinking"}, SCOPE_XARG),
        ({SCOPE_XARG: "reply", THINK_END_XARG: 9}, "both"),
        ({SCOPE_XARG: "reply", THINK_START_XARG: -1, THINK_END_XARG: 9}, THINK_START_XARG),
        ({SCOPE_XARG: "reply", THINK_START_XARG: 1, THINK_END_XARG: True}, THINK_END_XARG),
    ],
)
def test_malformed_scope_arguments_are_refused_when_the_request_arrives(extra, problem):
    with pytest.raises(ValueError, match=problem):
        NGramBanLogitsProcessor.validate_params(SamplingParams({XARG: 4, **extra}))


@pytest.mark.slow
def test_reply_scope_in_a_real_vllm_engine(flat_model_dir):
    # issue 21: in the engine, a request naming only the scope gets the think markers from the
    # engine's tokenizer. The flat model writes token 0 forever unless the ban stops it.
    from tests.conftest import require_vllm

    require_vllm()
    from vllm import LLM, SamplingParams

    from humanlm.generate.vllm_settings import VLLMSettings

    model = str(flat_model_dir)
    kwargs = VLLMSettings(max_model_len=256).engine_kwargs(model, cpu=True)
    llm = LLM(model=model, seed=0, logits_processors=[NGramBanLogitsProcessor], **kwargs)

    def tokens(prompt: str, scope: str | None) -> list[int]:
        extra = ngram_xargs(4, scope) if scope else None
        params = SamplingParams(temperature=0, max_tokens=12, extra_args=extra)
        return list(llm.generate([prompt], params, use_tqdm=False)[0].outputs[0].token_ids)

    thinking, answering = "Hi<think>\n", "Hi<think>\n\n</think>\n\n"
    banned = [0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]
    assert tokens(thinking, None) == [0] * 12
    assert tokens(thinking, "reply") == [0] * 12  # still thinking: nothing banned
    assert tokens(thinking, "all") == banned
    assert tokens(answering, "reply") == banned  # thinking off: all of it is reply
