"""Benchmark ``humanlm eval`` throughput against scripted simulator and judge servers.

Both servers are ``ScriptedServer``s on 127.0.0.1 answering after a fixed latency (300 ms by
default): the simulator echoes a reply in the response format, the judge answers group and
aspects prompts with word-overlap scores. The data are the bundled demo rows, replicated into
``--examples`` distinct rows (a raw Humanual file prepared on the fly). ``run_eval`` runs with
its default concurrency unless ``--concurrency`` says otherwise; the figure is examples per
second over the evaluation itself (data preparation and model loading excluded; the wall time
including them is printed too).

Run:
    .venv/bin/python benchmarks/eval_throughput.py                 # 500 examples, 300 ms
    .venv/bin/python benchmarks/eval_throughput.py --examples 100 --no-embedding
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from humanlm.data.resolve import demo_data_dir
from humanlm.eval import EvalConfig, run_eval
from humanlm.testing import Reply, ScriptedServer
from humanlm.testing.judge_replies import judge_reply_fn

WORDS = (
    "deposit landlord roommate money owe fair rude kind angry calm supports blames asks mocks "
    "advice boundary friend family rent months paid promise trust respect honest direct"
).split()


def write_rows(path: Path, count: int, seed: int) -> None:
    """``count`` distinct raw rows made from the demo test rows (new posts and replies)."""
    rng = random.Random(seed)
    base = [
        json.loads(line)
        for line in (demo_data_dir() / "test.jsonl").read_text("utf-8").splitlines()
        if line.strip()
    ]
    with path.open("w", encoding="utf-8") as fh:
        for i in range(count):
            row = dict(base[i % len(base)])
            row["post_id"] = f"bench_post_{i}"
            row["completion"] = " ".join(rng.choice(WORDS) for _ in range(30))
            fh.write(json.dumps(row) + "\n")


def simulator_reply(request) -> Reply:  # noqa: ANN001 - RecordedRequest
    """A reply in the response format built from the last context message."""
    words = str(request.messages[-1].get("content") or "").split()
    return Reply(content=f"<response>{' '.join(words[-25:])}</response>")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.3, help="seconds per reply")
    parser.add_argument("--concurrency", type=int, default=None, help="default: run_eval's")
    parser.add_argument("--no-embedding", dest="embedding", action="store_false")
    parser.add_argument("--min-rate", type=float, default=20.0, help="fail below (examples/s)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "rows.jsonl"
        write_rows(data, args.examples, seed=0)
        with (
            ScriptedServer(reply_fn=simulator_reply, latency_s=args.latency) as sim,
            ScriptedServer(reply_fn=judge_reply_fn(), latency_s=args.latency) as judge,
        ):
            extra = {} if args.concurrency is None else {"concurrency": args.concurrency}
            cfg = EvalConfig(
                model=f"openai:bench-sim@{sim.base_url}",
                data=str(data),
                dataset="auto",
                split="test",
                limit=args.examples,
                judge=f"openai:bench-judge@{judge.base_url}",
                embedding=args.embedding,
                out=str(Path(tmp) / "run"),
                progress=False,
                **extra,
            )
            started = time.monotonic()
            result = run_eval(cfg)
            wall = time.monotonic() - started
            sim_calls, judge_calls = len(sim.chat_requests), len(judge.chat_requests)
    rate = result.results["timing"]["examples_per_s"]
    evaluated = result.results["timing"]["elapsed_s"]
    print(result.summary())
    print(
        f"\n{result.examples} examples, latency {args.latency * 1000:.0f} ms per server, "
        f"concurrency {cfg.concurrency}, embedding {'on' if args.embedding else 'off'}"
    )
    print(f"simulator requests {sim_calls}, judge requests {judge_calls}")
    print(f"evaluation {evaluated:.2f} s -> {rate:.1f} examples/s (wall incl. setup {wall:.2f} s)")
    if rate < args.min_rate:
        print(f"FAIL: below {args.min_rate} examples/s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
