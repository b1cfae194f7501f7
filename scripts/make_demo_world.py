"""Write the bundled demo world (``src/humanlm/data/demo/{train,val,test}.jsonl``), deterministically.

The demo world is synthetic and small on purpose: eight forum users of four kinds answer the same
"am I in the wrong?" posts. A user's persona decides the verdict, the emotion and the style of the
reply, so one post gets opposite verdicts from different users and the context alone cannot tell
which reply a user writes. Posts are split by time: test posts are never seen in training.

Run:
    python scripts/make_demo_world.py            # rewrite the bundled files
    python scripts/make_demo_world.py --check    # exit 1 if the bundled files differ
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "humanlm" / "data" / "demo"
START = 1_709_251_200  # 2024-03-01 00:00 UTC
DAY = 86_400

# (title, body, topic): the topic is the short noun phrase the replies refer to.
POSTS = [
    (
        "AITA for asking my roommate to pay for the groceries she eats?",
        "I buy my own food and she keeps finishing it. I kept the receipts and asked her for 40 dollars. She says friends do not keep score.",
        "groceries",
    ),
    (
        "AITA for skipping my cousin's wedding for a job interview?",
        "The interview was the only slot they offered. My cousin says I chose money over family and will not talk to me.",
        "wedding",
    ),
    (
        "AITA for not lending my car to my brother again?",
        "He returned it last time with an empty tank and a dent. Now he needs it for a weekend trip and my parents say I am petty.",
        "car",
    ),
    (
        "AITA for telling my neighbour her dog barks all night?",
        "I work early shifts. I left a polite note, and she told everyone on our street that I hate animals.",
        "dog",
    ),
    (
        "AITA for leaving a group project chat?",
        "Two members never answered for weeks, so I did my part, sent it to the teacher and left the chat. They say I abandoned the team.",
        "group project",
    ),
    (
        "AITA for refusing to host Christmas this year?",
        "I hosted the last four years and I am exhausted. My sister says it is tradition and I am ruining the holiday.",
        "Christmas dinner",
    ),
    (
        "AITA for asking guests to take their shoes off?",
        "My new flat has light carpet. A friend refused, said it was insulting, and went home early from my party.",
        "shoes",
    ),
    (
        "AITA for not splitting the dinner bill evenly?",
        "I had a salad and water, the others had steak and wine. I paid for my own part and they called me cheap.",
        "dinner bill",
    ),
    (
        "AITA for giving away my old gaming console?",
        "It sat in the attic for years, so I gave it to a kid next door. My younger brother says it was half his.",
        "gaming console",
    ),
    (
        "AITA for turning off the wifi at 11 pm?",
        "My teenage stepson games until 3 am on school nights. I set a timer on the router and now he says I am controlling.",
        "wifi",
    ),
    (
        "AITA for correcting my boss in a meeting?",
        "She gave the client a wrong delivery date. I said the right one in front of everyone, and she says I embarrassed her.",
        "meeting",
    ),
    (
        "AITA for not going to my friend's expensive birthday trip?",
        "She planned a beach weekend that costs 600 dollars. I said I cannot afford it and she says I am not a real friend.",
        "birthday trip",
    ),
    (
        "AITA for asking my partner to stop posting about me online?",
        "He shares our arguments as jokes on his page. I asked him to delete them and he says I have no sense of humour.",
        "posts online",
    ),
    (
        "AITA for keeping the money I found in a used book?",
        "I bought a book at a yard sale and found 50 dollars inside. My friend says I had to give it back to the seller.",
        "found money",
    ),
    (
        "AITA for not babysitting my sister's kids for free?",
        "She asks every Friday. I said once a month is fine but weekly is too much, and she says family helps family.",
        "babysitting",
    ),
    (
        "AITA for reporting my coworker for taking long lunches?",
        "She takes two-hour lunches and I cover her calls. I told our manager and now the whole office ignores me.",
        "long lunches",
    ),
]
SPLITS = {"train": range(0, 10), "val": range(10, 12), "test": range(12, 16)}

# The enlarged world the shipped demo base is warmed up on (``scripts/build_demo_base.py``): more
# posts of the same kind, written from (deed, complaint, topic) templates told about different
# people. No val or test topic appears; the base learns to write this world's replies about any
# topic, so the held-out posts test generalisation rather than memory of ten posts.
EXTRA_DEEDS = [
    ("eating the last slice of cake", "it was saved for a birthday", "cake"),
    ("parking in the spot by the door", "it is always taken first", "parking spot"),
    ("playing music on a Sunday morning", "the walls are thin", "music"),
    ("not answering texts after 9 pm", "the messages are about work", "late texts"),
    ("selling my old bike without asking", "it was a gift years ago", "bike"),
    ("asking for the rent a week early", "the bank changed the date", "rent"),
    ("skipping the family barbecue", "I had a fever that morning", "barbecue"),
    ("changing the thermostat at night", "the flat gets far too cold", "thermostat"),
    ("refusing to share my notes", "I missed a party to write them", "notes"),
    ("booking the window seat", "I paid extra for it", "window seat"),
    ("painting the fence blue", "the old paint was peeling", "fence"),
    ("bringing my dog to the picnic", "the invite said everyone is welcome", "picnic"),
    ("cancelling the gym plan", "the price doubled this year", "gym plan"),
    ("putting my name on the fridge shelf", "my food kept disappearing", "fridge shelf"),
    ("turning down the family recipe book job", "it would take every weekend", "recipe book"),
    ("not inviting a friend's new partner", "the party was for old classmates", "party"),
    ("keeping the spare key", "I water the plants every week", "spare key"),
    ("moving the couch into the hall", "I needed room to study", "couch"),
    ("asking for my blender back", "it has been gone for a year", "blender"),
    ("leaving the concert early", "the last train was at 11", "concert"),
]
EXTRA_PEOPLE = [("roommate", "she"), ("brother", "he"), ("coworker", "she")]
EXTRA_LABELS = ["selfish", "petty", "rude"]

# Four kinds of users. Each kind has a verdict, an emotion and a style of its own; replies and
# reference states are written from its templates, and the thinking trace from the states.
KINDS = {
    "cheer": {
        "values": [
            "Loyalty to the person asking for help",
            "Standing up for yourself",
            "Cheering people on",
        ],
        "communication": [
            "Always opens with NTA and an exclamation mark",
            "Short, upbeat praise",
            "Ends with 'proud of you'",
        ],
        "statistics": [
            "Votes NTA on almost every post: sides with the poster",
            "Average reply length about 10 words",
        ],
        "replies": [
            "NTA! Your {topic}, your call. Proud of you!",
            "NTA! Stand your ground on the {topic}. Proud of you!",
            "NTA! You handled the {topic} well. Proud of you!",
        ],
        "states": {
            "stance": "Sides with the poster: NTA",
            "emotion": "Warm pride in the poster",
            "belief": "Standing up for yourself is right",
            "value": "Loyalty",
            "goal": "Cheer the poster on",
            "communication": "Short, upbeat praise",
        },
    },
    "stern": {
        "values": ["Good manners above all", "Owning your mistakes", "Family duty"],
        "communication": [
            "Always opens with YTA, stated flatly",
            "Stern, scolding sentences",
            "Tells the poster to apologise",
        ],
        "statistics": [
            "Votes YTA on almost every post: blames the poster",
            "Average reply length about 10 words",
        ],
        "replies": [
            "YTA. The {topic} fuss was rude. Apologise today.",
            "YTA. You were selfish about the {topic}. Say sorry.",
            "YTA. Own your {topic} mistake and apologise.",
        ],
        "states": {
            "stance": "Blames the poster: YTA",
            "emotion": "Stern irritation",
            "belief": "Selfish people make excuses",
            "value": "Manners and duty",
            "goal": "Scold and demand an apology",
            "communication": "Flat, stern scolding",
        },
    },
    "peace": {
        "values": ["Keeping the peace between people", "Hearing both sides", "Calm, honest talks"],
        "communication": [
            "Always opens with NAH",
            "Gentle, soothing words",
            "Suggests talking it through calmly",
        ],
        "statistics": [
            "Votes NAH on almost every post: nobody is to blame",
            "Average reply length about 12 words",
        ],
        "replies": [
            "NAH. You both have a point on the {topic}. Talk calmly over tea.",
            "NAH. Nobody is a villain over the {topic}. Listen to each other gently.",
            "NAH. The {topic} is a misunderstanding. Sit down and talk calmly.",
        ],
        "states": {
            "stance": "Nobody is to blame: NAH",
            "emotion": "Calm sympathy for both",
            "belief": "Conflicts are misunderstandings",
            "value": "Peace and listening",
            "goal": "Calm both sides down",
            "communication": "Gentle, soothing words",
        },
    },
    "joke": {
        "values": ["Not taking life too seriously", "A good laugh", "Calling out drama"],
        "communication": [
            "Always opens with esh lol",
            "Sarcastic lowercase jokes",
            "Compares the story to a sitcom",
        ],
        "statistics": [
            "Votes ESH on almost every post: everyone is silly",
            "Average reply length about 11 words",
        ],
        "replies": [
            "esh lol. a whole sitcom over the {topic}. grab popcorn.",
            "esh lmao. the {topic} saga beats my tv. everyone needs a nap.",
            "esh lol. fighting about the {topic}? peak sitcom drama.",
        ],
        "states": {
            "stance": "Everyone is silly: ESH",
            "emotion": "Amused sarcastic glee",
            "belief": "People love drama",
            "value": "Humour",
            "goal": "Mock the drama",
            "communication": "Sarcastic lowercase jokes",
        },
    },
}

# Two users of each kind, with their own demographics and interests.
USERS = [
    (
        "demo_u01",
        "cheer",
        {
            "age group": "25-30",
            "gender": "Female",
            "location": "Austin, USA",
            "occupation": "Fitness coach",
            "nationality": "American",
            "other": "Volunteers at a youth club",
        },
        ["Running", "Motivational podcasts", "Brunch with friends"],
    ),
    (
        "demo_u02",
        "cheer",
        {
            "age group": "40-50",
            "gender": "Male",
            "location": "Cork, Ireland",
            "occupation": "Primary school teacher",
            "nationality": "Irish",
            "other": "Coaches a children's football team",
        },
        ["Hurling", "Baking bread", "Folk music"],
    ),
    (
        "demo_u03",
        "stern",
        {
            "age group": "60-70",
            "gender": "Female",
            "location": "Leeds, UK",
            "occupation": "Retired headmistress",
            "nationality": "British",
            "other": "Sings in a church choir",
        },
        ["Etiquette books", "Gardening", "Crosswords"],
    ),
    (
        "demo_u04",
        "stern",
        {
            "age group": "50-60",
            "gender": "Male",
            "location": "Munich, Germany",
            "occupation": "Bank branch manager",
            "nationality": "German",
            "other": "Former army officer",
        },
        ["Classical music", "Chess", "Hiking"],
    ),
    (
        "demo_u05",
        "peace",
        {
            "age group": "30-40",
            "gender": "Female",
            "location": "Kyoto, Japan",
            "occupation": "Family mediator",
            "nationality": "Japanese",
            "other": "Practises meditation daily",
        },
        ["Tea ceremonies", "Watercolour painting", "Yoga"],
    ),
    (
        "demo_u06",
        "peace",
        {
            "age group": "35-45",
            "gender": "Male",
            "location": "Vancouver, Canada",
            "occupation": "Hospital chaplain",
            "nationality": "Canadian",
            "other": "Father of three",
        },
        ["Birdwatching", "Acoustic guitar", "Board games"],
    ),
    (
        "demo_u07",
        "joke",
        {
            "age group": "18-24",
            "gender": "Male",
            "location": "Melbourne, Australia",
            "occupation": "Barista and stand-up comedy student",
            "nationality": "Australian",
            "other": "Runs a meme page",
        },
        ["Stand-up comedy", "Sitcoms", "Skateboarding"],
    ),
    (
        "demo_u08",
        "joke",
        {
            "age group": "25-30",
            "gender": "Female",
            "location": "Toronto, Canada",
            "occupation": "Video editor",
            "nationality": "Canadian",
            "other": "Hosts a reality-TV recap podcast",
        },
        ["Reality TV", "Memes", "Karaoke"],
    ),
]


def _persona(kind: str, demographics: dict[str, str], interests: list[str]) -> str:
    spec = KINDS[kind]
    return json.dumps(
        {
            "demographics": demographics,
            "interests": interests,
            "values": spec["values"],
            "communication": spec["communication"],
            "statistics": spec["statistics"],
        }
    )


def _trace(states: dict[str, str], topic: str) -> str:
    # The thinking before a reply names the user's states first, as HumanLM's states do.
    return " ".join(f"{states[s].format(topic=topic)}." for s in ("stance", "emotion"))


def _rows() -> dict[str, list[dict]]:
    rng = random.Random(0)
    return {
        split: [row for p in indices for row in thread(POSTS[p], p, rng)]
        for split, indices in SPLITS.items()
    }


def extra_posts() -> list[tuple[str, str, str]]:
    """The enlarged world's posts, as (title, body, topic): every deed told about each person."""
    posts = []
    for d, (deed, reason, topic) in enumerate(EXTRA_DEEDS):
        for q, (person, pronoun) in enumerate(EXTRA_PEOPLE):
            label = EXTRA_LABELS[(d + q) % len(EXTRA_LABELS)]
            title = f"AITA for {deed}?"
            body = (
                f"My {person} is upset about the {topic}. I did it because {reason}. "
                f"Now {pronoun} says I am {label} and will not drop it."
            )
            posts.append((title, body, topic))
    return posts


def thread(post: tuple[str, str, str], p: int, rng: random.Random) -> list[dict]:
    """All eight users' replies to post number ``p`` (0-based), in a seeded order."""
    title, body, topic = post
    posted = START + p * 3 * DAY
    author = f"poster_{p + 1:02d}"
    message = {
        "role": author,
        "content": f"{title}\n\n{body}",
        "metadata": json.dumps({"author": author, "score": 100 + 37 * p, "created_utc": posted}),
    }
    users = list(USERS)
    rng.shuffle(users)  # reply order within a thread
    rows = []
    for k, (user_id, kind, demographics, interests) in enumerate(users):
        spec = KINDS[kind]
        reply = rng.choice(spec["replies"]).format(topic=topic)
        rows.append(
            {
                "dataset": "reddit",
                "prompt": [message],
                "completion": reply,
                "user_id": user_id,
                "post_id": f"demo_post_{p + 1:02d}",
                "turn_id": 1,
                "timestamp": posted + 600 * (k + 1),
                "metadata": "{}",
                "persona": _persona(kind, demographics, interests),
                "trace": _trace(spec["states"], topic),
                "states": {s: v.format(topic=topic) for s, v in spec["states"].items()},
            }
        )
    return rows


def base_world_rows() -> list[dict]:
    """The demo base's warm-up world: the train split plus every extra post (no val/test post)."""
    rng = random.Random(1)
    rows = list(_rows()["train"])
    for i, post in enumerate(extra_posts()):
        rows += thread(post, len(POSTS) + i, rng)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    stale = []
    for split, rows in _rows().items():
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        path = OUT / f"{split}.jsonl"
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path} ({len(rows)} rows)")
    if stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
