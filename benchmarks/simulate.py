"""Benchmark ``humanlm simulate``: conversations per minute against a scripted assistant.

The assistant is a scripted OpenAI-compatible server on 127.0.0.1 answering after a fixed
latency (300 ms by default) through the real client (SDK, retries); the simulated user answers
at once in-process, so the figure measures the conversation loop and the assistant calls, not a
model. One conversation runs first, untimed, so imports and connection set-up are left out. Every conversation runs ``--max-turns``
user turns, each answered by the assistant, so the latency alone allows
``concurrency / (turns * latency)`` conversations per second. Target: at least 80% of that.

Run:
    .venv/bin/python benchmarks/simulate.py                      # 64 conversations, 16 at once
    .venv/bin/python benchmarks/simulate.py --conversations 32 --latency 0.1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from humanlm.simulate.assistant import Assistant
from humanlm.simulate.conversation import run_simulate
from humanlm.simulate.reply import Reply
from humanlm.simulate.scenarios import Scenario
from humanlm.testing import ScriptedServer

TARGET = 0.8


class InstantUser:
    """A simulated user that answers at once and never ends."""

    spec = "instant"

    async def areply(self, persona: object, messages: list) -> Reply:
        return Reply(f"question {len(messages) // 2 + 1}, please")

    async def aclose(self) -> None:
        return None


def simulate(scenarios: list[Scenario], base_url: str, out: Path, args: argparse.Namespace):
    return run_simulate(
        scenarios=scenarios,
        user=InstantUser(),
        assistant=Assistant("bot", base_url=base_url, api_key="x"),
        out_dir=out,
        max_turns=args.max_turns,
        concurrency=args.concurrency,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-turns", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.3)
    args = parser.parse_args()
    scenarios = [Scenario(f"c{i}", f"User number {i}.") for i in range(args.conversations)]
    with (
        ScriptedServer(reply_fn=lambda r: "Here is an answer.", latency_s=args.latency) as bot,
        tempfile.TemporaryDirectory() as tmp,
    ):
        simulate([Scenario("warm-up", "x")], bot.base_url, Path(tmp) / "warm", args)
        start = time.perf_counter()
        summary = simulate(scenarios, bot.base_url, Path(tmp) / "run", args)
        elapsed = time.perf_counter() - start
    per_minute = 60 * summary.written / elapsed
    allowed = 60 * args.concurrency / (args.max_turns * args.latency)
    share = per_minute / allowed
    print(
        f"{summary.written} conversations x {args.max_turns} turns, assistant latency "
        f"{args.latency * 1000:.0f} ms, concurrency {args.concurrency}: {elapsed:.1f} s"
    )
    print(f"  {per_minute:.0f} conversations/min; the latency allows {allowed:.0f}/min")
    print(
        f"  {share:.0%} of the limit (target: at least {TARGET:.0%}); end reasons {summary.end_reasons}"
    )
    return 0 if share >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
