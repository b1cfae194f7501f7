"""``HumanlmDataset``: verl's ``RLHFDataset`` over prepared HumanLM examples, one item per state.

verl reads a dataset class from ``data.custom_cls`` (here ``pkg://humanlm.verl.dataset``,
``HumanlmDataset``) and builds it twice, for ``data.train_files`` and ``data.val_files``, with the
same config. Training serves every state of the mode's state set (7 items per example for
``humanlm``, the paper's state augmentation); validation serves the response only. The two
are told apart by comparing the files with ``data.val_files``, so the two file lists must differ.

Each item carries what the agent loop and the reward manager read:

- ``raw_prompt``: our per-state system prompt, then the context messages
  (``{role, name, content}``);
- ``data_source``; ``reward_model.ground_truth`` (the real reply, where verl's logs look for it);
- ``extra_info``: ``example_id``, ``state``, ``thinking`` (hetero thinking: the response only),
  ``tagged``, ``context`` (``{name, content}`` list for the judge), ``split`` and ``index``;
- ``agent_name``: ``humanlm_agent``.

Our settings live under ``data.humanlm``: ``mode`` (``humanlm``, ``grpo`` or ``grpo-think``, as in
``humanlm.states.MODES``) and ``seed`` (the state-mixing shuffle). With
``data.filter_overlong_prompts`` an example is dropped when its longest per-state prompt, rendered
with our template and counted with the tokenizer, exceeds ``data.max_prompt_length``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import datasets
import numpy as np
import torch
from omegaconf import DictConfig, ListConfig
from verl.utils.dataset.rl_dataset import RLHFDataset

from humanlm.data.prepare import load_prepared
from humanlm.errors import ConfigError, DataError
from humanlm.states import RESPONSE, augment_states, build_messages, get_state_set, is_thinking
from humanlm.states.examples import judge_context, render_prompt
from humanlm.states.modes import MODES
from humanlm.verl.agent_loop import AGENT_NAME

__all__ = ["GRPO_MODES", "HumanlmDataset", "dataset_settings"]

logger = logging.getLogger(__name__)

# The HumanLM modes that train with GRPO (the SFT modes have no rollouts to reward).
GRPO_MODES: tuple[str, ...] = tuple(m.name for m in MODES.values() if m.algorithm == "grpo")
_TOKENIZE_CHUNK = 256


def dataset_settings(data_config: Mapping[str, Any]) -> tuple[str, bool, int]:
    """``(state_set, thinking, seed)`` from ``data.humanlm``.

    Raises:
        ConfigError: an unknown mode, or an SFT mode.
    """
    settings = data_config.get("humanlm") or {}
    mode = settings.get("mode", "humanlm")
    if mode not in GRPO_MODES:
        raise ConfigError(
            f"data.humanlm.mode: {mode!r} cannot train on verl; use one of {', '.join(GRPO_MODES)}"
        )
    return MODES[mode].state_set, MODES[mode].thinking, int(settings.get("seed", 0))


def _file_list(files: Any) -> list[str]:
    if files is None:
        return []
    if isinstance(files, list | tuple | ListConfig):
        return [os.path.abspath(os.path.expanduser(str(f))) for f in files]
    return [os.path.abspath(os.path.expanduser(str(files)))]


def _split_of(data_files: Sequence[str], config: Mapping[str, Any]) -> str:
    files = _file_list(list(data_files))
    train, val = _file_list(config.get("train_files")), _file_list(config.get("val_files"))
    if train == val:
        raise ConfigError(
            "data.train_files and data.val_files name the same files; HumanlmDataset tells "
            "training (all states) from validation (response only) by them, so point "
            "data.val_files at the prepared val split"
        )
    return "val" if files == val else "train"


class HumanlmDataset(RLHFDataset):
    """verl dataset of (prepared example, state) items (verl requires subclassing RLHFDataset).

    Args:
        data_files: prepared parquet file(s) written by ``humanlm data prepare``.
        tokenizer: the policy tokenizer (counts prompt tokens for the length filter).
        config: verl's ``data`` config.
        processor: unused (text only).
        max_samples: keep this many examples (before state augmentation); -1 keeps all.
    """

    def __init__(
        self,
        data_files: str | list[str],
        tokenizer: Any,
        config: DictConfig,
        processor: Any = None,
        max_samples: int = -1,
    ):
        files = list(data_files) if isinstance(data_files, list | ListConfig) else [data_files]
        self.split = _split_of(files, config)
        self.state_set, self.thinking, self.state_seed = dataset_settings(config)
        spec = get_state_set(self.state_set)
        self.tagged = spec.tagged
        self.states: tuple[str, ...] = spec.states if self.split == "train" else (RESPONSE,)
        self.examples: list[dict[str, Any]] = []
        super().__init__(files, tokenizer, config, processor=processor, max_samples=max_samples)

    def _read_files_and_tokenize(self) -> None:
        examples = [ex for path in self.data_files for ex in load_prepared(path)]
        if not examples:
            raise DataError("no examples in the prepared files", file=", ".join(self.data_files))
        if 0 < self.max_samples < len(examples):
            if self.shuffle:
                rng = np.random.default_rng(*((self.seed,) if self.seed is not None else ()))
                picked = sorted(rng.choice(len(examples), size=self.max_samples, replace=False))
                examples = [examples[i] for i in picked]
            else:
                examples = examples[: self.max_samples]
        if self.filter_overlong_prompts:
            examples = self._drop_long_examples(examples)
        if not examples:
            raise DataError(
                f"every example is longer than data.max_prompt_length={self.max_prompt_length} "
                "tokens; raise it",
                file=", ".join(self.data_files),
            )
        self.examples = examples
        if self.split == "train":
            index = {id(ex): i for i, ex in enumerate(examples)}
            pairs = augment_states(examples, state_set=self.state_set, seed=self.state_seed)
            rows = [(index[id(ex)], st) for ex, st in pairs]
        else:
            rows = [(i, RESPONSE) for i in range(len(examples))]
        self.dataframe = datasets.Dataset.from_dict(
            {"example_index": [i for i, _ in rows], "state": [st for _, st in rows]}
        )
        logger.info(
            "%s: %d examples -> %d items (states: %s)",
            self.split,
            len(examples),
            len(self.dataframe),
            ", ".join(self.states),
        )

    def prompt_text(self, example: Mapping[str, Any], state: str) -> str:
        """The rendered prompt of one item (the text the agent loop renders from ``raw_prompt``)."""
        return render_prompt(example, state, state_set=self.state_set, thinking=self.thinking)

    def _drop_long_examples(self, examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Keep examples whose longest item prompt fits in ``max_prompt_length`` tokens."""
        texts = [self.prompt_text(ex, st) for ex in examples for st in self.states]
        lengths: list[int] = []
        for start in range(0, len(texts), _TOKENIZE_CHUNK):
            chunk = texts[start : start + _TOKENIZE_CHUNK]
            ids = self.tokenizer(chunk, add_special_tokens=False)["input_ids"]
            lengths.extend(len(x) for x in ids)
        per_state = len(self.states)
        kept = [
            ex
            for i, ex in enumerate(examples)
            if max(lengths[i * per_state : (i + 1) * per_state]) <= self.max_prompt_length
        ]
        if len(kept) < len(examples):
            logger.info(
                "%s: dropped %d of %d examples longer than %d prompt tokens",
                self.split,
                len(examples) - len(kept),
                len(examples),
                self.max_prompt_length,
            )
        return kept

    def __getitem__(self, item: int) -> dict[str, Any]:
        row = self.dataframe[item]
        example = self.examples[row["example_index"]]
        state = row["state"]
        return {
            "raw_prompt": build_messages(example, state, state_set=self.state_set),
            "data_source": example["data_source"],
            "reward_model": {"style": "humanlm_judge", "ground_truth": example["ground_truth"]},
            "extra_info": {
                "index": item,
                "example_id": example["example_id"],
                "state": state,
                "thinking": is_thinking(state, thinking=self.thinking),
                "tagged": self.tagged,
                "context": judge_context(example),
                "split": self.split,
            },
            "agent_name": AGENT_NAME,
            "index": item,
            "tools_kwargs": {},
            "interaction_kwargs": {},
            # verl needs one tensor per row so that DataProto.batch is not empty.
            "dummy_tensor": torch.tensor([0], dtype=torch.uint8),
        }

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        if "dataframe" not in state:  # verl re-reads the files on resume; drop the examples too
            state.pop("examples", None)
        return state
