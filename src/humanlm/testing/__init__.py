"""Test doubles shared by the test suites and benchmarks (no network, 127.0.0.1 only).

- ``ScriptedServer``: an OpenAI-compatible chat server with scripted replies, latency and faults;
- ``faults``: ready-made faulty replies (429, 5xx, hangs, empty, truncated, ...);
- ``judge_replies``: judge-shaped replies and a reply function that reads a judge prompt;
- ``FakeJudge``: an in-process ``Judge`` scored by a plain function (no HTTP).
"""

from humanlm.testing import faults, judge_replies
from humanlm.testing.fake_judge import FakeJudge
from humanlm.testing.server import RecordedRequest, Reply, ReplyFn, ScriptedServer

__all__ = [
    "FakeJudge",
    "RecordedRequest",
    "Reply",
    "ReplyFn",
    "ScriptedServer",
    "faults",
    "judge_replies",
]
