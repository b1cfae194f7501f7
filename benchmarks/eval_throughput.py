"""Benchmark ``humanlm eval`` throughput against scripted simulator and judge servers.

Both servers are ``ScriptedServer``s on 127.0.0.1, each in its own process as a real server
would be, answering after a fixed latency (300 ms by default): the simulator echoes a reply in
the response format, the judge answers group and aspects prompts with word-overlap scores. The
data are the bundled demo rows, replicated into ``--examples`` distinct rows (a raw Humanual file
prepared on the fly). The figure is examples per second over the evaluation itself (data
preparation and model loading excluded; the wall time including them is printed too).

The limit: an example waits for one simulator reply, then for its judge calls, which run at once;
with ``concurrency`` examples in flight the latencies allow ``concurrency / (2 * latency)``
examples per second (53/s at 32 and 300 ms). Target: at least 80% of it. Embedding similarity
(MiniLM on this CPU) is compute, not latency, and is off unless ``--embedding``.

Run:
    .venv/bin/python benchmarks/eval_throughput.py                 # 500 examples, 300 ms
    .venv/bin/python benchmarks/eval_throughput.py --examples 100 --embedding
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from server_process import ServerProcess

from humanlm.data.resolve import demo_data_dir
from humanlm.eval import EvalConfig, run_eval
from humanlm.testing import Reply
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
    parser.add_argument("--embedding", action="store_true", help="score embedding similarity")
    parser.add_argument("--target", type=float, default=0.8, help="fail below this share")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "rows.jsonl"
        write_rows(data, args.examples, seed=0)
        with (
            ServerProcess(reply_fn=simulator_reply, latency_s=args.latency) as sim,
            ServerProcess(reply_fn=judge_reply_fn(), latency_s=args.latency) as judge,
        ):
            extra = (
                {} if args.concurrency is None else {"simulator": {"concurrency": args.concurrency}}
            )
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
    sim_calls, judge_calls = sim.chat_requests, judge.chat_requests
    rate = result.results["timing"]["examples_per_s"]
    evaluated = result.results["timing"]["elapsed_s"]
    limit = cfg.simulator.concurrency / (2 * args.latency)
    print(result.summary())
    print(
        f"\n{result.examples} examples, latency {args.latency * 1000:.0f} ms per server, "
        f"concurrency {cfg.simulator.concurrency}, embedding {'on' if args.embedding else 'off'}"
    )
    print(f"simulator requests {sim_calls}, judge requests {judge_calls}")
    print(f"evaluation {evaluated:.2f} s (wall incl. setup {wall:.2f} s)")
    print(
        f"throughput {rate:.1f} examples/s; limit {limit:.1f}/s "
        f"(concurrency / (simulator + judge latency)) -> {rate / limit:.0%} "
        f"(target {args.target:.0%})"
    )
    if rate < args.target * limit:
        print(f"FAIL: below {args.target:.0%} of the limit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
