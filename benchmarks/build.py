"""Benchmark ``humanlm data build`` on a seeded synthetic corpus (no personas, no network).

The corpus has 25,000 users and 250,000 replies: about 24,000 ordinary threads (a post and ~10
replies, each answering the post or an earlier reply) plus 50 deep threads where every reply
answers the previous one (200 levels), so parent chains are long. The build runs in a child
process; the figures are its wall time and its peak resident memory, read from
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` after it exits (the whole child: interpreter,
imports, data).

Run:
    .venv/bin/python benchmarks/build.py                       # 250k replies, JSON lines input
    .venv/bin/python benchmarks/build.py --replies 20000 --format parquet --keep /tmp/bench
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

WORDS = (
    "the a rent landlord friend money fair honestly think agree never always because wedding "
    "sister job boss kids dog car party gift sorry rude kind calm update edit lol really maybe "
    "should would could situation family partner texted called week months years told asked"
).split()
DEEP_THREADS = 50
DEEP_LEVELS = 200
START = 1_600_000_000


def make_corpus(*, replies: int, users: int, seed: int) -> list[dict]:
    """Items of the synthetic corpus (posts first within each thread, then replies in time order)."""
    rng = random.Random(seed)
    names = [f"user{n:05d}" for n in range(users)]
    # Every user writes at least one reply; the rest follow a Zipf-like activity (weight
    # 1/(rank+20)), so a few hundred users write dozens of replies and most write a handful.
    authors = names + rng.choices(
        names, weights=[1 / (r + 20) for r in range(users)], k=max(0, replies - users)
    )
    rng.shuffle(authors)
    slots = iter(authors)

    def text(low: int, high: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))

    items: list[dict] = []
    deep_replies = DEEP_THREADS * DEEP_LEVELS
    ordinary = max(1, (replies - deep_replies) // 10)
    per_thread = [(replies - deep_replies) // ordinary] * ordinary
    per_thread[-1] += (replies - deep_replies) - sum(per_thread)
    plans = [(n, False) for n in per_thread] + [(DEEP_LEVELS, True)] * DEEP_THREADS
    rng.shuffle(plans)
    for t, (count, deep) in enumerate(plans):
        thread = f"t{t}"
        start = START + rng.randint(0, 2 * 365 * 86400)
        items.append(
            {
                "item_id": thread,
                "thread_id": thread,
                "author": f"op{t}",
                "text": text(60, 200),
                "timestamp": start,
            }
        )
        ids = [thread]
        for r in range(count):
            parent = ids[-1] if deep else rng.choice(ids)
            item = f"{thread}c{r}"
            items.append(
                {
                    "item_id": item,
                    "thread_id": thread,
                    "parent_id": parent,
                    "author": next(slots),
                    "text": text(5, 90),
                    "timestamp": start + 60 * (r + 1),
                    "metadata": {"score": rng.randint(-5, 50)},
                }
            )
            ids.append(item)
    return items


def write_corpus(items: list[dict], folder: Path, fmt: str) -> Path:
    if fmt == "jsonl":
        path = folder / "items.jsonl"
        with path.open("w", encoding="utf-8") as fh:
            for item in items:
                fh.write(json.dumps(item) + "\n")
        return path
    names = ("item_id", "thread_id", "parent_id", "author", "text", "timestamp")
    columns = {n: [i.get(n) for i in items] for n in names}
    columns["metadata"] = [json.dumps(i.get("metadata") or {}) for i in items]
    table = pa.table(columns)
    path = folder / f"items.{fmt}"
    if fmt == "parquet":
        pq.write_table(table, path)
    else:
        pacsv.write_csv(table, path)
    return path


def child(corpus: str, out: str) -> None:
    """The measured part: one `run_build`, timed from inside as well."""
    started = time.perf_counter()
    from humanlm.ingest.dataset import run_build

    summary = run_build(inputs=[corpus], out_dir=out, personas=False)
    print(summary.describe())
    print(f"child: build took {time.perf_counter() - started:.1f} s (after interpreter start)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--replies", type=int, default=250_000)
    parser.add_argument("--users", type=int, default=25_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=("jsonl", "parquet", "csv"), default="jsonl")
    parser.add_argument("--keep", type=Path, help="write the corpus and output here (kept)")
    parser.add_argument("--child", nargs=2, metavar=("CORPUS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    folder = args.keep or Path(tempfile.mkdtemp(prefix="humanlm_build_bench_"))
    folder.mkdir(parents=True, exist_ok=True)
    items = make_corpus(replies=args.replies, users=args.users, seed=args.seed)
    corpus = write_corpus(items, folder, args.format)
    del items
    print(f"corpus: {corpus} ({corpus.stat().st_size / 2**20:.0f} MiB)")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(corpus), str(folder / "out")], check=False
    )
    wall = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    if done.returncode:
        sys.exit(done.returncode)
    print(f"build: {wall:.1f} s wall (child process, imports included)")
    print(f"peak memory: {peak_kib / 2**20:.2f} GiB (max RSS of the child, getrusage)")


if __name__ == "__main__":
    main()
