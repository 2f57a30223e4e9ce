"""The one client session to Intuit: streaming forwards and buffered fetches for fills,
each held to Intuit's per-realm limits and the realm's circuit breaker when given a realm.

Raw query strings are forwarded untouched (node-quickbooks sends unencoded `+hh:mm`,
qbo-api.md). Intuit's own 4xx/5xx are responses to relay; only failing to get an answer
at all raises (UpstreamTimeout, UpstreamUnavailable), or the proxy declining to ask:
RateLimited (a 429 to answer with Retry-After), CircuitOpen (fail fast).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from qbproxy.config import UpstreamSettings
from qbproxy.core.circuit import Circuits, FailFast, State
from qbproxy.core.limits import Go, Limits, RateLimiter, Reason, Refuse, parse_retry_after
from qbproxy.errors import (
    CircuitOpen,
    ClientGone,
    RateLimited,
    RequestBodyError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from qbproxy.metrics import Metrics

log = logging.getLogger("qbproxy.upstream")

# Whether the request being handled comes from a caller Intuit vouched for, for calls made
# on its behalf deep in shared code (a table load it leads): set by the handler, copied
# into tasks it starts; unset (background work such as refresh-ahead) means trusted.
CALLER_TRUSTED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "qbproxy_caller_trusted", default=True
)

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


@dataclass(frozen=True, slots=True)
class Streamed:
    """An answer over the size bound, already streamed on to the client as it came."""

    response: web.StreamResponse
    status: int


class BodyTooLarge(Exception):
    """The client's body passed server.max_body_bytes while streaming it upstream."""


@dataclass(slots=True)
class _Ticket:
    """What one limited call learned about Intuit, judged by the circuit when it ends."""

    status: int | None = None
    failed: bool = False
    trusted: bool = True
    admitted_at: float = 0.0


def _named_in_connection(headers: Mapping[str, str]) -> frozenset[str]:
    """RFC 9110 §7.6.1: the fields a `Connection` header names are hop-by-hop too."""
    getall = getattr(headers, "getall", None)
    values = getall("Connection", []) if getall is not None else [headers.get("Connection", "")]
    return frozenset(
        token.strip().lower() for value in values for token in value.split(",") if token.strip()
    )


def request_headers(headers: Mapping[str, str]) -> CIMultiDict[str]:
    dropped = _NOT_FORWARDED_UP | _named_in_connection(headers)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        if name.lower() not in dropped:
            out.add(name, value)
    return out


def response_headers(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    dropped = HOP_BY_HOP | _named_in_connection(headers)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        if name.lower() not in dropped:
            out.add(name, value)
    return out


class Upstream:
    def __init__(
        self,
        settings: UpstreamSettings,
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._metrics = metrics
        self._clock = clock
        # Every call to a realm counts here, with a margin under Intuit's per-minute limit.
        self.limiter = RateLimiter(
            Limits(
                concurrency=settings.max_concurrency_per_realm,
                per_minute=max(
                    1,
                    settings.max_requests_per_minute_per_realm
                    - settings.requests_per_minute_margin,
                ),
                max_queue_seconds=settings.max_queue_seconds,
            )
        )
        # Callers Intuit has not vouched for also count here: a small budget of their own,
        # taken only from what no trusted caller waits for (issue 14, item 3).
        self.untrusted = RateLimiter(
            Limits(
                concurrency=settings.untrusted_concurrency_per_realm,
                per_minute=settings.untrusted_requests_per_minute_per_realm,
                max_queue_seconds=settings.max_queue_seconds,
            )
        )
        self.circuits = Circuits(
            settings.circuit_failures,
            settings.circuit_open_seconds,
            settings.circuit_first_open_seconds,
        )
        # Per realm, the requests waiting for the limiter, first come first served.
        self._lines: dict[str, deque[asyncio.Event]] = {}
        self._untrusted_lines: dict[str, deque[asyncio.Event]] = {}
        for state in ("open", "half_open"):
            metrics.circuits.labels(state).set_function(partial(self._circuit_count, state))
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
        stream: AsyncIterator[bytes] | None = None,
        entity: str = "other",
        before_send: Callable[[], Awaitable[None]] | None = None,
        before_response: Callable[[int], Awaitable[None]] | None = None,
        realm: str | None = None,
        trusted: bool = True,
    ) -> web.StreamResponse:
        """Send the request on as it came and stream Intuit's answer back as it arrives.

        With `realm`, the call waits for the realm's limits (RateLimited when it would
        wait too long) and its circuit (CircuitOpen); the in-flight slot is held until
        the whole body is relayed, as Intuit counts it. `trusted`: Intuit vouched for the
        caller; anyone else gets the realm's small budget of its own and never opens or
        probes a circuit. `before_send` runs once the call is admitted, just before it
        goes. Only Intuit's failures count against the circuit: a caller that went away
        (ClientGone) does not.
        """
        headers = request_headers(request.headers)
        data: bytes | AsyncIterator[bytes] | None = body if body is not None else stream
        if data is None and request.body_exists:
            data = _limited(request.content, max_body_bytes)
        async with self._guarded(realm, entity, trusted) as ticket:
            if before_send is not None:
                await before_send()
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
                    self._metrics.upstream_seconds.labels(entity).observe(
                        time.perf_counter() - started
                    )
                    self._answered(realm, entity, ticket, upstream.status, upstream.headers)
                    if before_response is not None:
                        await before_response(upstream.status)
                    return await _stream(request, upstream, extra_headers, [], ticket)
            except TimeoutError as exc:
                raise UpstreamTimeout("Intuit did not answer in time") from exc
            except aiohttp.ClientError as exc:
                cause = exc.__cause__
                if isinstance(cause, BodyTooLarge | ClientGone | RequestBodyError):
                    # The caller's body failed on its way up: the caller's doing, not Intuit's.
                    raise cause from exc
                raise UpstreamUnavailable(f"Intuit unreachable: {type(exc).__name__}") from exc
            finally:
                self._metrics.upstream.labels(entity, status).inc()

    async def fetch_within(
        self,
        request: web.Request,
        *,
        max_bytes: int,
        extra_headers: Mapping[str, str],
        before_response: Callable[[int], Awaitable[None]] | None = None,
        entity: str = "other",
        realm: str | None = None,
        trusted: bool = True,
    ) -> Fetched | Streamed:
        """The client's GET sent on as it came: the whole answer in memory when its body
        is at most `max_bytes` (the caller relays it), else streamed on to the client as
        it arrives (`before_response` first, as for `forward`), the bytes read so far
        included: a large answer is never held whole."""
        headers = request_headers(request.headers)
        headers["Accept-Encoding"] = "identity"  # the proxy may parse and store this body
        async with self._guarded(realm, entity, trusted) as ticket:
            started = time.perf_counter()
            status = "error"
            try:
                async with self.session.request(
                    request.method,
                    self.url(request.rel_url.raw_path, request.rel_url.raw_query_string),
                    headers=headers,
                    allow_redirects=False,
                    timeout=self._forward_timeout,
                ) as upstream:
                    status = _status_class(upstream.status)
                    self._metrics.upstream_seconds.labels(entity).observe(
                        time.perf_counter() - started
                    )
                    self._answered(realm, entity, ticket, upstream.status, upstream.headers)
                    length = upstream.content_length
                    chunks: list[bytes] = []
                    over = length is not None and length > max_bytes
                    seen = 0
                    if not over:
                        async for chunk in upstream.content.iter_chunked(_CHUNK):
                            chunks.append(chunk)
                            seen += len(chunk)
                            if seen > max_bytes:
                                over = True
                                break
                    if not over:
                        return Fetched(upstream.status, upstream.headers, b"".join(chunks))
                    if before_response is not None:
                        await before_response(upstream.status)
                    response = await _stream(request, upstream, extra_headers, chunks, ticket)
                    return Streamed(response, upstream.status)
            except TimeoutError as exc:
                raise UpstreamTimeout("Intuit did not answer in time") from exc
            except aiohttp.ClientError as exc:
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
        realm: str | None = None,
        trusted: bool | None = None,
        before_send: Callable[[], Awaitable[None]] | None = None,
    ) -> Fetched:
        """A whole upstream answer in memory, for answers the proxy reads (fills).

        With `realm`, held to the realm's limits and circuit as `forward` is; `trusted`
        None: as the caller being handled is (CALLER_TRUSTED).
        """
        if trusted is None:
            trusted = CALLER_TRUSTED.get()
        out = request_headers(headers)
        # The proxy parses this body itself, so ask for it unencoded.
        out["Accept-Encoding"] = "identity"
        out.setdefault("Accept", "application/json")
        async with self._guarded(realm, entity, trusted) as ticket:
            if before_send is not None:
                await before_send()
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
                    self._answered(realm, entity, ticket, upstream.status, upstream.headers)
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

    # --- Intuit's per-realm limits and the circuit (decisions in ratelimit.py, circuit.py)

    @contextlib.asynccontextmanager
    async def _guarded(
        self, realm: str | None, entity: str, trusted: bool = True
    ) -> AsyncIterator[_Ticket]:
        """Pass the realm's circuit and limits, hold the slot for the call, then report
        the call's outcome to the circuit. No realm: not limited."""
        ticket = _Ticket(trusted=trusted)
        if realm is None:
            yield ticket
            return
        verdict = self.circuits.allow(realm, self._clock())
        if isinstance(verdict, FailFast):
            log.debug("circuit open for realm %s: failing fast", realm)
            raise CircuitOpen(verdict.retry_after)
        if verdict.probe and not trusted:
            # Only a trusted caller's answer may close a circuit.
            self.circuits.abandon(realm)
            raise CircuitOpen(self.circuits.first_open_seconds)
        try:
            go = await self._admit(realm, entity, trusted)
        except BaseException:
            if verdict.probe:
                self.circuits.abandon(realm)
            raise
        ticket.admitted_at = self._clock()
        try:
            yield ticket
        except (UpstreamTimeout, UpstreamUnavailable):
            ticket.failed = True
            raise
        finally:
            now = self._clock()
            self.limiter.done(realm, now)
            if not trusted:
                self.untrusted.done(realm, now)
            if go.probe and ticket.status is None:
                self.limiter.probe_ended(realm)
            self._wake(realm)
            if trusted:
                self._judge(realm, ticket, probe=verdict.probe)

    async def _admit(self, realm: str, entity: str, trusted: bool) -> Go:
        """Return once the realm may start a call; raise RateLimited when it may not soon.

        A caller Intuit has not vouched for first waits its turn in the realm's untrusted
        budget, then takes a slot of the realm's only if no trusted caller waits for it."""
        if trusted:
            return await self._in_line(self.limiter, self._lines, realm, entity)
        await self._in_line(self.untrusted, self._untrusted_lines, realm, entity)
        now = self._clock()
        shared = self.limiter.try_start(realm, now)
        if isinstance(shared, Refuse):
            self.untrusted.cancel(realm, now, now)
            self._wake(realm)
            self._metrics.throttle_avoided.labels(entity).inc()
            raise self._refused(realm, shared.retry_after, shared.reason)
        return shared

    async def _in_line(
        self,
        limiter: RateLimiter,
        lines: dict[str, deque[asyncio.Event]],
        realm: str,
        entity: str,
    ) -> Go:
        decision = limiter.arrive(realm, self._clock())
        if isinstance(decision, Go):
            return decision
        self._metrics.throttle_avoided.labels(entity).inc()
        if isinstance(decision, Refuse):
            raise self._refused(realm, decision.retry_after, decision.reason)
        line = lines.setdefault(realm, deque())
        turn = asyncio.Event()
        line.append(turn)
        deadline = self._clock() + self.settings.max_queue_seconds
        in_line = True
        try:
            while True:
                pause: float | None = None
                if line[0] is turn:
                    step = limiter.poll(realm, self._clock())
                    if isinstance(step, Go):
                        in_line = False
                        return step
                    if isinstance(step, Refuse):
                        in_line = False
                        raise self._refused(realm, step.retry_after, step.reason)
                    pause = step.seconds
                left = deadline - self._clock()
                if left <= 0:
                    in_line = False
                    retry_after = limiter.give_up(realm, self._clock())
                    raise self._refused(realm, retry_after, "queue")
                pause = left if pause is None else min(pause, left)
                turn.clear()
                # Woken by a finished call (`_wake`), or when the window or deadline says.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(pause):
                        await turn.wait()
        finally:
            if in_line:  # cancelled while waiting: the client went away
                limiter.give_up(realm, self._clock())
            line.remove(turn)
            if line:
                line[0].set()
            else:
                del lines[realm]

    def _wake(self, realm: str) -> None:
        for lines in (self._lines, self._untrusted_lines):
            line = lines.get(realm)
            if line:
                line[0].set()

    def _refused(self, realm: str, retry_after: float, reason: Reason) -> RateLimited:
        log.debug(
            "realm %s over Intuit's limits (%s): 429, retry after %.1fs", realm, reason, retry_after
        )
        return RateLimited(retry_after, reason)

    def _answered(
        self,
        realm: str | None,
        entity: str,
        ticket: _Ticket,
        status: int,
        headers: Mapping[str, str],
    ) -> None:
        ticket.status = status
        if realm is not None:
            # Intuit counted the call by now at the latest (item 11: starts as Intuit counts).
            now = self._clock()
            self.limiter.sent(realm, ticket.admitted_at, now)
            if not ticket.trusted:
                self.untrusted.sent(realm, ticket.admitted_at, now)
        own = self.limiter if ticket.trusted else self.untrusted
        if status != 429:
            if realm is not None:
                own.answered(realm)
            return
        self._metrics.throttled.labels(entity).inc()
        if realm is None:
            return
        # A caller Intuit has not vouched for backs off only its own budget.
        retry_after = parse_retry_after(headers.get("Retry-After"), time.time())
        seconds = own.throttled(realm, self._clock(), retry_after)
        log.warning("Intuit throttled realm %s: backing off %.0fs", realm, seconds)

    def _judge(self, realm: str, ticket: _Ticket, *, probe: bool) -> None:
        """Timeouts, connection errors and 5xx count against the circuit (any other
        answer shows Intuit is up); a call that got neither says nothing."""
        if ticket.failed or (ticket.status is not None and ticket.status >= 500):
            if self.circuits.failure(realm, self._clock(), probe=probe):
                log.warning(
                    "circuit open for realm %s: Intuit failing, failing fast for %.0fs",
                    realm,
                    self.circuits.open_for(realm),
                )
        elif ticket.status is not None:
            if self.circuits.success(realm, probe=probe):
                log.info("circuit closed for realm %s: Intuit answered the probe", realm)
        elif probe:
            self.circuits.abandon(realm)

    def _circuit_count(self, state: State) -> int:
        return self.circuits.counts(self._clock())[state]


async def _stream(
    request: web.Request,
    upstream: aiohttp.ClientResponse,
    extra_headers: Mapping[str, str],
    prefix: list[bytes],
    ticket: _Ticket,
) -> web.StreamResponse:
    """Relay Intuit's answer to the client as it arrives, after the `prefix` already read.

    Headers are sent first: a failure after that can only cut the connection, so the client
    sees a short body, never a made-up status. Only Intuit's side failing (a cut or stalled
    body) counts against the circuit; a caller that left never does (ClientGone before the
    headers went out, a quiet close after)."""
    response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
    response.headers.extend(response_headers(upstream.headers))
    response.headers.update(extra_headers)
    if not await _to_client(response.prepare(request)):
        raise ClientGone("the caller closed its connection before the answer")
    gone = False
    try:
        for chunk in prefix:
            if not await _to_client(response.write(chunk)):
                gone = True
                break
        else:
            async for chunk in upstream.content.iter_chunked(_CHUNK):
                if not await _to_client(response.write(chunk)):
                    gone = True
                    break
            else:
                gone = not await _to_client(response.write_eof())
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("upstream stream broke mid-body: %s", type(exc).__name__)
        ticket.failed = True
        gone = True
    if gone:
        response.force_close()
        if request.transport is not None:
            request.transport.close()
    return response


def _status_class(status: int) -> str:
    return f"{status // 100}xx"


async def _to_client(write: Awaitable[object]) -> bool:
    """Send to the caller; False when it has gone (its connection reset or closed)."""
    try:
        await write
    except (ConnectionError, aiohttp.ClientConnectionError):
        return False
    return True


async def _limited(content: aiohttp.StreamReader, limit: int) -> AsyncIterator[bytes]:
    seen = 0
    async for chunk in content.iter_chunked(_CHUNK):
        seen += len(chunk)
        if seen > limit:
            raise BodyTooLarge
        yield chunk
