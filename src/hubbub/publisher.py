"""Python clients of the HTTP server API: :class:`Publisher` (sync) and
:class:`AsyncPublisher` (asyncio).

Use :class:`Publisher` from a Django view, a Flask route, a Celery task or a
script, and :class:`AsyncPublisher` from async code that does not hold the
:class:`~hubbub.hub.Hub` itself (a Channels consumer, another service)::

    with hubbub.Publisher("http://127.0.0.1:8000", api_key) as hub:
        hub.publish("#42", {"text": "your order shipped"})

Both build their requests and read their answers with the same code (the
``_calls`` below); only the transport differs. Connection errors (refused,
reset, DNS) are retried with exponential backoff and full jitter, ``retries``
times; HTTP errors and timeouts are not. Because a connection can break after
the server published but before it answered, ``publish``, ``broadcast`` and
``batch`` send an ``idempotency_key`` (a fresh one unless you pass your own)
whenever retries are on, so a retried publish happens exactly once. A failure
raises :class:`PublishError` with the server's status, code and message.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, Self, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from hubbub.asgi.api_types import (
    BatchResult,
    BroadcastResult,
    ChannelsResult,
    DisconnectResult,
    ErrorResponse,
    HistoryResult,
    InfoResult,
    PresenceResult,
    PresenceStatsResult,
    PublishResult,
)
from hubbub.errors import HubbubError

__all__ = [
    "AsyncPublisher",
    "BatchResult",
    "BroadcastResult",
    "ChannelsResult",
    "HistoryResult",
    "InfoResult",
    "PresenceResult",
    "PresenceStatsResult",
    "PublishCommand",
    "PublishError",
    "PublishResult",
    "Publisher",
]

T = TypeVar("T")

#: httpx errors after which the request certainly or possibly never reached the
#: application: safe to retry (publishes carry an idempotency key).
RETRYABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError)
BACKOFF_BASE = 0.1
BACKOFF_CAP = 2.0


class PublishError(HubbubError):
    """A server API call failed.

    ``status`` is the HTTP status (``None`` when the server could not be
    reached or did not answer in time), ``code`` the server's error code
    (``bad_request``, ``unauthorized``, ``engine_unavailable``... or
    ``unreachable`` / ``timeout`` / ``bad_response`` from the client itself)
    and ``message`` what went wrong."""

    def __init__(self, status: int | None, code: str, message: str) -> None:
        super().__init__(f"{status or '-'} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class PublishCommand(msgspec.Struct, frozen=True, omit_defaults=True):
    """One publish of :meth:`Publisher.batch`."""

    channel: str
    data: Any
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class _Call(Generic[T]):
    """One API request and the type of its answer."""

    method: str
    path: str
    result: type[T]
    body: dict[str, Any] | None = None
    params: dict[str, str] = field(default_factory=dict)

    def request(self, client: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        content = None if self.body is None else _encoder.encode(self.body)
        headers = {} if content is None else {"Content-Type": "application/json"}
        return client.build_request(
            self.method, self.path, content=content, params=self.params, headers=headers
        )

    def parse(self, response: httpx.Response) -> T:
        if response.status_code >= 400:
            raise _error_from(response)
        try:
            return msgspec.json.decode(response.content, type=self.result)
        except msgspec.DecodeError as exc:
            raise PublishError(
                response.status_code, "bad_response", f"unexpected answer: {exc}"
            ) from None


_encoder = msgspec.json.Encoder()


def _error_from(response: httpx.Response) -> PublishError:
    try:
        error = msgspec.json.decode(response.content, type=ErrorResponse).error
    except msgspec.DecodeError:
        text = response.text[:200] or response.reason_phrase
        return PublishError(response.status_code, "http_error", text)
    return PublishError(response.status_code, error.code, error.message)


def _segment(value: str) -> str:
    return quote(value, safe="")


class _Calls:
    """Request building shared by both publishers: one method per API call."""

    def __init__(self, retries: int) -> None:
        self.retries = retries

    def delay_before_retry(self, exc: httpx.TransportError, attempt: int, url: str) -> float:
        """How long to wait before retrying after ``exc``; raises when ``exc`` is
        not a connection error or the retries are used up."""
        if not isinstance(exc, RETRYABLE) or attempt >= self.retries:
            raise _transport_failure(exc, url, attempt + 1) from exc
        return _backoff(attempt)

    def _key(self, key: str | None) -> str | None:
        """A fresh idempotency key when retries are on and none was given."""
        if key is None and self.retries > 0:
            return uuid.uuid4().hex
        return key

    def publish(self, channel: str, data: Any, key: str | None) -> _Call[PublishResult]:
        body = {"channel": channel, "data": data}
        if (key := self._key(key)) is not None:
            body["idempotency_key"] = key
        return _Call("POST", "/api/publish", PublishResult, body)

    def broadcast(
        self, channels: Iterable[str], data: Any, key: str | None
    ) -> _Call[BroadcastResult]:
        body = {"channels": list(channels), "data": data}
        if (key := self._key(key)) is not None:
            body["idempotency_key"] = key
        return _Call("POST", "/api/broadcast", BroadcastResult, body)

    def batch(self, commands: Iterable[PublishCommand]) -> _Call[BatchResult]:
        items = [
            msgspec.structs.replace(c, idempotency_key=self._key(c.idempotency_key))
            for c in commands
        ]
        return _Call("POST", "/api/batch", BatchResult, {"commands": items})

    def channels(self, pattern: str | None) -> _Call[ChannelsResult]:
        params = {} if pattern is None else {"pattern": pattern}
        return _Call("GET", "/api/channels", ChannelsResult, params=params)

    def history(
        self,
        channel: str,
        limit: int | None,
        since_offset: int | None,
        epoch: str | None,
        reverse: bool,
    ) -> _Call[HistoryResult]:
        params = {
            name: str(value)
            for name, value in (("limit", limit), ("since_offset", since_offset), ("epoch", epoch))
            if value is not None
        }
        if reverse:
            params["reverse"] = "true"
        path = f"/api/channels/{_segment(channel)}/history"
        return _Call("GET", path, HistoryResult, params=params)

    def presence(self, channel: str) -> _Call[PresenceResult]:
        return _Call("GET", f"/api/channels/{_segment(channel)}/presence", PresenceResult)

    def presence_stats(self, channel: str) -> _Call[PresenceStatsResult]:
        path = f"/api/channels/{_segment(channel)}/presence_stats"
        return _Call("GET", path, PresenceStatsResult)

    def disconnect(self, user: str) -> _Call[DisconnectResult]:
        return _Call("POST", f"/api/users/{_segment(user)}/disconnect", DisconnectResult, {})

    def info(self) -> _Call[InfoResult]:
        return _Call("GET", "/api/info", InfoResult)


def _backoff(attempt: int) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))


def _transport_failure(exc: httpx.TransportError, url: str, attempts: int) -> PublishError:
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        return PublishError(None, "timeout", f"no answer from {url} in time: {exc!r}")
    tries = f" (after {attempts} attempts)" if attempts > 1 else ""
    return PublishError(None, "unreachable", f"cannot reach {url}{tries}: {exc!r}")


def _client_options(url: str, api_key: str, timeout: float) -> dict[str, Any]:
    return {
        "base_url": url,
        "timeout": timeout,
        "headers": {"Authorization": f"apikey {api_key}", "Accept": "application/json"},
    }


class Publisher:
    """Synchronous client of a hub's server API (``url`` is where the hub is
    served, e.g. ``http://127.0.0.1:8000`` or ``https://example.com/realtime``)."""

    def __init__(self, url: str, api_key: str, *, timeout: float = 5, retries: int = 3) -> None:
        self.url = url
        self._calls = _Calls(retries)
        self._client = httpx.Client(**_client_options(url, api_key, timeout))

    def _run(self, call: _Call[T]) -> T:
        for attempt in itertools.count():
            try:
                response = self._client.send(call.request(self._client))
            except httpx.TransportError as exc:
                time.sleep(self._calls.delay_before_retry(exc, attempt, self.url))
                continue
            return call.parse(response)
        raise AssertionError("unreachable")  # pragma: no cover

    def publish(
        self, channel: str, data: Any, *, idempotency_key: str | None = None
    ) -> PublishResult:
        """Publish ``data`` (any JSON value) to ``channel``; its offset and epoch."""
        return self._run(self._calls.publish(channel, data, idempotency_key))

    def broadcast(
        self, channels: Iterable[str], data: Any, *, idempotency_key: str | None = None
    ) -> BroadcastResult:
        """Publish ``data`` to every channel; one result (or error) per channel."""
        return self._run(self._calls.broadcast(channels, data, idempotency_key))

    def batch(self, commands: Iterable[PublishCommand]) -> BatchResult:
        """Run several publishes in order; one result (or error) per command."""
        return self._run(self._calls.batch(commands))

    def channels(self, pattern: str | None = None) -> ChannelsResult:
        """Active channels of the node that answers, with subscriber counts."""
        return self._run(self._calls.channels(pattern))

    def history(
        self,
        channel: str,
        *,
        limit: int | None = None,
        since_offset: int | None = None,
        epoch: str | None = None,
        reverse: bool = False,
    ) -> HistoryResult:
        return self._run(self._calls.history(channel, limit, since_offset, epoch, reverse))

    def presence(self, channel: str) -> PresenceResult:
        return self._run(self._calls.presence(channel))

    def presence_stats(self, channel: str) -> PresenceStatsResult:
        return self._run(self._calls.presence_stats(channel))

    def disconnect(self, user: str) -> None:
        """Close every connection of ``user`` on every node."""
        self._run(self._calls.disconnect(user))

    def info(self) -> InfoResult:
        return self._run(self._calls.info())

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncPublisher:
    """Asyncio client of a hub's server API; the same methods as :class:`Publisher`."""

    def __init__(self, url: str, api_key: str, *, timeout: float = 5, retries: int = 3) -> None:
        self.url = url
        self._calls = _Calls(retries)
        self._client = httpx.AsyncClient(**_client_options(url, api_key, timeout))

    async def _run(self, call: _Call[T]) -> T:
        for attempt in itertools.count():
            try:
                response = await self._client.send(call.request(self._client))
            except httpx.TransportError as exc:
                await asyncio.sleep(self._calls.delay_before_retry(exc, attempt, self.url))
                continue
            return call.parse(response)
        raise AssertionError("unreachable")  # pragma: no cover

    async def publish(
        self, channel: str, data: Any, *, idempotency_key: str | None = None
    ) -> PublishResult:
        """Publish ``data`` (any JSON value) to ``channel``; its offset and epoch."""
        return await self._run(self._calls.publish(channel, data, idempotency_key))

    async def broadcast(
        self, channels: Iterable[str], data: Any, *, idempotency_key: str | None = None
    ) -> BroadcastResult:
        """Publish ``data`` to every channel; one result (or error) per channel."""
        return await self._run(self._calls.broadcast(channels, data, idempotency_key))

    async def batch(self, commands: Iterable[PublishCommand]) -> BatchResult:
        """Run several publishes in order; one result (or error) per command."""
        return await self._run(self._calls.batch(commands))

    async def channels(self, pattern: str | None = None) -> ChannelsResult:
        """Active channels of the node that answers, with subscriber counts."""
        return await self._run(self._calls.channels(pattern))

    async def history(
        self,
        channel: str,
        *,
        limit: int | None = None,
        since_offset: int | None = None,
        epoch: str | None = None,
        reverse: bool = False,
    ) -> HistoryResult:
        return await self._run(self._calls.history(channel, limit, since_offset, epoch, reverse))

    async def presence(self, channel: str) -> PresenceResult:
        return await self._run(self._calls.presence(channel))

    async def presence_stats(self, channel: str) -> PresenceStatsResult:
        return await self._run(self._calls.presence_stats(channel))

    async def disconnect(self, user: str) -> None:
        """Close every connection of ``user`` on every node."""
        await self._run(self._calls.disconnect(user))

    async def info(self) -> InfoResult:
        return await self._run(self._calls.info())

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
