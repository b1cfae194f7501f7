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

from humanlm.model.vllm_ngram import XARG, NGramBanLogitsProcessor, requested_ngram_size

VOCAB = 6


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
    output: list[int] = field(default_factory=list)


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
        request = Request(ngram=rng.choice([0, 2, 3, 4]))
        index = removed.pop(0) if removed else len(slots)
        if index == len(slots):
            slots.append(None)
        slots[index] = request
        extra = {XARG: request.ngram} if request.ngram or rng.random() < 0.5 else None
        added.append((index, SamplingParams(extra), [1, 2, 3], request.output))
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
            banned = reference_banned(request.output, request.ngram) if request.ngram else set()
            got = {t for t in range(VOCAB) if out[i, t] == -float("inf")}
            assert got == banned, (seed, _step, i)
            kept = [t for t in range(VOCAB) if t not in banned]
            assert torch.equal(out[i, kept], original[i, kept])
        for request in slots:  # the engine appends to the live output lists
            assert request is not None
            allowed = [t for t in range(VOCAB) if out[slots.index(request), t] != -float("inf")]
            request.output.append(rng.choice(allowed or [0]))
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
