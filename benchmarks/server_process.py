"""A ``ScriptedServer`` in its own process, for benchmarks.

In-process servers share the client's interpreter lock, so a benchmark would time the server's
Python as much as the client's. Real servers run elsewhere; so does this one (forked, so reply
functions need not be picklable).
"""

from __future__ import annotations

import multiprocessing
from typing import Any

from humanlm.testing import ScriptedServer


def _serve(conn: Any, kwargs: dict[str, Any]) -> None:
    server = ScriptedServer(**kwargs).start()
    conn.send(server.base_url)
    while True:  # "counts": report them; anything else: report them and stop
        message = conn.recv()
        conn.send({"chat_requests": len(server.chat_requests), "faults_sent": server.faults_sent})
        if message != "counts":
            break
    server.stop()


class ServerProcess:
    """``with ServerProcess(reply_fn=..., latency_s=0.3) as server: server.base_url``.

    ``counts()`` reads the server's counts while it runs; after the block, ``chat_requests``
    and ``faults_sent`` hold its final counts.
    """

    def __init__(self, **kwargs: Any):
        self.kwargs = kwargs
        self.base_url = ""
        self.chat_requests = 0
        self.faults_sent = 0

    def __enter__(self) -> ServerProcess:
        ctx = multiprocessing.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, self.kwargs), daemon=True)
        self._proc.start()
        if not self._conn.poll(30):
            self._proc.kill()
            raise RuntimeError("the scripted server process did not start within 30 s")
        self.base_url = self._conn.recv()
        return self

    def counts(self) -> dict[str, int]:
        """``{"chat_requests": N, "faults_sent": M}`` so far."""
        self._conn.send("counts")
        if not self._conn.poll(30):
            raise RuntimeError("the scripted server process did not answer within 30 s")
        return dict(self._conn.recv())

    def __exit__(self, *exc: object) -> None:
        self._conn.send("stop")
        if self._conn.poll(30):
            counts = self._conn.recv()
            self.chat_requests = counts["chat_requests"]
            self.faults_sent = counts["faults_sent"]
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
