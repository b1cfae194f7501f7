"""What every rank of a multi-process run agrees on: the run folder, who writes, when to stop.

``humanlm train`` runs the same code on every process a launcher starts (``torchrun``,
``accelerate launch``). Anything that writes a file, decides to stop or runs a forward pass asks
here what the other ranks do meanwhile. A single process is the world of size 1: every helper
then degrades to the plain local operation.

Example:
    >>> state = init_distributed()  # doctest: +SKIP
    >>> run_dir = shared_run_dir("runs", "demo")  # rank 0 creates it, the others receive it
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from humanlm.log import make_run_dir

__all__ = [
    "all_gather",
    "barrier",
    "init_distributed",
    "is_main",
    "main_first",
    "merge_ledgers",
    "rank",
    "shared_run_dir",
    "world_size",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _dist() -> Any:
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def init_distributed() -> None:
    """Join the launcher's process group (gloo on CPU, NCCL on GPUs) before anything is written.

    The Trainer would do this itself when its arguments are built, but the run folder must be
    agreed on earlier. Without a launcher (no ``WORLD_SIZE`` above 1) nothing happens.
    """
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or _dist() is not None:
        return
    import torch
    from accelerate import PartialState

    PartialState(cpu=not torch.cuda.is_available())


def rank() -> int:
    """This process's global rank (0 without a process group)."""
    dist = _dist()
    return dist.get_rank() if dist else 0


def world_size() -> int:
    """The number of processes of the run (1 without a process group)."""
    dist = _dist()
    return dist.get_world_size() if dist else 1


def is_main() -> bool:
    """True on the process that writes run files (global rank 0)."""
    return rank() == 0


def barrier() -> None:
    """Wait until every rank got here."""
    dist = _dist()
    if dist:
        dist.barrier()


def all_gather(obj: T) -> list[T]:
    """``obj`` of every rank, in rank order, on every rank (picklable objects)."""
    dist = _dist()
    if not dist:
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def _broadcast(obj: T) -> T:
    dist = _dist()
    if not dist:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Run the block on rank 0 first, then on the others (for caches and shared folders)."""
    if not is_main():
        barrier()
    try:
        yield
    finally:
        if is_main():
            barrier()


def shared_run_dir(root: str | Path, name: str) -> Path:
    """The run folder: created by rank 0 (``make_run_dir``), its path sent to every other rank."""
    path = str(make_run_dir(root, name)) if is_main() else None
    return Path(_broadcast(path))


def merge_ledgers(ledgers: list[Any]) -> Any:
    """One judge ledger for the run out of each rank's ledger (counts add, latencies pool).

    The last-batch unscored fraction is the mean over ranks: every rank scores the same number of
    rollouts per step, so the mean equals the run-wide share.
    """
    first = ledgers[0]
    if len(ledgers) == 1:
        return first
    merged = type(first)(model=first.model, prices=first.prices)
    for ledger in ledgers:
        for counter in (
            "calls",
            "groups",
            "cache_hits",
            "no_call",
            "input_tokens",
            "output_tokens",
        ):
            setattr(merged, counter, getattr(merged, counter) + getattr(ledger, counter))
        merged.failures.update(ledger.failures)
        merged.retries.update(ledger.retries)
        merged.latencies.extend(ledger.latencies)
    fractions = [lg.last_batch_unscored_frac for lg in ledgers]
    if all(f is not None for f in fractions):
        merged.last_batch_unscored_frac = sum(fractions) / len(fractions)
    reasons: Counter[str] = Counter()
    for ledger in ledgers:
        reasons.update(ledger.last_batch_failures)
    merged.last_batch_failures = dict(reasons)
    return merged
