"""What every request of ``humanlm serve`` passes first: the API key, the body limit and the
access log, as plain ASGI middleware (it sees each body chunk, so a body over the limit is
refused before it is read whole).

Access log lines, at INFO on ``humanlm.serve.access``, in the usual form (no query string, no
headers: nothing secret)::

    127.0.0.1:50312 - "POST /v1/chat/completions HTTP/1.1" 200 812.4 ms

A client that leaves before its answer is logged with status 499.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from humanlm.serve.protocol import BadRequest, error_response

__all__ = ["Guard"]

access_log = logging.getLogger("humanlm.serve.access")

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _too_large(limit: int) -> BadRequest:
    return BadRequest(
        f"the request body is larger than this server's limit of {limit:,} bytes "
        "(humanlm serve --max-body-mb)",
        code="request_too_large",
        status=413,
    )


class Guard:
    """ASGI middleware: key check on ``/v1/`` and ``/flipped/v1/``, body limit, access log.

    Args:
        app: the application behind it.
        api_key: the Bearer key requests must send (``None``: no key).
        max_body_bytes: the largest request body taken (413 above it).
    """

    def __init__(self, app: Any, *, api_key: str | None, max_body_bytes: int):
        self.app = app
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 499  # unless a response starts: the client left first

        async def send_noting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send_noting)
            else:
                await self.app(scope, self._counting(receive), send_noting)
        finally:
            client = scope.get("client")
            where = f"{client[0]}:{client[1]}" if client else "-"
            access_log.info(
                '%s - "%s %s HTTP/%s" %d %.1f ms',
                where,
                scope["method"],
                scope["path"],
                scope.get("http_version", "1.1"),
                status,
                (time.perf_counter() - started) * 1000,
            )

    def _refusal(self, scope: Message) -> Any:
        """An error response for a request refused on its headers alone, else ``None``."""
        headers = dict(scope.get("headers") or [])
        if self.api_key and scope["path"].startswith(("/v1/", "/flipped/v1/")):
            sent = headers.get(b"authorization", b"").decode("latin-1")
            token = sent[7:] if sent.lower().startswith("bearer ") else ""
            if not hmac.compare_digest(token.encode(), self.api_key.encode()):
                return error_response(401, "invalid or missing API key", code="invalid_api_key")
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return error_response(400, "the Content-Length header is not a number")
            if int(length) > self.max_body_bytes:
                refused = _too_large(self.max_body_bytes)
                return error_response(413, refused.message, code=refused.code)
        return None

    def _counting(self, receive: Receive) -> Receive:
        """``receive`` that refuses a body (sent without a length) once it passes the limit."""
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise _too_large(self.max_body_bytes)
            return message

        return counted
