"""Format warm-up: targets weighted on tags, only target positions projected, loss goes down."""

from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer

from humanlm.train.warmup import _batch, _encode_target, run_warmup


def test_format_tokens_get_the_format_weight(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids, weights = _encode_target(
        "<stance>likes it</stance><|im_end|>", tokenizer, format_weight=5.0
    )
    assert tokenizer.decode(ids) == "<stance>likes it</stance><|im_end|>"
    content = tokenizer("likes it", add_special_tokens=False)["input_ids"]
    assert weights.count(1.0) == len(content)
    assert set(weights) == {1.0, 5.0}


def test_batch_left_pads_and_labels_only_the_targets(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = [
        {"prompt": "a long prompt with several words in it", "completion": "<goal>x</goal>"},
        {"prompt": "short", "completion": "<goal>a longer answer</goal>"},
    ]
    batch = _batch(rows, tokenizer, format_weight=2.0)
    keep = batch["keep"]
    target, _ = _encode_target("<goal>a longer answer</goal>", tokenizer, format_weight=2.0)
    assert keep == len(target) + 1
    assert batch["labels"][1].tolist() == target
    assert batch["input_ids"][1, -len(target) :].tolist() == target
    assert batch["attention_mask"][1, 0] == 0  # left padding
    assert (batch["weights"][0] > 0).sum() < len(target)


def test_warmup_lowers_the_loss(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    rows = [
        {"prompt": f"question {i}", "completion": "<stance>agrees</stance><|im_end|>"}
        for i in range(8)
    ]
    losses = run_warmup(
        model=model,
        tokenizer=tokenizer,
        dataset=Dataset.from_list(rows),
        steps=12,
        learning_rate=1e-2,
        batch_size=4,
        seed=0,
    )
    assert len(losses) == 12 and losses[-1] < losses[0] / 2
