"""Multi-turn conversations between a simulated user and an assistant under test.

Run it from the command line:

    humanlm simulate --user hf:runs/demo/humanlm/model --assistant openai:gpt-4o-mini \\
        --scenarios scenarios.jsonl --out runs/sim

Each conversation alternates: the simulated user writes (or opens), the assistant answers,
until the user ends it (the end signal), the user's turns reach ``max_turns``, or a side fails
after its retries. Every user turn passes the fidelity check (``humanlm.simulate.fidelity``)
or is drawn again: an empty turn up to ``empty_retries`` times, never sent, and if it stays empty
the conversation ends with ``empty_user_turn``; an assistant-like turn or one that copies the
context up to ``fidelity_retries`` times, after which the last draw is sent. Each record counts
its redrawn turns by reason (``fidelity.resampled``) and the failing turns it kept
(``fidelity.kept``), and its user replies that ran past the token budget and were cut at its
character cap (``usage.user_replies_cut``). ``DIR/conversations.jsonl``
gets one line per finished conversation as soon as it ends; rerunning keeps those lines and
sends nothing for them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from humanlm.errors import ConfigError
from humanlm.files import write_jsonl
from humanlm.lock import holds_output_lock
from humanlm.simulate.assistant import Assistant
from humanlm.simulate.fidelity import check_user_turn
from humanlm.simulate.reply import Reply
from humanlm.simulate.report import END_REASONS, write_report
from humanlm.simulate.scenarios import Scenario

__all__ = ["END_REASONS", "SimulateSummary", "run_conversation", "run_simulate"]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1


class User(Protocol):
    spec: str

    async def areply(self, persona: Any, messages: Sequence[Any]) -> Reply: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class SimulateSummary:
    """What a run did: conversations written now, kept from before, and end reasons."""

    out_dir: Path
    written: int
    kept: int
    end_reasons: dict[str, int]

    def describe(self) -> str:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.end_reasons.items())) or "none"
        return (
            f"{self.written} conversation(s) simulated, {self.kept} kept from before "
            f"-> {self.out_dir / 'conversations.jsonl'}\nend reasons: {reasons}\n"
            f"report: {self.out_dir / 'report.md'}, {self.out_dir / 'report.html'}"
        )


async def run_conversation(
    scenario: Scenario,
    *,
    user: User,
    assistant: Assistant,
    max_turns: int,
    empty_retries: int = 2,
    fidelity_retries: int = 2,
) -> dict[str, Any]:
    """Simulate one conversation; return its record (see the module docstring)."""
    messages = [dict(m) for m in scenario.messages]
    persona = scenario.persona_for_user()
    usage = {"user_calls": 0, "user_completion_tokens": 0, "user_replies_cut": 0}
    usage |= {"assistant_calls": 0}
    usage |= {"assistant_prompt_tokens": 0, "assistant_completion_tokens": 0}
    resampled: Counter[str] = Counter()
    kept: Counter[str] = Counter()
    turns, end_reason, error = 0, None, None
    while end_reason is None:
        if messages and messages[-1]["role"] == "user":
            answer = await assistant.reply(messages)
            usage["assistant_calls"] += 1
            usage["assistant_prompt_tokens"] += answer.prompt_tokens
            usage["assistant_completion_tokens"] += answer.completion_tokens
            if answer.text is None:
                end_reason, error = "assistant_error", answer.error
            else:
                messages.append({"role": "assistant", "content": answer.text})
            continue
        if turns >= max_turns:
            end_reason = "max_turns"
            break
        redrawn: Counter[str] = Counter()  # this turn's draws, by why they were drawn again
        while True:
            reply = await user.areply(persona, messages)
            usage["user_calls"] += 1
            usage["user_completion_tokens"] += reply.completion_tokens or 0
            usage["user_replies_cut"] += reply.cut  # past the token budget, cut at its cap
            failed = None if reply.error or reply.ended else check_user_turn(reply.text, messages)
            bound = empty_retries if failed == "empty" else fidelity_retries
            if failed is None or redrawn[failed] >= bound:
                break
            redrawn[failed] += 1
        resampled.update(redrawn)
        if reply.error:
            end_reason, error = "user_error", reply.error
        elif reply.ended:
            end_reason = "user_ended"
        elif failed == "empty":
            end_reason = "empty_user_turn"
        else:
            if failed is not None:
                kept[failed] += 1
            messages.append({"role": "user", "content": reply.text})
            turns += 1
    return {
        "schema_version": SCHEMA_VERSION,
        "id": scenario.id,
        "messages": messages,
        "turns": turns,
        "opening_turns": len(scenario.messages),
        "end_reason": end_reason,
        "error": error,
        "usage": usage,
        "fidelity": {"resampled": dict(resampled), "kept": dict(kept)},
        "goal": scenario.goal,
        "user": user.spec,
        "assistant": assistant.spec,
    }


def _read_done(path: Path) -> list[dict[str, Any]]:
    """Finished records of an earlier run; a line cut off by a crash is dropped (and rewritten)."""
    if not path.is_file():
        return []
    records, torn = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            torn = True
            continue
        if isinstance(record, dict) and "id" in record:
            records.append(record)
    if torn:
        write_jsonl(path, records)
    return records


async def _run_all(
    todo: list[Scenario],
    *,
    user: User,
    assistant: Assistant,
    out: Path,
    max_turns: int,
    concurrency: int,
    show_progress: bool,
    fidelity_retries: int,
) -> Counter[str]:
    slots = asyncio.Semaphore(concurrency)
    reasons: Counter[str] = Counter()
    bar = tqdm(total=len(todo), desc="conversations", unit="conv", disable=not show_progress)

    async def one(scenario: Scenario, sink: Any) -> None:
        async with slots:
            record = await run_conversation(
                scenario,
                user=user,
                assistant=assistant,
                max_turns=max_turns,
                fidelity_retries=fidelity_retries,
            )
        sink.write(json.dumps(record, ensure_ascii=False) + "\n")
        sink.flush()
        os.fsync(sink.fileno())
        reasons[record["end_reason"]] += 1
        bar.update(1)
        bar.set_postfix(dict(reasons))

    try:
        with (out / "conversations.jsonl").open("a", encoding="utf-8") as sink:
            await asyncio.gather(*(one(s, sink) for s in todo))
    finally:
        bar.close()
        await user.aclose()
        await assistant.aclose()
    return reasons


@holds_output_lock("out_dir", command="simulate")
def run_simulate(
    *,
    scenarios: Sequence[Scenario],
    user: User,
    assistant: Assistant,
    out_dir: str | Path,
    max_turns: int = 8,
    concurrency: int = 8,
    show_progress: bool = False,
    fidelity_retries: int = 2,
) -> SimulateSummary:
    """Simulate every scenario not finished before; write conversations and the report.

    Example:
        >>> user = UserSimulator.from_spec("hf:runs/demo/humanlm/model")  # doctest: +SKIP
        >>> assistant = Assistant.from_spec("openai:gpt-4o-mini")  # doctest: +SKIP
        >>> run_simulate(scenarios=load_scenarios("s.jsonl"), user=user,
        ...              assistant=assistant, out_dir="runs/sim")  # doctest: +SKIP

    Writes ``out_dir/conversations.jsonl`` (appended as conversations end) and
    ``report.md``/``report.html`` over all of them. Conversations already in the file are kept
    and not simulated again. ``fidelity_retries``: how often an assistant-like user turn, or one
    that copies the context, is drawn again (0: never; see ``humanlm.simulate.fidelity``).

    Raises:
        ConfigError: ``max_turns`` or ``concurrency`` below 1, ``fidelity_retries`` below 0.
    """
    if max_turns < 1 or concurrency < 1:
        raise ConfigError("max_turns and concurrency must be >= 1")
    if fidelity_retries < 0:
        raise ConfigError(f"fidelity_retries must be >= 0, got {fidelity_retries}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    done = _read_done(out / "conversations.jsonl")
    finished = {r["id"] for r in done}
    todo = [s for s in scenarios if s.id not in finished]
    logger.info("%d conversation(s) to simulate, %d done before", len(todo), len(finished))
    reasons = asyncio.run(
        _run_all(
            todo,
            user=user,
            assistant=assistant,
            out=out,
            max_turns=max_turns,
            concurrency=concurrency,
            show_progress=show_progress,
            fidelity_retries=fidelity_retries,
        )
    )
    records = _read_done(out / "conversations.jsonl")
    write_report(records, out)
    return SimulateSummary(out, sum(reasons.values()), len(finished), dict(reasons))
