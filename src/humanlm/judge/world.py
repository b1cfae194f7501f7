"""The demo's judge (``embedding:demo-world``): latent states scored against the world's reference.

MiniLM separates a right-kind reply from a wrong-kind one well (about 0.8 against 0.45 on the demo
world), but a generated *state* ("Sides with the poster: NTA") compared with the real *reply*
("NTA! Your groceries, your call.") separates right from wrong kinds by little: the two are
different kinds of text. The demo world knows every reply's reference states, so this judge
compares like with like: a latent state is scored by its MiniLM similarity with the reference
state of the same name, taken from the bundled demo row whose reply is the real reply (or, for a
reply the world does not hold, the row with the most similar reply). The response state is scored
against the real reply, as by ``embedding:minilm``.

It is the demo's judge only: it knows nothing beyond the bundled demo world. Everywhere else the
paper's LLM judge is the default.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from functools import cache

from humanlm.data.resolve import demo_data_dir
from humanlm.judge.embedding import EmbeddingJudge, MiniLMEncoder
from humanlm.judge.group import finish_group, plan_group
from humanlm.judge.verdict import GroupVerdict
from humanlm.llm.ledger import Ledger
from humanlm.states import RESPONSE

__all__ = ["WORLD_SPEC", "WORLD_VERSION", "WorldJudge", "world_states"]

WORLD_SPEC = "embedding:demo-world"
WORLD_VERSION = "minilm-reference-state-v1"


@cache
def world_states() -> dict[str, dict[str, str]]:
    """Every bundled demo reply and its reference states (all splits; the reply is the key)."""
    states: dict[str, dict[str, str]] = {}
    for path in sorted(demo_data_dir().glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            states[row["completion"]] = row["states"]
    return states


class WorldJudge(EmbeddingJudge):
    """An ``EmbeddingJudge`` that scores latent states against the demo world's reference states.

    Args:
        ledger: counts judgements (``calls`` stays 0: nothing is sent anywhere).
        encoder: the encoder (default: one shared, lazily loaded MiniLM).
    """

    name = WORLD_SPEC
    prompt_version = WORLD_VERSION

    def __init__(self, *, ledger: Ledger | None = None, encoder: MiniLMEncoder | None = None):
        super().__init__(ledger=ledger, encoder=encoder)
        self._nearest: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"WorldJudge(name={WORLD_SPEC!r})"

    def reference(self, ground_truth: str, state: str) -> str:
        """The reference of ``state`` for the real reply ``ground_truth``."""
        if state == RESPONSE:
            return ground_truth
        world = world_states()
        if ground_truth not in world and ground_truth not in self._nearest:
            replies = list(world)
            sims = self.encoder.similarities(ground_truth, replies)
            self._nearest[ground_truth] = replies[max(range(len(sims)), key=sims.__getitem__)]
        row = world.get(ground_truth) or world[self._nearest[ground_truth]]
        return row.get(state) or ground_truth

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
        """Score each candidate by its similarity with the reference of ``state``."""
        reference = await asyncio.to_thread(self.reference, ground_truth, state)
        plan = plan_group(candidates, reference, state=state)
        self.ledger.groups += 1
        if not plan.unique:
            self.ledger.no_call += 1
            return finish_group(
                plan, scores=None, failure=None, judge_model=self.name, prompt_version=WORLD_VERSION
            )
        scores = await asyncio.to_thread(self.encoder.similarities, reference, plan.unique)
        return finish_group(
            plan,
            scores=scores,
            failure=None,
            judge_model=self.name,
            prompt_version=WORLD_VERSION,
            copy_score=1.0,
        )
