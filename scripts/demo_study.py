"""Run ``humanlm demo`` under one configuration and seed; print one line of the study's table.

docs/demo_study.md collects these lines: every configuration tried, with its seeds.

Run:
    python scripts/demo_study.py --out runs/study/default-s0 --seed 0
    python scripts/demo_study.py --out runs/study/g8-s1 --seed 1 grpo.num_generations=8
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from humanlm.demo import run_demo
from humanlm.demo.report import reward_trend
from humanlm.train.callbacks import read_metrics


def _reward(run_dir: Path) -> str:
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "reward" in r]
    if not rows:
        return "n/a"
    first, last = reward_trend(rows)
    return f"{first:.3f} -> {last:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE overrides of the demo preset")
    args = parser.parse_args()
    result = run_demo(args.out, overrides=[f"seed={args.seed}", *args.overrides], progress=False)
    cells = []
    for row in result.table["rows"]:
        kinds = "/".join("-" if v is None else f"{v:.0f}" for v in row["verdict_accuracy"].values())
        cells.append(
            f"{row['response_alignment']:.1f} [{row['ci_low']:.1f}, {row['ci_high']:.1f}] "
            f"v{row['valid_format']:.0f} k{kinds}"
        )
    line = {
        "overrides": " ".join(args.overrides) or "(preset)",
        "seed": args.seed,
        "seconds": round(result.seconds["total"]),
        "rows": cells,
        "reward grpo": _reward(args.out / "grpo"),
        "reward humanlm": _reward(args.out / "humanlm"),
    }
    print(json.dumps(line))
    with (args.out.parent / "study.jsonl").open("a", encoding="utf-8") as log:
        log.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
