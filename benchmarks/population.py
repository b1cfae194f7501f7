"""Benchmark the population metrics (``humanlm.population.metrics``) at the protocol's sizes.

Builds ``--examples`` synthetic sample records (a simulated and a real reply of 5-120 words
each, half reddit, half wildchat) and times ``population_metrics`` on them: diversity, length
and verdict distributions and the cross-validated detector, overall and per data source, once
with style features only (``--no-embedding`` runs) and once with MiniLM embeddings (the default
run, since ``--embedding`` is on by default). The MiniLM load is excluded. Limit: the
population step should stay under a seventh of the evaluation it summarises (at the measured
26-30 examples/s, 2,000 examples take about 70 s to evaluate, so 10 s).

Run:
    .venv/bin/python benchmarks/population.py                  # 2000 examples
    .venv/bin/python benchmarks/population.py --examples 500 --no-embedding
"""

from __future__ import annotations

import argparse
import random
import time

from humanlm.population.metrics import population_metrics

WORDS = (
    "the a my her his you should honestly maybe because NTA YTA ESH NAH INFO landlord rent "
    "sister friend money wedding party fair rude kind angry calm asked told paid owe"
).split()


def records(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)

    def reply() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 120)))

    return [
        {"response": reply(), "ground_truth": reply(), "data_source": ("reddit", "wildchat")[i % 2]}
        for i in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--no-embedding", action="store_true", help="style features only")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = records(args.examples, args.seed)
    started = time.perf_counter()
    population_metrics(data)
    style_s = time.perf_counter() - started
    print(f"{args.examples} examples, style features only: {style_s:.1f} s (limit 10 s)")
    if args.no_embedding:
        return
    from humanlm.judge.embedding import MiniLMEncoder

    encoder = MiniLMEncoder()
    encoder.encode(["load the model before the clock starts"])
    started = time.perf_counter()
    population_metrics(records(args.examples, args.seed + 1), encoder=encoder)
    minilm_s = time.perf_counter() - started
    print(
        f"{args.examples} examples, with MiniLM embeddings: {minilm_s:.1f} s "
        f"({2 * args.examples / minilm_s:.0f} replies/s encoded and classified)"
    )


if __name__ == "__main__":
    main()
