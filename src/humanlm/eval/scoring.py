"""Score one simulated reply: format, response alignment, state alignment, embedding similarity.

- valid format: the strict parse of the response format (``humanlm.states.parsing.parse_output``),
  reported as its own metric;
- response alignment: the group judge with one candidate (state ``response``);
- state alignment: the aspects judge, six latent states from one call; the example's score is
  their mean;
- embedding similarity: cosine similarity with the real reply (MiniLM).

Every model is scored on its leniently extracted reply (``extract_response``): the tagged
response when there is one, else the text after the thinking block, else the raw text, never
markup. A base or SFT model that answers without tags, or after a preamble, is judged on what it
said, like the paper's reference scoring; training keeps the strict format. An empty extraction
scores 0 with reason ``bad_format`` and no judge call. A judge failure leaves the metric unscored
(``None``) with its reason.

The Chat gate (``humanlm.judge.group``; the judge's ``chat_gate`` and the example's
``data_source``): the response-alignment call also decides whether the reply is written from the
AI assistant's side. Such a reply scores 0 on response alignment and on state alignment, both
with reason ``assistant_voice`` (no aspects call is made); when that call fails, state alignment
is left unscored with the same reason, so a reply is never aligned without having passed the
gate. Embedding similarity is not gated: it measures wording, not alignment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from humanlm.generate.protocol import Generation
from humanlm.judge.build import Judge
from humanlm.judge.embedding import EmbeddingJudge
from humanlm.judge.group import ASSISTANT_VOICE, plan_group
from humanlm.judge.reward import extract_candidate
from humanlm.judge.verdict import AspectVerdict, GroupVerdict, Verdict
from humanlm.states import LATENT_STATES, RESPONSE
from humanlm.states.examples import judge_context
from humanlm.states.parsing import extract_response, parse_output

__all__ = ["SAMPLE_SCHEMA_VERSION", "SimilarityBatcher", "score_example"]

SAMPLE_SCHEMA_VERSION = 2
_EXCERPT_CHARS = 1000


def _verdict_dict(verdict: Verdict) -> dict[str, Any]:
    return {
        "score": verdict.score,
        "reason": verdict.reason,
        "judge": verdict.judge_model,
        "prompt_version": verdict.prompt_version,
        "thought": verdict.thought,
    }


def _group_dict(group: GroupVerdict) -> dict[str, Any]:
    (verdict,) = group.verdicts
    return {
        **_verdict_dict(verdict),
        "key_points": list(group.key_points),
        "cached": group.cached,
        "calls": group.calls,
        "raw": verdict.raw,
        "detail": group.detail,
    }


def _aspects_dict(aspects: AspectVerdict) -> dict[str, Any]:
    first = next(iter(aspects.verdicts.values()))
    return {
        "reason": aspects.reason,
        "detail": aspects.detail,
        "judge": first.judge_model,
        "prompt_version": first.prompt_version,
        "cached": aspects.cached,
        "calls": aspects.calls,
        "raw": first.raw,
        "states": {
            name: {"score": v.score, "reason": v.reason, "thought": v.thought}
            for name, v in aspects.verdicts.items()
        },
    }


class SimilarityBatcher:
    """Embedding similarity of many examples per forward pass.

    One MiniLM pass per example would cost more CPU than the whole HTTP pipeline, so requests
    that arrive while a batch is being encoded are encoded together in the next one. Judges
    other than ``EmbeddingJudge`` are asked one example at a time through ``judge_group``.

    Args:
        embedder: the embedding judge (``build_judge(JudgeConfig("embedding:minilm"))``).
        max_batch: most pairs per forward pass.
    """

    def __init__(self, embedder: Judge, *, max_batch: int = 64):
        self.embedder = embedder
        self.max_batch = max_batch
        self._queue: list[tuple[str, str, asyncio.Future[float]]] = []
        self._worker: asyncio.Task[None] | None = None
        self._pool: ThreadPoolExecutor | None = None

    def close(self) -> None:
        """Stop the encoding thread (idempotent)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    def _executor(self) -> ThreadPoolExecutor:
        # One encoding thread beside the event loop. It keeps the process's torch thread count:
        # ``torch.set_num_threads`` is process-wide, so lowering it here would also slow (and
        # change the numerics of) a local simulator or a training run in the same process. Set
        # OMP_NUM_THREADS to run the whole process on fewer threads.
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1)
        return self._pool

    async def score(
        self, *, context: Sequence[Mapping[str, object]], ground_truth: str, response: str | None
    ) -> dict[str, Any]:
        """The similarity verdict of one response (``bad_format`` 0 when it is missing)."""
        embedder = self.embedder
        if not isinstance(embedder, EmbeddingJudge):
            group = await embedder.judge_group(
                context=context, ground_truth=ground_truth, state=RESPONSE, candidates=[response]
            )
            return _group_dict(group)
        embedder.ledger.groups += 1
        kind = plan_group([response], ground_truth).slots[0][0]
        if kind == "judge":
            score, reason = await self._similarity(ground_truth, (response or "").strip()), "ok"
        else:
            zero = {"empty": "bad_format", "end_mismatch": "end_mismatch"}
            score, reason = (0.0, zero[kind]) if kind in zero else (1.0, "exact_copy")
        verdict = Verdict(score, reason, embedder.name, embedder.prompt_version)
        return {**_verdict_dict(verdict), "cached": False, "calls": 0}

    async def _similarity(self, reference: str, candidate: str) -> float:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._queue.append((reference, candidate, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        encoder = self.embedder.encoder  # type: ignore[attr-defined]
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            texts = [text for reference, candidate, _ in batch for text in (reference, candidate)]
            try:
                loop = asyncio.get_running_loop()
                vectors = await loop.run_in_executor(self._executor(), encoder.encode, texts)
            except Exception as exc:  # hand the failure to every waiting example
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            sims = (vectors[0::2] * vectors[1::2]).sum(dim=-1).clamp(0.0, 1.0)
            for (*_, future), sim in zip(batch, sims.tolist(), strict=True):
                if not future.done():
                    future.set_result(float(sim))


async def _aspects_after_gate(
    judge: Judge, gate: asyncio.Future[GroupVerdict], **aspects: Any
) -> AspectVerdict:
    """State alignment of a gated example: 0 when the gate found the assistant's voice,
    unscored when the gate's call failed, else the aspects judgement."""
    (verdict,) = (await gate).verdicts
    if verdict.reason == ASSISTANT_VOICE or verdict.score is None:
        score = 0.0 if verdict.reason == ASSISTANT_VOICE else None
        states = aspects["states"]
        same = {
            s: Verdict(score, verdict.reason, judge.name, verdict.prompt_version) for s in states
        }
        return AspectVerdict(same, verdict.reason)
    return await judge.judge_aspects(**aspects)


def _base_record(example: Mapping[str, Any], generation: Generation) -> dict[str, Any]:
    """The fields of a record that need no judging."""
    messages = example["messages"]
    last = messages[-1] if messages else {"name": None, "content": ""}
    return {
        "schema_version": SAMPLE_SCHEMA_VERSION,
        "example_id": example["example_id"],
        "data_source": example.get("data_source"),
        "user_id": example.get("user_id"),
        "post_id": example.get("post_id"),
        "turn_id": example.get("turn_id"),
        "context_last": {"name": last["name"], "content": last["content"][:_EXCERPT_CHARS]},
        "ground_truth": example["ground_truth"],
        "generation": generation.text,
        "finish_reason": generation.finish_reason,
        "reply_cut": generation.cut,
        "error": None if generation.text is not None else f"simulator: {generation.error}",
    }


async def score_example(
    example: Mapping[str, Any],
    generation: Generation,
    *,
    judge: Judge | None,
    similarity: SimilarityBatcher | None,
    aspects: bool = True,
    use_cache: bool = True,
    tagged: bool = True,
) -> dict[str, Any]:
    """Build the sample record of one example from its generation, judging it on the way.

    The reply judged is always the lenient extraction. ``tagged`` decides what counts as the
    strict format: the ``<response>`` tags (state sets ``r``, ``sebvgcr``, ``think_r``), or for
    ``tagged=False`` (``r_no_tag``, SFT models) a non-empty reply after the thinking, as the
    training reward reads it.

    Returns:
        The record (see ``humanlm.eval.run`` for its fields). When the simulator gave no
        output the record carries ``error`` and every metric is unscored.
    """
    record = _base_record(example, generation)
    if generation.text is None:
        return {
            **record,
            "thinking": None,
            "response": None,
            "strict_response": None,
            "valid_format": None,
            "scores": {},
            "state_scores": {},
            "verdicts": {},
        }
    parsed = parse_output(generation.text, [RESPONSE], strict=True)
    response = extract_response(generation.text) or None  # lenient; empty scores 0 uncalled
    if tagged:
        strict = parsed.fields[RESPONSE] if parsed.valid else None
    else:
        strict = extract_candidate(generation.text, RESPONSE, tagged=False)
    context = judge_context(example)
    truth = example["ground_truth"]
    source = example.get("data_source")
    jobs: dict[str, Any] = {}
    if judge is not None:
        group = asyncio.ensure_future(
            judge.judge_group(
                context=context,
                ground_truth=truth,
                state=RESPONSE,
                candidates=[response],
                use_cache=use_cache,
                source=source,
            )
        )
        jobs["response_alignment"] = group
        if aspects:
            request: dict[str, Any] = {
                "context": context,
                "ground_truth": truth,
                "response": response,
                "states": LATENT_STATES,
                "use_cache": use_cache,
            }
            jobs["state_alignment"] = (
                _aspects_after_gate(judge, group, **request)
                if judge.gates(source)
                else judge.judge_aspects(**request)
            )
    if similarity is not None:
        jobs["embedding_similarity"] = similarity.score(
            context=context, ground_truth=truth, response=response
        )
    done = dict(zip(jobs, await asyncio.gather(*jobs.values()), strict=True))
    verdicts: dict[str, Any] = {}
    scores: dict[str, float | None] = {"valid_format": 1.0 if strict is not None else 0.0}
    state_scores: dict[str, float | None] = {}
    if "response_alignment" in done:
        verdicts["response_alignment"] = _group_dict(done["response_alignment"])
        scores["response_alignment"] = verdicts["response_alignment"]["score"]
    if "state_alignment" in done:
        verdicts["state_alignment"] = _aspects_dict(done["state_alignment"])
        state_scores = done["state_alignment"].scores
        scored = [v for v in state_scores.values() if v is not None]
        complete = bool(scored) and len(scored) == len(state_scores)
        scores["state_alignment"] = sum(scored) / len(scored) if complete else None
    if "embedding_similarity" in done:
        verdicts["embedding_similarity"] = done["embedding_similarity"]
        scores["embedding_similarity"] = verdicts["embedding_similarity"]["score"]
    return {
        **record,
        "thinking": parsed.thinking,
        "response": response,
        "strict_response": strict,
        "valid_format": strict is not None,
        "scores": scores,
        "state_scores": state_scores,
        "verdicts": verdicts,
    }
