"""Exact rendered prompts for real rows of every platform, and the HUMAN naming rules."""

from __future__ import annotations

import json

import pytest

from humanlm.data.authors import learn_author_map
from humanlm.data.persona import render_persona
from humanlm.data.prepare import load_prepared, run_prepare
from humanlm.data.render import RENDERERS, render_context, render_message
from humanlm.data.schema import normalize_row
from humanlm.data.sources import DATASET_IDS
from humanlm.states import build_messages, is_thinking
from humanlm.states.template import render_chat
from tests.data.samples import SAMPLE, sample_row, sample_rows

GENERATION_PROMPT = "<|im_start|>user\n<name>HUMAN</name>\n<think>\n"


def turn(name: str, content: str) -> str:
    return f"<|im_start|>user\n<name>{name}</name>\n{content}<|im_end|>\n"


def assistant(content: str) -> str:
    return f"<|im_start|>assistant\n{content}<|im_end|>\n"


def content(raw: dict, index: int) -> str:
    return raw["prompt"][index]["content"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    sample_rows()  # skips when the fixture is absent
    out = tmp_path_factory.mktemp("prepared")
    run_prepare(source=SAMPLE, dataset="auto", out_dir=out)
    return {
        (r["data_source"], r["post_id"], r["turn_id"]): r
        for r in load_prepared(out / "train.parquet")
    }


def model_text(example: dict, state: str = "response") -> str:
    """What `humanlm data show` prints for this row and state (sebvgcr, bundled template)."""
    messages = build_messages(example, state, state_set="sebvgcr")
    return render_chat(messages, thinking=is_thinking(state, thinking=True))


def context_part(text: str) -> str:
    system, rest = text.split("<|im_end|>\n", 1)
    assert system.startswith("<|im_start|>system\n")
    return rest


AMAZON_CORRECTIONS = (
    "- Category: Books > Literature & Fiction > Contemporary\n"
    "- Title: THE CORRECTIONS.\n"
    "- Subtitle: Hardcover – January 1, 2001\n"
    "- Author: Jonathan Franzen\n"
    "- About the author: Jonathan Franzen is the author of five novels--Purity, Freedom, The "
    "Corrections, The Twenty-Seventh City, and Strong Motion--and five works of nonfiction and "
    "translation, including Farther Away, How to Be Alone, and The Discomfort Zone, all "
    "published by Farrar, Straus and Giroux. He is a member of the American Academy of Arts and "
    "Letters, the German Akademie der Kunste, and the French Ordre des Arts et des Lettres.\n"
    "- Features:\n"
    '  - "Funny and deeply sad, large-hearted and merciless. The Corrections is a testament to '
    'the range and depth of pleasures great fiction affords." - David Foster Wallace > 1st '
    "Edition > Copyright 2001 by Jonathan Franzen > Published 2001 by Farrar Straus Giroux, New "
    "York > Measures 9.25 x 6.5 x 1.75 inches thick > 568 pages > Weighs 32 ounces\n"
    "- Details:\n"
    "  - Publisher: FARRAR, STRAUS & GIROUX. (January 1, 2001)\n"
    "  - Language: English\n"
    "  - Hardcover: 526 pages\n"
    "  - ISBN 10: 0002005093\n"
    "  - ISBN 13: 978-0002005098\n"
    "  - Item Weight: 2.05 pounds\n"
    "  - Dimensions: 6.3 x 1.68 x 9.29 inches"
)

AMAZON_ROGUE = (
    "- Category: Books\n"
    "- Title: The rogue of publishers' row;: Confessions of a publisher (A Banner Book)\n"
    "- Price: $4.95\n"
    "- Author: Edward Uhlan\n"
    "- About the author: Discover more of the author’s books, see similar authors, read author "
    "blogs and more\n"
    "- Details:\n"
    "  - Publisher: Banner (January 1, 1974)\n"
    "  - Language: English\n"
    "  - ISBN 10: 0000401048\n"
    "  - ISBN 13: 978-0000401045\n"
    "  - Item Weight: 7.2 ounces"
)


def _expected_context(hub_name: str, post_id: str, turn_id: int) -> str:
    raw = sample_row(hub_name, post_id=post_id, turn_id=turn_id)
    if hub_name == "book" and post_id == "0002005093":
        parts = [turn("Amazon store: Jonathan. Franzen (Author)", AMAZON_CORRECTIONS)]
    elif hub_name == "book":
        parts = [turn("Amazon store: Edward Uhlan (Author)", AMAZON_ROGUE)]
    elif hub_name == "opinion":
        parts = [
            turn("Fair-Measurement", content(raw, 0)),
            turn("browsingtheproduce", content(raw, 1)),
            turn("LumpyLionezz", content(raw, 2)),
        ]
    elif hub_name == "email":
        # Message 1 is this user's own earlier email (learned from the turn-1 row): HUMAN.
        parts = [turn("lamb.john@enron.com", content(raw, 0)), turn("HUMAN", content(raw, 1))]
    elif hub_name == "chat":
        parts = [
            turn("HUMAN", content(raw, 0)),
            assistant(content(raw, 1)),
            turn("HUMAN", content(raw, 2)),
            assistant(content(raw, 3)),
        ]
    elif hub_name == "news":
        video = json.loads(raw["prompt"][0]["metadata"])
        block = (
            f"Title: {video['title']}\n\nDescription: {content(raw, 0)}\n\n"
            f"Transcript: {video['transcript']}"
        )
        parts = [turn("CNN", block)]
    else:  # politics: no topic line in these posts, so the story is verbatim
        parts = [turn("f5a68c2bcaa7", content(raw, 0))]
    return "".join(parts) + GENERATION_PROMPT


EXACT_CASES = [
    ("book", "amazon", "0002005093", 1),
    ("book", "amazon", "0000401048", 1),
    ("opinion", "reddit", "ef49r2", 3),
    ("email", "enron", "enron_00184ba6309ef69c", 2),
    ("chat", "wildchat", "000b1d44a5220995dd94c4e3763ca526", 4),
    ("news", "youtube", "43OLpWoiXG0", 1),
    ("politics", "medium", "c803df394bc7", 1),
]


@pytest.mark.parametrize(("hub_name", "dataset", "post_id", "turn_id"), EXACT_CASES)
def test_exact_prompt_for_real_row(prepared, hub_name, dataset, post_id, turn_id):
    example = prepared[(dataset, post_id, turn_id)]
    text = model_text(example)
    assert context_part(text) == _expected_context(hub_name, post_id, turn_id)
    raw = sample_row(hub_name, post_id=post_id, turn_id=turn_id)
    assert f"<persona>\n{render_persona(raw['persona'])}\n</persona>" in text
    assert raw["completion"] not in text
    assert raw["user_id"] not in text


@pytest.mark.parametrize("state", ["stance", "response"])
def test_every_real_row_hides_ground_truth_and_user_id(prepared, state):
    for raw in sample_rows():
        dataset = {
            "book": "amazon",
            "email": "enron",
            "opinion": "reddit",
            "chat": "wildchat",
            "news": "youtube",
            "politics": "medium",
        }[raw["dataset"]]
        example = prepared[(dataset, raw["post_id"], raw["turn_id"])]
        text = model_text(example, state)
        assert raw["completion"].strip() not in text
        assert raw["user_id"] not in text
        assert example["ground_truth"] == raw["completion"]


def test_every_dataset_has_a_renderer():
    assert set(RENDERERS) == set(DATASET_IDS)


def test_earlier_email_needs_author_map_or_explicit_mapping():
    rows = [normalize_row(r, file="s", row=i, dataset=None) for i, r in enumerate(sample_rows())]
    later = next(r for r in rows if r.dataset == "enron" and r.turn_id == 2)
    assert [m["name"] for m in render_context(later)] == [
        "lamb.john@enron.com",
        "mike.curry@enron.com",
    ]
    author_map = learn_author_map(rows)
    assert author_map["d1022ae7de9e6159"] == {"mike.curry@enron.com"}
    chat_user = next(r.user_id for r in rows if r.dataset == "wildchat")
    assert author_map[chat_user] == {chat_user}  # WildChat roles are the user id itself
    assert len(author_map) == 2
    explicit = render_context(later, authors={"mike.curry@enron.com"})
    assert [m["name"] for m in explicit] == ["lamb.john@enron.com", "HUMAN"]


def test_author_map_ignores_placeholder_names():
    first = sample_row("opinion", turn_id=3)
    second = sample_row("opinion", turn_id=3)
    first["prompt"] = first["prompt"][:1]
    first.update(turn_id=1, user_id="u-deleted", completion=second["prompt"][1]["content"])
    meta = json.loads(second["prompt"][1]["metadata"])
    meta["author"] = "[deleted]"
    second["prompt"][1].update(role="[deleted]", metadata=json.dumps(meta))
    rows = [normalize_row(r, file="s", row=i, dataset=None) for i, r in enumerate([first, second])]
    assert learn_author_map(rows) == {}


def test_reddit_user_named_human_everywhere_in_their_rows():
    # Row A: user U replies at turn 1; row B (same post, another user) quotes it at index 1.
    base = sample_row("opinion", turn_id=3)
    reply_a = base["prompt"][1]["content"]
    row_a = {
        **base,
        "prompt": base["prompt"][:1],
        "turn_id": 1,
        "user_id": "U",
        "completion": reply_a,
    }
    row_b = {**base, "user_id": "V"}
    # A later row of U in the same thread that contains U's earlier comment.
    row_c = {**base, "user_id": "U", "completion": "A different later reply."}
    rows = [
        normalize_row(r, file="s", row=i, dataset=None) for i, r in enumerate([row_a, row_b, row_c])
    ]
    author_map = learn_author_map(rows)
    assert author_map == {"U": {"browsingtheproduce"}}
    names_c = [m["name"] for m in render_context(rows[2], authors=author_map["U"])]
    assert names_c == ["Fair-Measurement", "HUMAN", "LumpyLionezz"]
    names_b = [m["name"] for m in render_context(rows[1], authors=author_map.get("V", ()))]
    assert names_b == ["Fair-Measurement", "browsingtheproduce", "LumpyLionezz"]


def _msg(role: str, text: str, metadata: dict | None = None) -> dict:
    return {"role": role, "content": text, "metadata": metadata or {}}


@pytest.mark.parametrize(
    ("dataset", "message", "index", "expected"),
    [
        (  # a YouTube comment: the author display name, nested in the comment snippet
            "youtube",
            _msg(
                "UCx",
                "Great report",
                {
                    "kind": "youtube#commentThread",
                    "snippet": {"topLevelComment": {"snippet": {"authorDisplayName": "@ann"}}},
                },
            ),
            1,
            {"role": "user", "name": "@ann", "content": "Great report"},
        ),
        (  # a comment without an author falls back to the role
            "youtube",
            _msg("commenter-7", "hm", {"kind": "youtube#comment"}),
            1,
            {"role": "user", "name": "commenter-7", "content": "hm"},
        ),
        (  # a video without transcript
            "youtube",
            _msg(
                "Vid title",
                "About the vid",
                {
                    "kind": "youtube#video",
                    "snippet": {"channelTitle": "BBC News", "title": "T"},
                },
            ),
            0,
            {
                "role": "user",
                "name": "BBC News",
                "content": "Title: T\n\nDescription: About the vid",
            },
        ),
        (  # Medium: the topic line above the story goes
            "medium",
            _msg("ab12", "POLITICS\n\nWhy Votes Matter\n\nBody text."),
            0,
            {"role": "user", "name": "ab12", "content": "Why Votes Matter\n\nBody text."},
        ),
        (  # Medium: a normal first line stays
            "medium",
            _msg("ab12", "Why Votes Matter\n\nBody text."),
            0,
            {"role": "user", "name": "ab12", "content": "Why Votes Matter\n\nBody text."},
        ),
        (  # Medium: only a short all-caps line counts as a topic line, and only in the story
            "medium",
            _msg("cd34", "POLITICS\n\nI disagree."),
            1,
            {"role": "user", "name": "cd34", "content": "POLITICS\n\nI disagree."},
        ),
        (  # WildChat: a conversation has one human, the target user
            "wildchat",
            _msg("9f8e7d", "And in French?"),
            2,
            {"role": "user", "name": "HUMAN", "content": "And in French?"},
        ),
        (  # WildChat: any GPT model name is an assistant turn
            "wildchat",
            _msg("GPT-4-0314", "Sure!"),
            1,
            {"role": "assistant", "name": "assistant", "content": "Sure!"},
        ),
        (  # Enron: no metadata, the role is the sender
            "enron",
            _msg("x@enron.com", "ok"),
            0,
            {"role": "user", "name": "x@enron.com", "content": "ok"},
        ),
        (  # reddit without metadata falls back to the role
            "reddit",
            _msg("someone", "NTA"),
            1,
            {"role": "user", "name": "someone", "content": "NTA"},
        ),
        (
            "generic",
            _msg("assistant", "Hi"),
            1,
            {"role": "assistant", "name": "assistant", "content": "Hi"},
        ),
        ("generic", _msg("bob", "Hey"), 0, {"role": "user", "name": "bob", "content": "Hey"}),
    ],
)
def test_render_message(dataset, message, index, expected):
    assert render_message(dataset, message, index=index) == expected


def test_amazon_python_literal_fields_and_fallbacks():
    metadata = {
        "store": "Acme",
        "title": "A Book",
        "price": None,
        "author": "{'name': 'Ann Lee', 'about': ['Writes books.']}",  # Python literal
        "details": "{'Publisher': 'Acme Press', 'Pages': 200}",
        "description": ["First part.", "", "Second part."],
    }
    out = render_message("amazon", _msg("Acme", "raw", metadata), index=0)
    assert out == {
        "role": "user",
        "name": "Amazon store: Acme",
        "content": "- Title: A Book\n- Author: Ann Lee\n- About the author: Writes books.\n"
        "- Description: First part. Second part.\n- Details:\n  - Publisher: Acme Press\n"
        "  - Pages: 200",
    }
    broken = render_message("amazon", _msg("r", "raw", {"details": "{broken"}), index=0)
    assert broken == {"role": "user", "name": "r", "content": "- Details: {broken"}
    bare = render_message("amazon", _msg("r", "just the raw text"), index=0)
    assert bare == {"role": "user", "name": "r", "content": "just the raw text"}


def test_author_map_ignores_replies_shared_by_several_users():
    # Regression: two users posting the same short text at the same depth learned each other's names.
    from humanlm.data.authors import learn_author_map
    from humanlm.data.schema import normalize_row

    def row(user, completion, prompt):
        raw = {"prompt": prompt, "completion": completion, "user_id": user, "post_id": "p1",
               "turn_id": len(prompt), "persona": "A user."}
        return normalize_row(raw, file="mem", row=0, dataset="generic")

    post = {"role": "op", "content": "A post"}
    rows = [
        row("alice", "NTA", [post]),
        row("bob", "NTA", [post]),
        row("carol", "Agreed", [post, {"role": "bob", "content": "NTA"}]),
        row("dave", "Same", [post, {"role": "erin", "content": "Unique words here"}]),
        row("erin", "Unique words here", [post]),
    ]
    author_map = learn_author_map(rows)
    assert "alice" not in author_map
    assert "bob" not in author_map
    assert author_map["erin"] == {"erin"}
