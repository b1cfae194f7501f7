"""Fixtures for the verl adapter: prepared demo data, the composed config, a tokenizer, rollouts.

Every test module here starts with ``pytest.importorskip("verl")``; this file imports verl only
inside fixtures, so collecting it never fails without verl.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

# No test in this folder may run longer than this (a hang fails instead of blocking the suite).
TEST_LIMIT_S = 60


@pytest.fixture(autouse=True)
def _bounded_test() -> Iterator[None]:
    def fail(signum: int, frame: Any) -> None:
        raise TimeoutError(f"test ran longer than {TEST_LIMIT_S}s")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(TEST_LIMIT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run(coro: Awaitable[T], timeout: float = 20.0) -> T:
    """Run a coroutine with a hard time limit."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


@pytest.fixture(scope="session")
def prepared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled demo data prepared into ``train/val/test.parquet``."""
    from humanlm.data.prepare import run_prepare
    from humanlm.data.resolve import demo_data_dir

    out = tmp_path_factory.mktemp("prepared")
    run_prepare(source=demo_data_dir(), dataset="auto", out_dir=out)
    return out


@pytest.fixture(scope="session")
def tokenizer(tiny_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="session")
def base_config(prepared_dir: Path, tiny_model_dir: Path) -> Any:
    """The shipped config composed once, on the demo data and the tiny model."""
    from humanlm.verl.train import compose_config

    return compose_config(
        None,
        [
            f"data.train_files={prepared_dir / 'train.parquet'}",
            f"data.val_files={prepared_dir / 'val.parquet'}",
            f"actor_rollout_ref.model.path={tiny_model_dir}",
            "data.max_prompt_length=4096",
            "data.max_response_length=64",
            "reward.reward_kwargs.ledger_dir=null",
            "actor_rollout_ref.rollout.agent.num_workers=1",
        ],
    )


def configured(base: Any, updates: Mapping[str, Any]) -> Any:
    """A copy of ``base`` with dotted keys set, e.g. ``{"reward.num_workers": 2}``."""
    from omegaconf import OmegaConf, open_dict

    cfg = OmegaConf.create(OmegaConf.to_container(base))
    with open_dict(cfg):
        for key, value in updates.items():
            OmegaConf.update(cfg, key, value, force_add=True)
    return cfg


@pytest.fixture(scope="session")
def train_dataset(base_config: Any, tokenizer: Any) -> Any:
    from humanlm.verl.dataset import HumanlmDataset

    return HumanlmDataset(base_config.data.train_files, tokenizer, base_config.data)


@pytest.fixture(scope="session")
def val_dataset(base_config: Any, tokenizer: Any) -> Any:
    from humanlm.verl.dataset import HumanlmDataset

    return HumanlmDataset(base_config.data.val_files, tokenizer, base_config.data)


def rollout(tokenizer: Any, item: Mapping[str, Any], text: str, *, uid: str) -> Any:
    """One rollout as verl's agent loop hands it to a reward worker: a one-row ``DataProto``
    with the dataset row's fields, the group ``uid`` and the response tokens."""
    import numpy as np
    import torch
    from tensordict import TensorDict
    from verl.protocol import DataProto

    from humanlm.verl.agent_loop import build_prompt_ids

    thinking = bool(item["extra_info"]["thinking"])
    prompt = torch.tensor(build_prompt_ids(tokenizer, item["raw_prompt"], thinking=thinking))
    response = torch.tensor(tokenizer.encode(text, add_special_tokens=False), dtype=torch.int64)
    ids = torch.cat([prompt, response]).unsqueeze(0)
    batch = TensorDict(
        {
            "prompts": prompt.unsqueeze(0),
            "responses": response.unsqueeze(0),
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "position_ids": torch.arange(ids.shape[1]).unsqueeze(0),
        },
        batch_size=1,
    )
    fields = {k: v for k, v in item.items() if k != "dummy_tensor"}
    non_tensor = {k: np.empty(1, dtype=object) for k in [*fields, "uid"]}
    for key, value in fields.items():
        non_tensor[key][0] = value
    non_tensor["uid"][0] = uid
    return DataProto(batch=batch, non_tensor_batch=non_tensor)


def tagged(state: str, text: str) -> str:
    """A well-formed output for ``state`` (the response thinks first, as its prompt asks)."""
    body = f"<{state}>{text}</{state}>"
    return f"weighing the reply</think>\n\n{body}" if state == "response" else body


def items_of_state(dataset: Any, state: str, count: int) -> Sequence[Mapping[str, Any]]:
    """The first ``count`` dataset rows that ask for ``state``, from different examples."""
    rows, seen = [], set()
    for i in range(len(dataset)):
        row = dataset[i]
        info = row["extra_info"]
        if info["state"] == state and info["example_id"] not in seen:
            rows.append(row)
            seen.add(info["example_id"])
        if len(rows) == count:
            break
    return rows
