"""`Sandbox`: the fake Intuit's state and the control surface tests and the benchmark use."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from typing import Any, Literal, TypedDict, Unpack

import aiohttp
from aiohttp import web

from fake_intuit.catalog import SPECS
from fake_intuit.config import CompanyClock, SandboxConfig
from fake_intuit.data import SEGMENTS, Doc, RealmData, seed_realm
from fake_intuit.faults import Call, CallKind, Faults, Gate, Match, Stage
from fake_intuit.journal import Journal
from fake_intuit.seed_more import seed_more
from fake_intuit.webhooks import cloudevents_body, legacy_body, sign
from fake_intuit.writes import Writer, WriteResult, snapshot

log = logging.getLogger("fake_intuit")

HistoryKey = tuple[str, str, str]  # (realm, entity, id)


class MatchArgs(TypedDict, total=False):
    kind: CallKind
    entity: str
    realm: str
    method: str
    query: str
    where: Callable[[Call], bool]


class Sandbox:
    """State of one fake Intuit. Attributes marked settable may change at runtime."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.clock = CompanyClock(config.utc_offset_minutes)
        self.now: Callable[[], float] = time.time  # settable: the wall clock, epoch seconds
        self.tokens = config.accepted_tokens()  # settable: realm -> accepted bearer tokens
        self.latency_ms = config.latency_ms  # settable
        self.latency_jitter_ms = config.latency_jitter_ms  # settable
        self.max_concurrency_per_realm = config.max_concurrency_per_realm  # settable
        self.max_requests_per_minute_per_realm = config.max_requests_per_minute_per_realm
        self.webhook_url = config.webhook_url  # settable; None: no webhooks
        self.verifier_token = config.verifier_token or ""  # settable
        self.webhook_format: Literal["legacy", "cloudevents"] = "legacy"  # settable
        self.webhook_deliveries: list[tuple[int | str, bytes]] = []  # (status or error, body)
        # The newest calls (trimmed to about `call_log_size`); counts stay exact regardless.
        self.calls: list[Call] = []
        self.tally: Counter[tuple[CallKind, str, str | None]] = Counter()
        # Every document version: (time.monotonic_ns(), SyncToken), None once deleted. A
        # benchmark compares a read's SyncToken with the one current when it was sent.
        self.history: dict[HistoryKey, list[tuple[int, str | None]]] = defaultdict(list)
        self.faults = Faults()
        # Off unless start_journal(): every applied write's documents, for benchmarks and
        # tests that rebuild a past state (e.g. the report a read should have seen).
        self.journal: Journal | None = None
        self.inflight: dict[str, int] = defaultdict(int)
        self.windows: dict[str, deque[float]] = defaultdict(deque)
        self.idempotent: dict[tuple[str, str], tuple[int, bytes]] = {}  # requestid replays
        self.jitter = random.Random(config.seed ^ 0x5EED)
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        anchor = config.anchor.timestamp() if config.anchor else self.now()
        counts = (config.customers_per_realm, config.invoices_per_realm, config.payments_per_realm)
        self.realms: dict[str, RealmData] = {
            realm: seed_realm(
                realm,
                random.Random(f"{config.seed}:{realm}"),
                counts,
                anchor=anchor,
                meta=self.clock.meta,
                day=self.clock.date,
            )
            for realm in config.realms
        }
        for realm, data in self.realms.items():
            seed_more(
                data,
                random.Random(f"{config.seed}:{realm}:more"),
                config.entity_counts,
                anchor=anchor,
                meta=self.clock.meta,
                day=self.clock.date,
            )
        started = time.monotonic_ns()
        for realm, data in self.realms.items():
            for entity, docs in data.docs.items():
                for id_, doc in docs.items():
                    self.history[(realm, entity, id_)].append((started, doc["SyncToken"]))

    # -- reading the truth ------------------------------------------------------------------
    def token_for(self, realm: str) -> str:
        return self.tokens[realm][0]

    def entities(self, realm: str, entity: str) -> list[Doc]:
        """Copies of every document of `entity` in `realm` (inactive too), by Id."""
        docs = self.realms[realm].docs[_canonical(entity)]
        return [snapshot(docs[k]) for k in sorted(docs, key=int)]

    def get(self, realm: str, entity: str, id_: str) -> Doc | None:
        doc = self.realms[realm].docs[_canonical(entity)].get(id_)
        return snapshot(doc) if doc is not None else None

    def sync_token_at(self, realm: str, entity: str, id_: str, at_ns: int) -> str | None:
        """The SyncToken current at monotonic time `at_ns` (None: absent or deleted)."""
        current = None
        for when, token in self.history.get((realm, _canonical(entity), id_), []):
            if when > at_ns:
                break
            current = token
        return current

    def start_journal(self) -> Journal:
        """Record every write from now on (`Sandbox.journal`); Intuit's behaviour is
        unchanged. Returns the journal."""
        self.journal = Journal(self.realms)
        return self.journal

    def count(
        self, kind: CallKind | None = None, realm: str | None = None, entity: str | None = None
    ) -> int:
        """How many /v3 requests arrived (every status), filtered by kind, realm, entity."""
        return sum(
            n
            for (k, r, e), n in self.tally.items()
            if (kind is None or k == kind)
            and (realm is None or r == realm)
            and (entity is None or (e or "").lower() == entity.lower())
        )

    def record(self, call: Call) -> None:
        self.calls.append(call)
        self.tally[(call.kind, call.realm, call.entity)] += 1
        if len(self.calls) > 2 * self.config.call_log_size:
            del self.calls[: -self.config.call_log_size]

    def reset_calls(self) -> None:
        self.calls.clear()
        self.tally.clear()

    # -- writing --------------------------------------------------------------------------
    def write(
        self, realm: str, entity: str, operation: str, body: Any, send_to: str | None = None
    ) -> WriteResult:
        """Apply one write now, record it, and queue its webhook. Raises WriteError."""
        now = self.now()
        writer = Writer(self.realms[realm], self.clock.meta(now), self.clock.date(now))
        result = writer.apply(_canonical(entity), operation, body, send_to)
        stamp = time.monotonic_ns()
        data = self.realms[realm]
        for ent, id_ in result.changed:
            doc = data.docs[ent].get(id_)
            self.history[(realm, ent, id_)].append((stamp, doc["SyncToken"] if doc else None))
        if self.journal is not None:
            self.journal.record(realm, stamp, data, result.changed)
        if not SPECS[result.entity].webhooks:  # not Attachable, CompanyInfo, TaxCode, TaxRate
            return result
        self.notify(
            realm,
            [
                {
                    "name": result.entity,
                    "id": result.doc["Id"],
                    "operation": result.operation,
                    "lastUpdated": self.clock.body_time(now),
                }
            ],
        )
        return result

    def mutate_out_of_band(self, realm: str, entity: str, id_: str, changes: Doc) -> Doc:
        """Edit as if in the QBO web UI: a sparse update nobody's proxy saw (no Call logged;
        side effects, SyncToken bump and webhook as for any write)."""
        current = self.realms[realm].docs[_canonical(entity)][id_]
        body = dict(changes) | {"Id": id_, "SyncToken": current["SyncToken"], "sparse": True}
        return self.write(realm, entity, "update", body).doc

    # -- fault injection ------------------------------------------------------------------
    def fail_next(self, n: int = 1, status: int = 500, **match: Unpack[MatchArgs]) -> None:
        """The next n matching requests answer `status` with a code-10000 Fault."""
        self.faults.add("fail", n, Match(**match), status)

    def throttle_next(self, n: int = 1, **match: Unpack[MatchArgs]) -> None:
        """The next n matching requests answer Intuit's XML 429."""
        self.faults.add("throttle", n, Match(**match), 429)

    def kill_mid_stream_next(self, n: int = 1, **match: Unpack[MatchArgs]) -> None:
        """The next n matching responses send headers and half the body, then cut the link."""
        self.faults.add("kill", n, Match(**match))

    def pause(
        self, *, stage: Stage = "after", times: int | None = 1, **match: Unpack[MatchArgs]
    ) -> Gate:
        """Hold the next `times` matching requests (None: all) until `gate.release()`."""
        return self.faults.gate(Match(**match), stage, times)

    def hang(self, **match: Unpack[MatchArgs]) -> Gate:
        """Every matching request waits, before being looked at, until released."""
        return self.faults.gate(Match(**match), "before", None)

    def release_all(self) -> None:
        self.faults.release_all()

    # -- rate limits (qbo-api.md "Limits") -------------------------------------------------
    def admit(self, realm: str) -> bool:
        """Count a request against the realm's minute window; False: answer 429."""
        now = time.monotonic()
        window = self.windows[realm]
        while window and window[0] <= now - 60:
            window.popleft()
        if self.inflight[realm] >= self.max_concurrency_per_realm:
            return False
        if len(window) >= self.max_requests_per_minute_per_realm:
            return False
        window.append(now)
        return True

    async def delay(self) -> None:
        ms = self.latency_ms + self.jitter.uniform(-1, 1) * self.latency_jitter_ms
        if ms > 0:
            await asyncio.sleep(ms / 1000)

    # -- webhooks ---------------------------------------------------------------------------
    def notify(
        self,
        realm: str,
        entities: list[dict[str, str]],
        fmt: Literal["legacy", "cloudevents"] | None = None,
    ) -> None:
        """Queue a signed webhook POST (background task, after the response)."""
        if not self.webhook_url:
            return
        fmt = fmt or self.webhook_format
        body = (legacy_body if fmt == "legacy" else cloudevents_body)(realm, entities)
        task = asyncio.get_running_loop().create_task(self._deliver(self.webhook_url, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def send_cloudevents(self, realm: str, entity: str, id_: str, operation: str) -> None:
        at = self.clock.body_time(self.now())
        self.notify(
            realm,
            [{"name": _canonical(entity), "id": id_, "operation": operation, "lastUpdated": at}],
            "cloudevents",
        )

    async def _deliver(self, url: str, body: bytes) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        headers = {
            "Content-Type": "application/json",
            "intuit-signature": sign(body, self.verifier_token),
        }
        try:
            async with self._session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                self.webhook_deliveries.append((resp.status, body))
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("webhook delivery to %s failed: %r", url, exc)
            self.webhook_deliveries.append((repr(exc), body))

    async def drain_webhooks(self) -> None:
        """Wait for queued webhook deliveries (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        self.release_all()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()


def _canonical(entity: str) -> str:
    return SEGMENTS.get(entity.lower(), entity)


SANDBOX_KEY = web.AppKey("sandbox", Sandbox)
