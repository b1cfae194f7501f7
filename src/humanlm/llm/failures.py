"""What a failed request is: ``TransportError`` (retryable or refused) or, for a refused key
or an unknown endpoint, ``JudgeUnavailableError``; read from an HTTP status or an SDK exception.

A refused request keeps the server's own message (it names the field to change), with anything
key-like removed; no other message carries server text.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from typing import Any

import openai

from humanlm.errors import JudgeUnavailableError
from humanlm.llm.limits import parse_retry_after

__all__ = ["TransportError", "classify_error", "provider_message", "status_error"]


class TransportError(Exception):
    """A request that got no usable HTTP answer.

    Attributes:
        kind: ``rate_limited``, ``server_error``, ``timeout``, ``connection_error`` (retryable)
            or ``rejected`` (another 4xx: retrying the same request cannot help).
        retry_after: seconds the server asked us to wait, if it said.
        status: the HTTP status, if there was one.
        detail: the server's own message for a refused request (``rejected``), secrets removed.
        param: the request field the server named as the cause, if it named one.
    """

    def __init__(
        self,
        kind: str,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        detail: str | None = None,
        param: str | None = None,
    ):
        self.kind, self.retry_after, self.status = kind, retry_after, status
        self.detail, self.param = detail, param
        text = f"{kind}" + (f" (HTTP {status})" if status else "")
        super().__init__(text + (f": {detail}" if detail else ""))

    @property
    def is_retryable(self) -> bool:
        return self.kind != "rejected"


def _headers_of(exc: BaseException) -> dict[str, str] | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    return dict(headers) if headers is not None else None


# Key-like text a server may echo back (``Incorrect API key provided: sk-...``).
_SECRET = re.compile(r"(?i)\b(?:sk|rk|sess)-[A-Za-z0-9_\-*.]{6,}|\bbearer\s+\S+")
_DETAIL_CHARS = 300


def provider_message(body: Any, *, secrets: tuple[str, ...] = ()) -> tuple[str | None, str | None]:
    """``(message, param)`` of an error body (OpenAI's ``{"error": {"message", "param", ...}}``,
    the SDK's parsed ``error`` object, or plain text), with anything key-like removed and the
    message cut to 300 characters; ``(None, None)`` when there is no message."""
    if isinstance(body, bytes | bytearray):
        try:
            body = json.loads(body)
        except ValueError:
            body = body.decode("utf-8", "replace")
    if isinstance(body, dict):
        error = body.get("error", body)
        error = error if isinstance(error, dict) else {"message": error}
        message, param = error.get("message"), error.get("param")
    else:
        message, param = body, None
    if not isinstance(message, str) or not message.strip():
        return None, None
    text = " ".join(message.split())
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = _SECRET.sub("[redacted]", text)
    if len(text) > _DETAIL_CHARS:
        text = text[: _DETAIL_CHARS - 3] + "..."
    return text, param if isinstance(param, str) else None


def classify_error(
    exc: BaseException, *, where: str, role: str = "judge", secrets: tuple[str, ...] = ()
) -> Exception:
    """Turn an SDK exception into ``TransportError`` or ``JudgeUnavailableError``.

    Works for openai exceptions and litellm's (which subclass them or carry ``status_code``).
    Only a refused request (``rejected``) keeps the server's message, secrets removed: it says
    which field to change. Other messages name the judge and the status only.
    """
    if isinstance(exc, openai.APITimeoutError | asyncio.TimeoutError | TimeoutError):
        return TransportError("timeout")
    if isinstance(exc, openai.APIConnectionError):
        return TransportError("connection_error")
    if isinstance(exc, openai.APIResponseValidationError):
        return TransportError("server_error")  # a 2xx whose body is not a chat completion
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        name = type(exc).__name__.lower()
        if "timeout" in name:
            return TransportError("timeout")
        if "connection" in name:
            return TransportError("connection_error")
        return TransportError("server_error")
    body = getattr(exc, "body", None) or getattr(exc, "message", None)
    return status_error(
        status, _headers_of(exc), where=where, role=role, body=body, secrets=secrets
    )


def status_error(
    status: int,
    headers: Mapping[str, str] | None,
    *,
    where: str,
    role: str = "judge",
    body: Any = None,
    secrets: tuple[str, ...] = (),
) -> Exception:
    """The error of an HTTP error status (4xx/5xx): ``TransportError`` or, for credentials and
    unknown endpoints (which retrying cannot fix), ``JudgeUnavailableError``. A refused request
    (``rejected``) carries the server's message from ``body`` (see ``provider_message``)."""
    if status in (401, 403):
        return JudgeUnavailableError(
            f"{role} {where} refused the credentials (HTTP {status}); check the API key variable"
        )
    if status == 404:
        return JudgeUnavailableError(
            f"{role} {where} answered HTTP 404: unknown model or wrong base URL"
        )
    retry_after = parse_retry_after(headers)
    if status == 429:
        return TransportError("rate_limited", retry_after=retry_after, status=status)
    if status >= 500 or status in (408, 409):
        return TransportError("server_error", retry_after=retry_after, status=status)
    detail, param = provider_message(body, secrets=secrets)
    return TransportError("rejected", status=status, detail=detail, param=param)
