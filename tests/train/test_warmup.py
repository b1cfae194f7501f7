"""Format warm-up: targets weighted on tags, only target positions projected, loss goes down."""

from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer

from humanlm.train.warmup import (
    _batch,
    _encode_target,
    build_warmup_dataset,
    run_warmup,
    swap_writers,
)


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


def _example(post, user, reply):
    return {
        "example_id": f"{post}-{user}",
        "post_id": post,
        "user_id": user,
        "persona": f"persona of {user}",
        "messages": [{"role": "user", "name": "op", "content": f"post {post}"}],
        "ground_truth": reply,
        "trace": f"thinking of {user}",
        "states": {"stance": f"stance of {user}"},
        "data_source": "reddit",
    }


def test_swap_writers_gives_every_example_another_users_target_on_the_same_post():
    examples = [_example("p1", u, f"reply {u}") for u in "abcd"] + [_example("p2", "a", "alone")]
    swapped = swap_writers(examples, seed=3)
    for old, new in zip(examples[:4], swapped[:4], strict=True):
        assert new["persona"] == old["persona"] and new["user_id"] == old["user_id"]
        assert new["ground_truth"] != old["ground_truth"]
        writer = new["ground_truth"].split()[-1]
        assert new["trace"] == f"thinking of {writer}"  # reply, trace and states move together
        assert new["states"] == {"stance": f"stance of {writer}"}
    assert sorted(s["ground_truth"] for s in swapped[:4]) == [f"reply {u}" for u in "abcd"]
    assert swapped[4]["ground_truth"] == "alone"  # nobody to swap with
    assert swap_writers(examples, seed=3) == swapped


def test_warmup_rows_teach_states_and_a_thinking_response():
    examples = [_example("p1", u, f"reply {u}") for u in "ab"]
    rows = build_warmup_dataset(examples, seed=0).to_list()
    response = [r for r in rows if r["state"] == "response"]
    assert len(response) == 4  # two examples, listed by both formats
    assert all(r["prompt"].endswith("<name>HUMAN</name>\n<think>\n") for r in response)
    assert all(
        r["completion"].startswith("thinking of ")
        and "</think>\n\n<response>reply " in r["completion"]
        for r in response
    )
    (stance,) = [r for r in rows if r["state"] == "stance" and "persona of a" in r["prompt"]]
    assert stance["completion"].startswith("<stance>stance of b</stance>")
