"""How validation divides its examples over the ranks of a multi-process run."""

import pytest

from humanlm.train.validation import _shard


@pytest.mark.parametrize(("n", "world", "batch"), [(3, 2, 1), (8, 2, 8), (5, 4, 2), (1, 2, 8)])
def test_every_rank_makes_the_same_number_of_generate_calls(n, world, batch):
    shards = [_shard(n, rank=r, world_size=world, batch_size=batch) for r in range(world)]
    assert sorted(i for mine, _ in shards for i in mine) == list(range(n))  # each example once
    calls = {c for _, c in shards}
    assert len(calls) == 1  # FSDP2 / ZeRO-3: every rank joins every forward pass
    assert all(-(-len(mine) // batch) <= c for mine, c in shards)
