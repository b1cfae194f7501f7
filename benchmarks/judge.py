"""Benchmark the judge reward: one GRPO step through ``state_reward`` vs. a naive per-candidate judge.

Both runs go through the same scripted OpenAI-compatible server on 127.0.0.1 with a fixed latency
and seeded random faults (429, 500, a reply that never comes, dropped connections, empty and
truncated replies). The batched run is ``state_reward``: one call per (example, state) group, all
groups concurrently. The naive baseline judges each candidate in its own call, one after another
(as a reward function without grouping would), with the same retry policy: both send one copy
of a request still unanswered after the 95th percentile of the judge's recent latencies
(``--hedge-quantile``; ``--hedge-after S`` for a fixed delay instead, ``--no-hedge`` for none).
Each run is timed after an untimed warm-up step (open connections, as from a training run's
second step on).

Two limits are printed beside the figure. A step cannot take less than one round trip, so the
ratio cannot beat ``latency / naive``. But with 10% faults almost every step of 32 requests has
one that must be sent again, so the second limit is the mean step of a client and server with
no overhead at all under the same fault mix, retry policy and copies (a Monte Carlo model,
``modelled_step``). Target: the batched step takes at most 1/60 of the naive time (mean over the
fault seeds).

Run:
    .venv/bin/python benchmarks/judge.py            # 32 examples x 4 rollouts, 200 ms, 10% faults
    .venv/bin/python benchmarks/judge.py --examples 8 --skip-baseline
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from typing import Any

from server_process import ServerProcess

from humanlm.judge import JudgeConfig, build_judge, state_reward
from humanlm.states import STATE_NAMES
from humanlm.testing import faults
from humanlm.testing.judge_replies import judge_reply_fn

WORDS = (
    "deposit landlord roommate money owe fair rude kind angry calm supports blames asks mocks "
    "advice boundary friend family rent months paid promise trust respect honest direct sarcastic"
).split()

JUDGE_SETTINGS: dict[str, Any] = {
    "concurrency": 32,
    "timeout_s": 10.0,
    "request_timeout_s": 1.0,  # the injected hang never answers: give up on it after 1 s
    "max_retries": 4,
    "backoff_s": 0.05,
    "backoff_max_s": 0.5,
}


def make_step(examples: int, rollouts: int, seed: int) -> dict[str, list[Any]]:
    """Dataset columns + completions of one GRPO step (states mixed, as with augmentation)."""
    rng = random.Random(seed)
    post = " ".join(rng.choice(WORDS) for _ in range(250))
    rows: dict[str, list[Any]] = {
        k: [] for k in ("prompts", "completions", "example_id", "state", "ground_truth", "context")
    }
    for e in range(examples):
        state = STATE_NAMES[e % len(STATE_NAMES)]
        truth = " ".join(rng.choice(WORDS) for _ in range(40))
        context = [{"name": "OP", "content": post}, {"name": "u1", "content": truth[::-1]}]
        for r in range(rollouts):
            text = f"{e}-{r} " + " ".join(rng.choice(WORDS) for _ in range(12))
            rows["prompts"].append(f"prompt {e}")
            rows["completions"].append(f"<{state}>{text}</{state}>")
            rows["example_id"].append(f"ex{e}")
            rows["state"].append(state)
            rows["ground_truth"].append(truth)
            rows["context"].append(context)
    return rows


async def batched(judge: Any, step: dict[str, list[Any]]) -> list[float | None]:
    return await state_reward(**step, judge=judge)


async def naive(judge: Any, step: dict[str, list[Any]]) -> list[float | None]:
    """One call per candidate, sequentially."""
    scores = []
    for i, completion in enumerate(step["completions"]):
        state = step["state"][i]
        text = completion.removeprefix(f"<{state}>").removesuffix(f"</{state}>")
        verdict = await judge.judge_group(
            context=step["context"][i],
            ground_truth=step["ground_truth"][i],
            state=state,
            candidates=[text],
        )
        scores.extend(verdict.scores)
    return scores


def measure(
    name: str, runner: Any, step: dict[str, list[Any]], args: argparse.Namespace, seed: int
) -> dict:
    with ServerProcess(
        reply_fn=judge_reply_fn(),
        latency_s=args.latency,
        fault_rate=args.fault_rate,
        faults=faults.DEFAULT_FAULTS,
        seed=seed,
    ) as server:
        judge = build_judge(
            JudgeConfig(
                f"openai:bench-judge@{server.base_url}",
                **JUDGE_SETTINGS,
                hedge_after_s=args.hedge_after,
                hedge_quantile=args.hedge_quantile,
            ),
            seed=0,
        )

        async def go() -> tuple[list[float | None], float, dict[str, int], int]:
            try:
                # Steady state, as from a training run's second step on: connections open,
                # prompts loaded. The warm-up step has other texts, so nothing is cached.
                await runner(judge, warm_step(step))
                before, seen = judge.ledger.snapshot(), len(judge.ledger.latencies)
                before["faults"] = server.counts()["faults_sent"]
                started = time.perf_counter()
                scores = await runner(judge, step)
                return scores, time.perf_counter() - started, before, seen
            finally:
                await judge.aclose()

        scores, wall, before, seen = asyncio.run(go())
    ledger = judge.ledger
    after = ledger.snapshot()
    latencies = sorted(ledger.latencies[seen:])
    return {
        "run": name,
        "wall_s": wall,
        "calls": after["calls"] - before["calls"],
        "groups": after["groups"] - before["groups"],
        "in_tok": after["input_tokens"] - before["input_tokens"],
        "out_tok": after["output_tokens"] - before["output_tokens"],
        "copies": after["hedges"] - before["hedges"],
        "faults": server.faults_sent - before["faults"],
        "unscored": sum(s is None for s in scores),
        "p50_s": latencies[len(latencies) // 2] if latencies else 0.0,
        "p95_s": latencies[int(len(latencies) * 0.95)] if latencies else 0.0,
    }


def warm_step(step: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """The step with other ground truths (so no verdict can come from a cache)."""
    return {**step, "ground_truth": [f"warm-up {t}" for t in step["ground_truth"]]}


def print_table(results: list[dict]) -> None:
    columns: tuple[str, ...] = (
        "run",
        "wall_s",
        "calls",
        "groups",
        "in_tok",
        "out_tok",
        "copies",
        "faults",
        "unscored",
    )
    columns += ("p50_s", "p95_s")
    print(" | ".join(f"{c:>10}" for c in columns))
    print("-+-".join("-" * 10 for _ in columns))
    for row in results:
        cells = [
            f"{row[c]:>10.2f}" if isinstance(row[c], float) else f"{row[c]:>10}" for c in columns
        ]
        print(" | ".join(cells))


def modelled_step(args: argparse.Namespace, requests: int, steps: int = 20000) -> float:
    """Mean wall time of one step of ``requests`` concurrent calls for a client and server
    with no overhead: every answer takes exactly ``latency``, faults are drawn as the server
    draws them, and retries, backoff, ``Retry-After`` and copies follow the judge's policy."""
    rng = random.Random(0)
    kinds = [fault.__name__ for fault in faults.DEFAULT_FAULTS]
    latency, timeout = args.latency, JUDGE_SETTINGS["request_timeout_s"]
    if args.hedge_quantile is not None:
        delay = latency  # every answer takes the latency: so does any quantile of them
    else:
        delay = args.hedge_after if args.hedge_after is not None else timeout

    def draw() -> str:
        return "ok" if rng.random() >= args.fault_rate else rng.choice(kinds)

    def attempt() -> tuple[str, float]:
        """One request and its copies: the outcome, and when it is known."""
        for copy in range(3):  # the request and up to two copies, each ``delay`` apart
            kind = draw()
            answered = copy * delay + latency
            if kind == "ok" or (copy == 0 and "hang" not in kind):
                return kind, answered
            if kind == "rate_limited":  # the stuck twins are waited for until they time out
                return kind, max(answered, timeout + delay)
            if "hang" not in kind:  # the stuck twins are given up a delay after the failure
                return kind, answered + delay
            if (copy + 1) * delay >= timeout:
                break
        # All stuck: the request times out, and its copies are given up a delay later.
        return "timeout", timeout + (delay if copy else 0.0)

    def call() -> float:
        elapsed = 0.0
        for retry in range(JUDGE_SETTINGS["max_retries"] + 1):
            kind, took = attempt()
            elapsed += took
            if kind == "ok" or retry == JUDGE_SETTINGS["max_retries"]:
                break
            if kind not in ("empty", "truncated"):  # content failures are asked again at once
                base = JUDGE_SETTINGS["backoff_s"] * 2.0**retry
                wait = min(JUDGE_SETTINGS["backoff_max_s"], base) * rng.uniform(0.5, 1.0)
                elapsed += max(wait, 0.05) if kind == "rate_limited" else wait
        return elapsed

    return sum(max(call() for _ in range(requests)) for _ in range(steps)) / steps


def copies_after(args: argparse.Namespace) -> str:
    if args.hedge_quantile is not None:
        return f"the p{args.hedge_quantile * 100:g} of recent latencies"
    return "never" if args.hedge_after is None else f"{args.hedge_after:.2f} s"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--rollouts", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.2, help="server latency (s)")
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats", type=int, default=20, help="batched runs, fault seeds seed..seed+repeats-1"
    )
    parser.add_argument(
        "--hedge-quantile",
        type=float,
        default=0.95,
        help="copy after this quantile of the recent latencies (default 0.95)",
    )
    parser.add_argument(
        "--hedge-after", type=float, default=None, help="copy after a fixed delay (s) instead"
    )
    parser.add_argument("--no-hedge", action="store_true", help="never send copies")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()

    if args.no_hedge:
        args.hedge_after = args.hedge_quantile = None
    elif args.hedge_after is not None:
        args.hedge_quantile = None
    step = make_step(args.examples, args.rollouts, args.seed)
    n = len(step["completions"])
    print(
        f"one GRPO step: {args.examples} examples x {args.rollouts} rollouts = {n} candidates; "
        f"server latency {args.latency * 1000:.0f} ms, {args.fault_rate:.0%} faults (seed {args.seed})"
    )
    # A step has only 32 requests, and rare chains of faults (a retry that fails again) cost a
    # round trip each: the mean over fewer seeds moves by several percent with the seed set.
    results = [
        measure(f"batched/s{seed}", batched, step, args, seed)
        for seed in range(args.seed, args.seed + args.repeats)
    ]
    if not args.skip_baseline:
        results.append(measure("naive", naive, step, args, args.seed))
    print_table(results)
    if not args.skip_baseline:
        runs, base = results[:-1], results[-1]
        mean = sum(r["wall_s"] for r in runs) / len(runs)
        worst = max(r["wall_s"] for r in runs)
        ratio = mean / base["wall_s"]
        floor = args.latency / base["wall_s"]
        model = modelled_step(args, requests=runs[0]["groups"])
        print(
            f"wall-time ratio batched/naive: mean {ratio:.4f} (1/{1 / ratio:.1f}), worst "
            f"{worst / base['wall_s']:.4f} (1/{base['wall_s'] / worst:.0f}); target 1/60; "
            f"copies after {copies_after(args)}"
        )
        print(
            f"limits: one round trip {floor:.4f} (1/{1 / floor:.0f}); a client and server with no "
            f"overhead under these faults: mean step {model:.3f} s, {model / base['wall_s']:.4f} "
            f"(1/{base['wall_s'] / model:.1f}); measured mean step {mean:.3f} s"
        )
        print(
            f"calls {sum(r['calls'] for r in runs) / len(runs):.1f} vs {base['calls']}; "
            f"input tokens {sum(r['in_tok'] for r in runs) / len(runs):.0f} vs {base['in_tok']}"
        )
        if ratio > 1 / 60:
            print("FAIL: the batched step must take at most 1/60 of the naive time")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
