"""`run_build`: raw items in several formats and layouts -> Humanual splits that validate and prepare."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from humanlm.data.prepare import load_prepared, run_prepare
from humanlm.data.validate import validate_source
from humanlm.enrich.personas import _persona_replies
from humanlm.errors import ConfigError, DataError
from humanlm.ingest.dataset import run_build
from humanlm.ingest.output import SUMMARY_FILE, read_built
from humanlm.ingest.raw_formats import parse_columns, parse_timestamp, read_items
from humanlm.states.ending import END_SIGNAL as END

START = 1_700_000_000
USERS = ("ann", "bob", "cyd", "dee", "eve")


def forum_items(*, threads: int = 20, replies: int = 6, seed: int = 0) -> list[dict[str, Any]]:
    """A small forum: posts with replies that answer the post or an earlier reply; unique texts."""
    rng = random.Random(seed)
    items = []
    for t in range(threads):
        post, start = f"p{t}", START + t * 86400
        items.append(
            {
                "item_id": post,
                "thread_id": post,
                "author": f"op{t}",
                "text": f"Post {t}: my question.",
                "timestamp": start,
            }
        )
        ids = [post]
        for r in range(replies):
            item = f"p{t}r{r}"
            items.append(
                {
                    "item_id": item,
                    "thread_id": post,
                    "parent_id": rng.choice(ids),
                    "author": USERS[(t + r) % len(USERS)],
                    "text": f"Reply {r} in thread {t} by {USERS[(t + r) % len(USERS)]}.",
                    "timestamp": start + 60 * (r + 1),
                    "metadata": {"score": r},
                }
            )
            ids.append(item)
    return items


def write_items(path: Path, items: list[dict[str, Any]]) -> Path:
    """Write items as .jsonl, .csv or .parquet (by suffix); metadata becomes JSON text in CSV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(i) + "\n" for i in items), "utf-8")
        return path
    rows = [
        {**i, "metadata": json.dumps(i["metadata"]) if "metadata" in i else None} for i in items
    ]
    names = sorted({k for r in rows for k in r})
    if path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=names)
            writer.writeheader()
            writer.writerows(rows)
    else:
        pq.write_table(pa.Table.from_pylist([{n: r.get(n) for n in names} for r in rows]), path)
    return path


def build(tmp_path: Path, items: list[dict[str, Any]], name: str = "items.jsonl", **options: Any):
    source = write_items(tmp_path / "raw" / name, items)
    options.setdefault("fixed_persona", "A forum user.")
    return run_build(inputs=[source], out_dir=tmp_path / "out", **options)


def rows_of(folder: Path) -> dict[str, list[dict[str, Any]]]:
    return {s: pq.read_table(folder / f"{s}.parquet").to_pylist() for s in ("train", "val", "test")}


def test_build_writes_humanual_splits_card_and_summary(tmp_path):
    summary = build(tmp_path, forum_items(), split_by="thread")
    out = tmp_path / "out"
    rows = rows_of(out)
    assert sum(len(r) for r in rows.values()) == summary.info["stats"]["rows"] > 0
    row = rows["train"][0]
    assert set(row) == {
        "prompt",
        "completion",
        "user_id",
        "post_id",
        "turn_id",
        "timestamp",
        "metadata",
        "persona",
    }
    assert row["turn_id"] == len(row["prompt"])
    assert row["prompt"][0]["content"].startswith("Post ")  # message 0 is the thread's post
    assert json.loads(row["metadata"])["item_id"].startswith(row["post_id"])
    assert all(isinstance(json.loads(m["metadata"]), dict) for m in row["prompt"])
    card = (out / "README.md").read_text()
    assert "| train |" in card and "reply words" in card and "context messages" in card
    info = json.loads((out / SUMMARY_FILE).read_text())
    assert info["personas"] == {"source": "fixed"}
    assert summary.validated_rows == info["stats"]["rows"]
    assert "validated:" in summary.describe()


def test_prompt_follows_the_parent_chain_of_a_deep_thread(tmp_path):
    items = [{"item_id": "p", "thread_id": "p", "author": "op", "text": "post", "timestamp": START}]
    for d in range(300):  # each reply answers the previous one
        items.append(
            {
                "item_id": f"c{d}",
                "thread_id": "p",
                "parent_id": "p" if d == 0 else f"c{d - 1}",
                "author": USERS[d % 2],
                "text": f"level {d}",
                "timestamp": START + d + 1,
            }
        )
    # A sibling branch must not appear in the chain.
    items.append(
        {
            "item_id": "side",
            "thread_id": "p",
            "parent_id": "p",
            "author": "cyd",
            "text": "aside",
            "timestamp": START + 5,
        }
    )
    build(tmp_path, items, ratios=(1, 0, 0))
    rows = {r["completion"]: r for r in rows_of(tmp_path / "out")["train"]}
    deepest = rows["level 299"]
    assert [m["content"] for m in deepest["prompt"]] == ["post"] + [
        f"level {d}" for d in range(299)
    ]
    assert deepest["turn_id"] == 300
    assert [m["content"] for m in rows["aside"]["prompt"]] == ["post"]
    assert [m["role"] for m in rows["level 2"]["prompt"]] == ["op", "ann", "bob"]


def test_flat_threads_use_time_order(tmp_path):
    # No parent ids at all: contexts are every earlier item of the thread, oldest first.
    items = [
        {
            "item_id": "m3",
            "thread_id": "t",
            "author": "bob",
            "text": "third",
            "timestamp": START + 30,
        },
        {
            "item_id": "m1",
            "thread_id": "t",
            "author": "ann",
            "text": "first",
            "timestamp": START + 10,
        },
        {
            "item_id": "m2",
            "thread_id": "t",
            "author": "cyd",
            "text": "second",
            "timestamp": START + 20,
        },
    ]
    build(tmp_path, items, ratios=(1, 0, 0))
    rows = rows_of(tmp_path / "out")["train"]
    assert [(r["completion"], [m["content"] for m in r["prompt"]]) for r in rows] == [
        ("second", ["first"]),
        ("third", ["first", "second"]),
    ]


def test_unusable_items_are_dropped_and_counted(tmp_path):
    items = forum_items(threads=2, replies=1)
    items += [
        {
            "item_id": "x1",
            "thread_id": "p0",
            "parent_id": "p0",
            "author": "[deleted]",
            "text": "hi",
            "timestamp": START + 5,
        },
        {
            "item_id": "x2",
            "thread_id": "p0",
            "parent_id": "p0",
            "author": "",
            "text": "hi",
            "timestamp": START + 6,
        },
        {
            "item_id": "x3",
            "thread_id": "p0",
            "parent_id": "x1",
            "author": "ann",
            "text": "   ",
            "timestamp": START + 7,
        },
        {
            "item_id": "x4",
            "thread_id": "p0",
            "parent_id": "x1",
            "author": "ann",
            "text": "[removed]",
            "timestamp": START + 8,
        },
        {"item_id": "x5", "thread_id": "p0", "parent_id": "x1", "author": "ann", "text": "undated"},
        {
            "item_id": "x6",
            "thread_id": "p0",
            "parent_id": "x1",
            "author": "ann",
            "text": "a " * 50,
            "timestamp": START + 9,
        },
        {
            "item_id": "x7",
            "thread_id": "p0",
            "parent_id": "x1",
            "author": "bob",
            "text": "kept",
            "timestamp": START + 9,
        },
        {
            "item_id": "x7",
            "thread_id": "p0",
            "parent_id": "x1",
            "author": "bob",
            "text": "duplicate id",
            "timestamp": START + 9,
        },
        {
            "item_id": "x8",
            "parent_id": "x1",
            "author": "bob",
            "text": "no thread",
            "timestamp": START + 9,
        },
    ]
    summary = build(tmp_path, items, ratios=(1, 0, 0), max_reply_words=20, min_replies=1)
    assert summary.info["items_dropped"] == {"duplicate_item": 1, "missing_thread_id": 1}
    assert summary.info["replies_dropped"] == {
        "deleted_author": 2,
        "empty_text": 2,
        "no_timestamp": 1,
        "too_long": 1,
    }
    kept = {r["completion"]: r for r in rows_of(tmp_path / "out")["train"]}
    # A deleted author's text still serves as context, under a placeholder role.
    assert [m["role"] for m in kept["kept"]["prompt"]] == ["op0", "[deleted]"]
    assert "deleted_author: reply by a deleted or unknown author" in summary.describe()


def test_max_reply_chars(tmp_path):
    summary = build(tmp_path, forum_items(threads=12), ratios=(1, 0, 0), max_reply_chars=27)
    assert all(len(r["completion"]) <= 27 for r in rows_of(tmp_path / "out")["train"])
    assert summary.info["replies_dropped"]["too_long"] > 0


@pytest.mark.parametrize("name", ["items.csv", "items.parquet"])
def test_csv_and_parquet_inputs_match_jsonl(tmp_path, name):
    items = forum_items(threads=8)
    build(tmp_path / "a", items)
    build(tmp_path / "b", items, name=name)
    assert rows_of(tmp_path / "a" / "out") == rows_of(tmp_path / "b" / "out")


def test_build_needs_a_persona_choice(tmp_path):
    with pytest.raises(ConfigError, match="--llm SPEC.*--fixed-persona TEXT.*--no-personas"):
        run_build(inputs=[tmp_path / "missing.jsonl"], out_dir=tmp_path / "out")
    with pytest.raises(ConfigError, match="choose one"):
        run_build(inputs=["x"], out_dir=tmp_path, fixed_persona="A.", personas=False)


def test_no_personas_leaves_the_column_empty(tmp_path):
    build(tmp_path, forum_items(threads=3), fixed_persona=None, personas=False)
    assert {r["persona"] for rows in rows_of(tmp_path / "out").values() for r in rows} == {""}


def test_reddit_layout(tmp_path):
    submissions = [
        {
            "id": "abc",
            "author": "op",
            "title": "AITA?",
            "selftext": "Long story.",
            "created_utc": START,
        }
    ]
    comments = [
        {
            "id": "c1",
            "link_id": "t3_abc",
            "parent_id": "t3_abc",
            "author": "ann",
            "body": "NTA.",
            "created_utc": str(START + 60),
            "subreddit": "AmItheAsshole",
        },
        {
            "id": "c2",
            "link_id": "t3_abc",
            "parent_id": "t1_c1",
            "author": "bob",
            "body": "Agreed.",
            "created_utc": START + 120,
        },
    ]
    write_items(tmp_path / "raw" / "s.jsonl", submissions)
    write_items(tmp_path / "raw" / "c.jsonl", comments)
    run_build(
        inputs=[tmp_path / "raw"],
        out_dir=tmp_path / "out",
        layout="reddit",
        ratios=(1, 0, 0),
        fixed_persona="x",
    )
    rows = {r["completion"]: r for r in rows_of(tmp_path / "out")["train"]}
    assert [m["content"] for m in rows["Agreed."]["prompt"]] == ["AITA?\n\nLong story.", "NTA."]
    assert rows["NTA."]["post_id"] == "abc" and rows["NTA."]["timestamp"] == START + 60
    assert json.loads(rows["NTA."]["metadata"])["subreddit"] == "AmItheAsshole"


def test_enron_layout_reads_email_dates_in_thread_order(tmp_path):
    mails = [
        {
            "message_id": "<2@x>",
            "thread": "T",
            "from": "b@x.com",
            "body": "Re: fine",
            "date": "Tue, 02 Jan 2001 10:00:00 -0800",
            "subject": "Plan",
        },
        {
            "message_id": "<1@x>",
            "thread": "T",
            "from": "a@x.com",
            "body": "Plan?",
            "date": "Mon, 01 Jan 2001 09:00:00 -0800",
            "subject": "Plan",
        },
    ]
    write_items(tmp_path / "mails.csv", mails)
    run_build(
        inputs=[tmp_path / "mails.csv"],
        out_dir=tmp_path / "out",
        layout="enron",
        ratios=(1, 0, 0),
        fixed_persona="x",
    )
    (row,) = rows_of(tmp_path / "out")["train"]
    assert row["completion"] == "Re: fine" and row["user_id"] == "b@x.com"
    assert [m["role"] for m in row["prompt"]] == ["a@x.com"]
    assert row["timestamp"] == parse_timestamp("2001-01-02T18:00:00Z")


def test_column_mapping_and_hashed_authors(tmp_path):
    items = [
        {
            "id": i["item_id"],
            "conv": i["thread_id"],
            "re": i.get("parent_id"),
            "who": i["author"],
            "body": i["text"],
            "ts": i["timestamp"],
        }
        for i in forum_items(threads=4)
    ]
    columns = parse_columns(
        ["item_id=id,thread_id=conv", "parent_id=re,author=who,text=body,timestamp=ts"]
    )
    build(tmp_path, items, columns=columns, hash_authors=True, ratios=(1, 0, 0))
    rows = rows_of(tmp_path / "out")["train"]
    assert rows and all(r["user_id"].startswith("u") and len(r["user_id"]) == 17 for r in rows)
    # The same author gets the same pseudonym as role and as user id.
    assert any(m["role"] == r["user_id"] for r in rows for m in r["prompt"])


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown field"):
        parse_columns(["nickname=user"])
    with pytest.raises(DataError, match="no such input"):
        read_items([tmp_path / "nope.jsonl"])
    wrong = write_items(tmp_path / "w.jsonl", [{"id": 1, "body": "x"}])
    with pytest.raises(DataError, match="no values for thread_id, author"):
        read_items([wrong])
    with pytest.raises(DataError, match="no reply rows are left"):
        build(tmp_path, forum_items(threads=2), min_replies=50)


def test_parent_cycles_are_cut(tmp_path):
    items = forum_items(threads=1, replies=0) + [
        {
            "item_id": "a",
            "thread_id": "p0",
            "parent_id": "b",
            "author": "ann",
            "text": "A",
            "timestamp": START + 1,
        },
        {
            "item_id": "b",
            "thread_id": "p0",
            "parent_id": "a",
            "author": "bob",
            "text": "B",
            "timestamp": START + 2,
        },
    ]
    summary = build(tmp_path, items, ratios=(1, 0, 0))
    assert summary.info["parent_cycles_cut"] == 1
    for row in rows_of(tmp_path / "out")["train"]:
        assert row["prompt"][0]["content"].startswith("Post 0")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_700_000_000, 1_700_000_000),  # seconds
        (1_700_000_000_123, 1_700_000_000),  # milliseconds
        ("1700000000.5", 1_700_000_000),  # numeric text
        ("2023-11-14T22:13:20Z", 1_700_000_000),  # ISO 8601
        ("Tue, 14 Nov 2023 22:13:20 +0000", 1_700_000_000),  # RFC 2822
        ("yesterday", None),  # unreadable
        (None, None),  # missing
    ],
)
def test_parse_timestamp(value, expected):
    assert parse_timestamp(value) == expected


def test_build_output_validates_and_prepares_with_human_naming(tmp_path):
    build(tmp_path, forum_items(threads=30), fixed_persona="A forum regular.")
    out = tmp_path / "out"
    assert validate_source(out).ok
    raw = rows_of(out)["train"]
    summary = run_prepare(source=out, dataset="generic", out_dir=tmp_path / "prepared")
    assert summary.written == sum(s.read for s in summary.splits)
    prepared = load_prepared(tmp_path / "prepared" / "train.parquet")
    assert len(prepared) == len(raw)
    for row, example in zip(raw, prepared, strict=True):
        names = [m["name"] for m in example["messages"]]
        own = [m["role"] == row["user_id"] for m in row["prompt"]]
        assert [n == "HUMAN" for n in names] == own  # the target's own messages, and only those
        assert row["user_id"] not in names
        assert example["persona"] == "A forum regular."


def test_end_to_end_to_sft_and_grpo_datasets(tmp_path):
    from humanlm.train.data import build_grpo_dataset, build_sft_dataset

    build(tmp_path, forum_items(threads=10), fixed_persona="A forum regular.")
    run_prepare(source=tmp_path / "out", dataset="generic", out_dir=tmp_path / "prepared")
    examples = load_prepared(tmp_path / "prepared" / "train.parquet")
    sft = build_sft_dataset(examples, state_set="r_no_tag", thinking=False)
    assert len(sft) == len(examples) and "<name>HUMAN</name>" in sft[0]["prompt"]
    grpo = build_grpo_dataset(examples, state_set="sebvgcr", thinking=True)
    assert len(grpo) == 7 * len(examples)
    assert set(grpo["state"]) == {
        "stance",
        "emotion",
        "belief",
        "value",
        "goal",
        "communication",
        "response",
    }


@pytest.mark.slow
def test_built_data_trains_one_sft_step(tmp_path):
    from humanlm.config import from_dict
    from humanlm.train.run import run_train

    build(tmp_path, forum_items(threads=6, replies=3), fixed_persona="A forum regular.")
    cfg = from_dict(
        {
            "mode": "sft",
            "model": {"path": "tiny"},
            "data": {"source": str(tmp_path / "out"), "dataset": "generic"},
            "trainer": {"max_steps": 1, "per_device_train_batch_size": 2},
            "output_root": str(tmp_path / "runs"),
        }
    )
    result = run_train(cfg, run_dir=tmp_path / "run")
    assert result.global_step == 1
    assert (result.model_dir / "config.json").is_file()


def test_amazon_layout_products_are_posts_and_reviews_answer_them(tmp_path):
    products = [
        {
            "parent_asin": "B1",
            "title": "A Book",
            "description": ["Long", "blurb"],
            "store": "Ann Author (Author)",
        }
    ]
    reviews = [
        {
            "user_id": "R1",
            "parent_asin": "B1",
            "title": "Great",
            "text": "Loved it.",
            "rating": 5,
            "timestamp": (START + 60) * 1000,
        },
        {
            "user_id": "R2",
            "parent_asin": "B1",
            "title": "Meh",
            "text": "Too long.",
            "rating": 2,
            "timestamp": (START + 90) * 1000,
        },
    ]
    write_items(tmp_path / "raw" / "meta.jsonl", products)
    write_items(tmp_path / "raw" / "reviews.jsonl", reviews)
    run_build(
        inputs=[tmp_path / "raw"],
        out_dir=tmp_path / "out",
        layout="amazon",
        ratios=(1, 0, 0),
        fixed_persona="x",
    )
    rows = rows_of(tmp_path / "out")["train"]
    assert [(r["user_id"], r["completion"], r["timestamp"]) for r in rows] == [
        ("R1", "Loved it.", START + 60),
        ("R2", "Too long.", START + 90),
    ]
    # Each review answers the product only, not the reviews before it.
    assert [[(m["role"], m["content"]) for m in r["prompt"]] for r in rows] == [
        [("Ann Author (Author)", "A Book\n\nLong\nblurb")]
    ] * 2
    assert json.loads(rows[0]["metadata"])["rating"] == 5


def test_wildchat_layout_keeps_model_turns_as_assistant_context(tmp_path):
    turns = [
        {
            "conversation_hash": "c1",
            "role": "user",
            "hashed_ip": "h1",
            "content": "Write a haiku.",
            "timestamp": "2023-04-01T10:00:00Z",
        },
        {
            "conversation_hash": "c1",
            "role": "assistant",
            "hashed_ip": "h1",
            "content": "Snow on pines...",
            "timestamp": "2023-04-01T10:00:05Z",
            "model": "gpt-4",
        },
        {
            "conversation_hash": "c1",
            "role": "user",
            "hashed_ip": "h1",
            "content": "Shorter, please.",
            "timestamp": "2023-04-01T10:01:00Z",
        },
    ]
    build(tmp_path, turns, layout="wildchat", ratios=(1, 0, 0))
    (row,) = rows_of(tmp_path / "out")["train"]
    assert row["completion"] == "Shorter, please." and row["user_id"] == "h1"
    assert [m["role"] for m in row["prompt"]] == ["h1", "assistant"]
    run_prepare(source=tmp_path / "out", dataset="generic", out_dir=tmp_path / "prepared")
    (example,) = load_prepared(tmp_path / "prepared" / "train.parquet")
    assert [(m["role"], m["name"]) for m in example["messages"]] == [
        ("user", "HUMAN"),
        ("assistant", "assistant"),
    ]


def test_youtube_layout_top_level_comments_answer_the_video(tmp_path):
    items = [
        {
            "video_id": "v1",
            "channel_title": "News",
            "title": "Storm",
            "description": "Live.",
            "published_at": "2022-01-01T00:00:00Z",
        },
        {
            "comment_id": "k1",
            "video_id": "v1",
            "author_display_name": "@ann",
            "text_original": "Stay safe",
            "published_at": "2022-01-01T01:00:00Z",
        },
        {
            "comment_id": "k2",
            "video_id": "v1",
            "parent_id": "k1",
            "author_display_name": "@bob",
            "text_original": "Thanks",
            "published_at": "2022-01-01T02:00:00Z",
        },
    ]
    build(tmp_path, items, layout="youtube", ratios=(1, 0, 0))
    rows = {r["completion"]: r for r in rows_of(tmp_path / "out")["train"]}
    assert [m["content"] for m in rows["Stay safe"]["prompt"]] == ["Storm\n\nLive."]
    assert [m["role"] for m in rows["Thanks"]["prompt"]] == ["News", "@ann"]


def test_hashing_keeps_placeholder_authors_and_nan_ids_are_missing(tmp_path):
    items = [
        {"item_id": "p", "thread_id": "p", "author": "op", "text": "post", "timestamp": START},
        {
            "item_id": "c",
            "thread_id": "p",
            "parent_id": float("nan"),
            "author": "[deleted]",
            "text": "x",
            "timestamp": START,
        },
    ]
    read = read_items([write_items(tmp_path / "i.parquet", items)], hash_authors=True)
    assert read.author[1] == "[deleted]" and read.author[0].startswith("u")
    assert read.parent_id == [None, None]


def chat_dump() -> list[dict[str, Any]]:
    """WildChat-layout turns: c0 and c2 end with the assistant, c1 with the user; c3 never gets a
    reply. c2 runs longest, so a turn split cuts it in two."""
    shapes = {"c0": (0, "h0", 4), "c1": (100, "h1", 3), "c2": (50, "h0", 8), "c3": (200, "h1", 2)}
    turns = []
    for conversation, (start, user, length) in shapes.items():
        for t in range(length):
            role = "user" if t % 2 == 0 else "assistant"
            step = 60 if conversation == "c2" else 10
            turns.append(
                {
                    "conversation_hash": conversation,
                    "role": role,
                    "hashed_ip": user,
                    "content": f"{conversation} {role} turn {t}",
                    "timestamp": START + start + t * step,
                    **({"model": "gpt-4"} if role == "assistant" else {}),
                }
            )
    return turns


def test_wildchat_layout_adds_one_end_row_per_conversation_in_its_last_turns_split(tmp_path):
    summary = build(tmp_path, chat_dump(), layout="wildchat", split_by="turn", ratios=(0.6, 0, 0.4))
    rows = rows_of(tmp_path / "out")
    ends = {
        r["post_id"]: (s, r) for s, part in rows.items() for r in part if r["completion"] == END
    }
    assert sorted(ends) == ["c0", "c2"]  # c1 ends with the user's turn; c3 has no reply
    assert summary.info["end_examples"] == 2 and "end examples: 2 added" in summary.describe()
    splits_of_c2 = {s for s, part in rows.items() for r in part if r["post_id"] == "c2"}
    assert len(splits_of_c2) == 2  # the turn split cuts c2: its end row follows its last turn
    for conversation, (split, end) in ends.items():
        real = [(s, r) for s, part in rows.items() for r in part if r["post_id"] == conversation]
        last_split, last = max(
            ((s, r) for s, r in real if r["completion"] != END), key=lambda sr: sr[1]["turn_id"]
        )
        assert split == last_split and end["user_id"] == last["user_id"] == "h0"
        # The whole conversation: the last reply's context, the reply, the assistant's answer.
        assert [m["content"] for m in end["prompt"]] == [
            *(m["content"] for m in last["prompt"]),
            last["completion"],
            f"{conversation} assistant turn {end['turn_id'] - 1}",
        ]
        assert end["prompt"][-1]["role"] == "assistant" and end["turn_id"] == len(end["prompt"])
        assert json.loads(end["metadata"])["end_of_conversation"] is True
    card = (tmp_path / "out" / "README.md").read_text("utf-8")
    assert "end examples: 2 rows" in card
    # `prepare` keeps the end rows that build wrote, by default even as `generic`.
    run_prepare(source=tmp_path / "out", dataset="generic", out_dir=tmp_path / "prepared")
    prepared = load_prepared(tmp_path / "prepared" / "train.parquet")
    prepared += load_prepared(tmp_path / "prepared" / "test.parquet")
    assert sum(e["ground_truth"] == END for e in prepared) == 2
    last_message = next(e for e in prepared if e["ground_truth"] == END)["messages"][-1]
    assert (last_message["role"], last_message["name"]) == ("assistant", "assistant")
    run_prepare(
        source=tmp_path / "out", dataset="generic", out_dir=tmp_path / "no_ends", end_examples=False
    )
    assert not any(
        e["ground_truth"] == END
        for s in ("train", "test")
        for e in load_prepared(tmp_path / "no_ends" / f"{s}.parquet")
    )


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"layout": "wildchat", "end_examples": False}, 0),  # --no-end-examples
        ({"layout": "generic"}, 0),  # off by default for layouts without assistant turns
        ({"layout": "generic", "end_examples": True}, 2),  # --end-examples
    ],
)
def test_end_rows_can_be_turned_off_and_on(tmp_path, options, expected):
    turns = chat_dump()
    if options["layout"] == "generic":
        turns = [
            {
                "thread_id": t["conversation_hash"],
                "author": "assistant" if t["role"] == "assistant" else t["hashed_ip"],
                "text": t["content"],
                "timestamp": t["timestamp"],
            }
            for t in turns
        ]
    build(tmp_path, turns, ratios=(1, 0, 0), **options)
    rows = rows_of(tmp_path / "out")["train"]
    assert sum(r["completion"] == END for r in rows) == expected
    assert sum(r["completion"] != END for r in rows) == 5  # the real replies are unchanged


def test_end_rows_need_conversation_contexts(tmp_path):
    with pytest.raises(ConfigError, match="end examples need conversations in time order"):
        build(tmp_path, chat_dump(), layout="wildchat", context="chain", end_examples=True)


def test_end_rows_are_not_summarised_into_personas(tmp_path):
    build(tmp_path, chat_dump(), layout="wildchat", ratios=(1, 0, 0))
    replies = _persona_replies(read_built(tmp_path / "out").tables, k=20)
    texts = [reply.text for chosen in replies.values() for reply in chosen]
    assert len(texts) == 5 and END not in texts
