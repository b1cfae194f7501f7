"""Rebuild the shipped demo base (``src/humanlm/model/demo_base/``), deterministically.

The base is the demo tokenizer (a ~2k-token byte-level BPE trained on the demo world's text) and a
small Qwen3 on it, warmed up on the enlarged demo world: the train posts plus the extra posts of
``scripts/make_demo_world.py`` (no val or test post). It runs on one torch thread with fixed
seeds, so a rebuild gives the same loss curve (``demo_base.json`` records it).

Run:
    python scripts/build_demo_base.py                       # rewrite the shipped base (minutes)
    python scripts/build_demo_base.py --out /tmp/b --steps 20   # a short rebuild elsewhere
    python scripts/build_demo_base.py --out /tmp/b --steps 20 --check
        # exit 1 unless the first 20 losses match the shipped curve
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_demo_world  # noqa: E402  (the sibling script that writes the demo world)

from humanlm.data.resolve import resolve_split  # noqa: E402
from humanlm.demo.base import BASE_MARKER, DEFAULT_SETTINGS, build_demo_base  # noqa: E402
from humanlm.model.demo_base import demo_base_dir  # noqa: E402

# Losses of a rebuild may differ from the recorded ones by float rounding alone.
TOLERANCE = 1e-4


def enlarged_world(work_dir: Path) -> list[dict]:
    """The enlarged demo world's rows, prepared like any Humanual data."""
    raw = work_dir / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rows = make_demo_world.base_world_rows()
    (raw / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return resolve_split(raw, dataset="auto", split="train", work_dir=work_dir / "prepared")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=demo_base_dir(), help="output folder")
    parser.add_argument("--steps", type=int, default=DEFAULT_SETTINGS["steps"])
    parser.add_argument(
        "--check", action="store_true", help="compare the loss curve with the shipped base's"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        examples = enlarged_world(Path(tmp))
    marker = build_demo_base(args.out, examples, settings={"steps": args.steps}, progress=True)
    print(f"wrote {args.out} ({marker['parameters']:,} parameters, {len(examples)} examples)")
    if not args.check:
        return 0
    shipped = json.loads((demo_base_dir() / BASE_MARKER).read_text(encoding="utf-8"))
    ours, theirs = marker["losses"], shipped["losses"][: len(marker["losses"])]
    same = marker["data"] == shipped["data"] and all(
        math.isclose(a, b, abs_tol=TOLERANCE) for a, b in zip(ours, theirs, strict=True)
    )
    if not same:
        print(f"differs from the shipped base: {ours[:5]} vs {theirs[:5]}", file=sys.stderr)
        return 1
    print(f"the first {len(ours)} losses match the shipped base's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
