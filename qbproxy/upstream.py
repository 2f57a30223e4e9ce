"""The one client session to Intuit: streaming forwards and buffered fetches for fills.

Raw query strings are forwarded untouched (node-quickbooks sends unencoded `+hh:mm`,
qbo-api.md). Intuit's own 4xx/5xx are responses to relay; only failing to get an answer
at all raises (UpstreamTimeout, UpstreamUnavailable).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from qbproxy.config import UpstreamSettings
from qbproxy.errors import UpstreamTimeout, UpstreamUnavailable
from qbproxy.metrics import Metrics

log = logging.getLogger("qbproxy.upstream")

# RFC 9110 §7.6.1: connection-specific fields are not forwarded by a proxy.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_NOT_FORWARDED_UP = HOP_BY_HOP | {"host"}
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Fetched:
    """A buffered upstream answer (any status)."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


class BodyTooLarge(Exception):
    """The client's body passed server.max_body_bytes while streaming it upstream."""


def request_headers(headers: Mapping[str, str]) -> CIMultiDict[str]:
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        if name.lower() not in _NOT_FORWARDED_UP:
            out.add(name, value)
    return out


def response_headers(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        if name.lower() not in HOP_BY_HOP:
            out.add(name, value)
    return out


class Upstream:
    def __init__(self, settings: UpstreamSettings, metrics: Metrics) -> None:
        self.settings = settings
        self._metrics = metrics
        self._base = settings.base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        self._forward_timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=settings.connect_timeout_seconds,
            sock_read=settings.timeout_seconds,
        )
        self._fetch_timeout = aiohttp.ClientTimeout(
            total=settings.timeout_seconds, sock_connect=settings.connect_timeout_seconds
        )

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.settings.pool_size, limit_per_host=0),
            # Bodies are relayed as Intuit encoded them, headers and all.
            auto_decompress=False,
            # Send the client's headers, not aiohttp's defaults (User-Agent, Accept-Encoding).
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "Upstream.open() was not awaited"
        return self._session

    def url(self, path: str, query_string: str) -> URL:
        text = self._base + path + (f"?{query_string}" if query_string else "")
        return URL(text, encoded=True)

    async def forward(
        self,
        request: web.Request,
        *,
        max_body_bytes: int,
        extra_headers: Mapping[str, str],
        body: bytes | None = None,
        entity: str = "other",
        before_response: Callable[[int], Awaitable[None]] | None = None,
    ) -> web.StreamResponse:
        """Send the request on as it came and stream Intuit's answer back as it arrives."""
        headers = request_headers(request.headers)
        data: bytes | AsyncIterator[bytes] | None = body
        if body is None and request.body_exists:
            data = _limited(request.content, max_body_bytes)
        started = time.perf_counter()
        status = "error"
        try:
            async with self.session.request(
                request.method,
                self.url(request.rel_url.raw_path, request.rel_url.raw_query_string),
                headers=headers,
                data=data,
                allow_redirects=False,
                timeout=self._forward_timeout,
            ) as upstream:
                status = _status_class(upstream.status)
                self._metrics.upstream_seconds.labels(entity).observe(time.perf_counter() - started)
                if before_response is not None:
                    await before_response(upstream.status)
                response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
                response.headers.extend(response_headers(upstream.headers))
                response.headers.update(extra_headers)
                await response.prepare(request)
                try:
                    async for chunk in upstream.content.iter_chunked(_CHUNK):
                        await response.write(chunk)
                    await response.write_eof()
                except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
                    # Headers are sent: a failure can only cut the connection, so the
                    # client sees a short body, never a made-up status.
                    log.warning("upstream stream broke mid-body: %s", type(exc).__name__)
                    response.force_close()
                    if request.transport is not None:
                        request.transport.close()
                return response
        except TimeoutError as exc:
            raise UpstreamTimeout("Intuit did not answer in time") from exc
        except aiohttp.ClientError as exc:
            if isinstance(exc.__cause__, BodyTooLarge):
                raise BodyTooLarge from exc
            raise UpstreamUnavailable(f"Intuit unreachable: {type(exc).__name__}") from exc
        finally:
            self._metrics.upstream.labels(entity, status).inc()

    async def fetch(
        self,
        method: str,
        path: str,
        query_string: str,
        headers: Mapping[str, str],
        *,
        body: bytes | None = None,
        entity: str = "other",
    ) -> Fetched:
        """A whole upstream answer in memory, for answers the proxy reads (fills)."""
        out = request_headers(headers)
        # The proxy parses this body itself, so ask for it unencoded.
        out["Accept-Encoding"] = "identity"
        out.setdefault("Accept", "application/json")
        started = time.perf_counter()
        status = "error"
        try:
            async with self.session.request(
                method,
                self.url(path, query_string),
                headers=out,
                data=body,
                allow_redirects=False,
                timeout=self._fetch_timeout,
            ) as upstream:
                payload = await upstream.read()
                status = _status_class(upstream.status)
                return Fetched(upstream.status, upstream.headers, payload)
        except TimeoutError as exc:
            raise UpstreamTimeout("Intuit did not answer in time") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"Intuit unreachable: {type(exc).__name__}") from exc
        finally:
            self._metrics.upstream.labels(entity, status).inc()
            self._metrics.upstream_seconds.labels(entity).observe(time.perf_counter() - started)


def _status_class(status: int) -> str:
    return f"{status // 100}xx"


async def _limited(content: aiohttp.StreamReader, limit: int) -> AsyncIterator[bytes]:
    seen = 0
    async for chunk in content.iter_chunked(_CHUNK):
        seen += len(chunk)
        if seen > limit:
            raise BodyTooLarge
        yield chunk
