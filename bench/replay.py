"""Replay a trace (chat or assistant) against one base URL as the apps would send it, open
loop: each session asks its questions at their (scaled) times, or as soon as its previous
answer came back.

Every HTTP exchange is recorded with `time.monotonic_ns()` at send and at the end of the
body (the clock of the fake Intuit's history, which runs in this process), its status, the
cache header and, for reads, the (entity, Id, SyncToken) of every document returned; for a
report, a digest of the body without `Header.Time` (checked against the fake's journal).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from fake_intuit.catalog import NAMES
from yarl import URL

from bench.trace import CREATED, WRITE_OPS, Call, Question, Session, Trace

ENTITIES = NAMES  # every entity the fake keeps, CompanyInfo and Preferences included
RETRIES_ON_429 = 3
DocRef = tuple[str, str, str]  # (entity, Id, SyncToken)


@dataclass(slots=True)
class Exchange:
    """One HTTP request as the app saw it (a 429 retried is one exchange, `throttled` > 0)."""

    session: int
    question: int
    realm: str
    kind: str  # query | read | report | write
    op: str  # the trace op it belongs to
    method: str
    status: int  # 0: no answer (connection error, timeout)
    cache: str  # the contender's cache header, "" when absent
    start_ns: int
    end_ns: int
    throttled: int = 0
    docs: list[DocRef] = field(default_factory=list)
    error: str | None = None
    path: str = ""  # reports: what was asked (the report name and parameters)
    digest: str | None = None  # reports: report_digest(body) of a 200 answer

    @property
    def ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


@dataclass(slots=True)
class Asked:
    session: int
    question: int
    intent: str
    writes: bool
    scheduled_ns: int
    start_ns: int
    end_ns: int


@dataclass(slots=True)
class Replay:
    exchanges: list[Exchange]
    questions: list[Asked]
    start_ns: int
    end_ns: int
    skipped_writes: int = 0  # e.g. a payment for an invoice the app saw already paid
    wall_minus_monotonic_ns: int = 0  # time.time_ns() - time.monotonic_ns() at the start
    skipped_reads: int = 0  # reads of what a write created, when the write failed


def report_digest(body: Any) -> str:
    """What a report says, apart from when it was computed (`Header.Time`)."""
    if isinstance(body, dict) and isinstance(body.get("Header"), dict):
        body = body | {"Header": {k: v for k, v in body["Header"].items() if k != "Time"}}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def docs_of(body: Any) -> list[DocRef]:
    """The entity documents in a query answer (lists) or an entity read (one object)."""
    if not isinstance(body, dict):
        return []
    response = body.get("QueryResponse")
    holder: dict[str, Any] = response if isinstance(response, dict) else body
    out: list[DocRef] = []
    for entity in ENTITIES:
        value = holder.get(entity)
        docs = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
        for doc in docs:
            if isinstance(doc, dict) and "Id" in doc and "SyncToken" in doc:
                out.append((entity, str(doc["Id"]), str(doc["SyncToken"])))
    return out


class Replayer:
    def __init__(
        self,
        trace: Trace,
        base_url: str,
        tokens: Mapping[str, str],
        *,
        time_scale: float,
        cache_header: str | None,
        on_exchange: Callable[[], None] | None = None,
        concurrency_limit: int = 512,
    ) -> None:
        self.trace = trace
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.time_scale = time_scale
        self.cache_header = cache_header
        self.on_exchange = on_exchange or (lambda: None)
        self.limit = concurrency_limit
        self.exchanges: list[Exchange] = []
        self.questions: list[Asked] = []
        self.skipped_writes = 0
        self.skipped_reads = 0

    async def run(self) -> Replay:
        connector = aiohttp.TCPConnector(limit=self.limit, force_close=False)
        timeout = aiohttp.ClientTimeout(total=180)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            self.http = http
            start_ns = time.monotonic_ns()
            offset = time.time_ns() - start_ns
            async with asyncio.TaskGroup() as group:
                for session in self.trace.sessions:
                    group.create_task(self._session(session, start_ns))
            end_ns = time.monotonic_ns()
        return Replay(
            self.exchanges,
            self.questions,
            start_ns,
            end_ns,
            self.skipped_writes,
            offset,
            self.skipped_reads,
        )

    async def _session(self, session: Session, start_ns: int) -> None:
        for number, question in enumerate(session.questions):
            scheduled = start_ns + int(question.at * self.time_scale * 1e9)
            wait = (scheduled - time.monotonic_ns()) / 1e9
            if wait > 0:
                await asyncio.sleep(wait)
            begun = time.monotonic_ns()
            await self._question(session, number, question)
            self.questions.append(
                Asked(
                    session.id,
                    number,
                    question.intent,
                    question.writes,
                    scheduled,
                    begun,
                    time.monotonic_ns(),
                )
            )

    async def _question(self, session: Session, number: int, question: Question) -> None:
        created: dict[str, str] = {}  # the Id a write of this question created
        for step in question.steps:
            await asyncio.gather(*(self._call(session, number, call, created) for call in step))

    async def _call(
        self, session: Session, number: int, call: Call, created: dict[str, str]
    ) -> None:
        if call.op not in WRITE_OPS:
            path = call.path
            if CREATED in path:
                if "Id" not in created:
                    self.skipped_reads += 1  # the write failed: nothing to look at
                    return
                path = path.replace(CREATED, created["Id"])
            body = call.body.encode() if call.body is not None else None
            headers = {"Content-Type": "application/text"} if body is not None else {}
            await self._exchange(
                session,
                number,
                kind=call.op,
                op=call.op,
                method=call.method,
                path=path,
                body=body,
                headers=headers,
            )
            return
        await self._write(session, number, call, created)

    async def _write(
        self, session: Session, number: int, call: Call, created: dict[str, str]
    ) -> None:
        """Read what the write needs through the contender, as the app would, then post."""
        doc: dict[str, Any] | None = None
        if call.read_path is not None:
            read, payload = await self._exchange(
                session,
                number,
                kind="read",
                op=call.op,
                method="GET",
                path=call.read_path,
                body=None,
                headers={},
            )
            entity = _read_entity(call)
            if read.status == 200 and isinstance(payload, dict):
                found = payload.get(entity)
                doc = found if isinstance(found, dict) else None
            if doc is None:
                self.skipped_writes += 1
                return
        body = _write_body(call, doc)
        if body is None:
            self.skipped_writes += 1
            return
        headers = {"Content-Type": "application/json"}
        written, answer = await self._exchange(
            session,
            number,
            kind="write",
            op=call.op,
            method="POST",
            path=call.path,
            body=orjson.dumps(body),
            headers=headers,
        )
        if written.status == 200 and isinstance(answer, dict) and call.entity:
            made = answer.get(call.entity)
            if isinstance(made, dict) and "Id" in made:
                created["Id"] = str(made["Id"])

    async def _exchange(
        self,
        session: Session,
        number: int,
        *,
        kind: str,
        op: str,
        method: str,
        path: str,
        body: bytes | None,
        headers: dict[str, str],
    ) -> tuple[Exchange, Any]:
        headers = {
            "Authorization": f"Bearer {self.tokens[session.realm]}",
            "Accept": "application/json",
            **headers,
        }
        url = URL(self.base_url + path, encoded=True)
        start = time.monotonic_ns()
        throttled, status, cache, raw, error = 0, 0, "", b"", None
        for attempt in range(RETRIES_ON_429 + 1):
            try:
                async with self.http.request(method, url, data=body, headers=headers) as resp:
                    raw = await resp.read()
                    status = resp.status
                    cache = resp.headers.get(self.cache_header, "") if self.cache_header else ""
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, error = 0, repr(exc)
                break
            if status != 429 or attempt == RETRIES_ON_429:
                break
            throttled += 1
            await asyncio.sleep(0.25 * 2**attempt)  # what SDKs do: back off and try again
        end = time.monotonic_ns()
        payload: Any = None
        docs: list[DocRef] = []
        digest = None
        if status == 200:
            try:
                payload = orjson.loads(raw)
            except orjson.JSONDecodeError:
                payload = None
            if kind == "report":
                digest = report_digest(payload)
            elif kind != "write":
                docs = docs_of(payload)
        exchange = Exchange(
            session.id,
            number,
            session.realm,
            kind,
            op,
            method,
            status,
            cache,
            start,
            end,
            throttled,
            docs,
            error,
            path if kind == "report" else "",
            digest,
        )
        self.exchanges.append(exchange)
        self.on_exchange()
        return exchange, payload


def _read_entity(call: Call) -> str:
    """The entity a write reads first (`read_path`)."""
    if call.op == "write":
        return str(call.data["read_entity"])
    return "Customer" if call.op == "update_customer" else "Invoice"


def _write_body(call: Call, doc: dict[str, Any] | None) -> dict[str, Any] | None:
    if call.op == "write":
        return _recipe(call, doc)
    if call.op == "create_invoice":
        return dict(call.data)
    if call.op == "update_customer":
        assert doc is not None
        assert call.id is not None
        return {"Id": call.id, "SyncToken": doc["SyncToken"], "sparse": True, **call.data}
    if call.op == "receive_payment":
        assert doc is not None
        balance = float(doc.get("Balance", 0))
        amount = round(balance * float(call.data["share"]), 2)
        if amount <= 0:
            return None  # the app sees the invoice paid already
        return {
            "CustomerRef": {"value": str(call.data["CustomerRef"])},
            "TotalAmt": amount,
            "Line": [
                {
                    "Amount": amount,
                    "LinkedTxn": [{"TxnId": str(call.data["InvoiceId"]), "TxnType": "Invoice"}],
                }
            ],
        }
    raise AssertionError(call.op)


def _recipe(call: Call, doc: dict[str, Any] | None) -> dict[str, Any] | None:
    """The assistant trace's writes: `create` posts `body` as it is; `sparse_update` adds the
    Id and the SyncToken just read; `pay_bill` pays `share` of the bill's balance just read."""
    recipe, body = call.data["recipe"], dict(call.data["body"])
    if recipe == "create":
        return body
    assert doc is not None
    if recipe == "sparse_update":
        return {"Id": str(doc["Id"]), "SyncToken": doc["SyncToken"], "sparse": True, **body}
    if recipe == "pay_bill":
        amount = round(float(doc.get("Balance", 0)) * float(call.data["share"]), 2)
        if amount <= 0:
            return None  # the app sees the bill paid already
        line = {"Amount": amount, "LinkedTxn": [{"TxnId": str(doc["Id"]), "TxnType": "Bill"}]}
        return body | {"TotalAmt": amount, "Line": [line]}
    raise AssertionError(recipe)
