"""Differential test: every query answered by qbproxy equals the fake Intuit's own answer.

The same query goes to the proxy (after one warm-up query per entity has made the tables
complete) and straight to the fake; status and document (without `time`) must be equal,
X-Cache must be HIT exactly for what `compile_query` accepts and BYPASS for the rest, and
the fake must see no query from the proxy but the forwarded ones. Queries come from
tests/querygen.py: a large seeded set, then hypothesis (generated and mutated texts).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote as url_quote

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer
from fake_intuit import SANDBOX_KEY, Sandbox, SandboxConfig, create_app
from fake_intuit.catalog import SPECS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from qbproxy.core.qbql import Plan, Unsupported, compile_query
from tests.integration.conftest import REALM, Intuit, ProxyFactory, Running
from tests.querygen import ENTITIES, Doc, QueryBuilder, RandomSource

T = TypeVar("T")

# A fixed "today": the seeded company (names, dates, amounts, times) is the same every run.
ANCHOR = dt.datetime(2025, 3, 14, 15, 9, 26, tzinfo=dt.UTC)
SMALL = SandboxConfig(realms=(REALM,), seed=7, anchor=ANCHOR)
# Over 1,000 invoices: the proxy loads the Invoice table in two pages.
LARGE = SandboxConfig(
    realms=(REALM,),
    seed=11,
    anchor=ANCHOR,
    customers_per_realm=120,
    invoices_per_realm=1200,
    payments_per_realm=300,
)
QUERIES = 1500
CONCURRENCY = 4  # queries in flight at once (Postgres and HTTP round trips overlap)
TRANSPORTS = ("get", "get-%20", "post")
# Marks the test's own calls to the fake, so that the proxy's are told apart.
DIRECT_MARK = "differential-direct=1"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    cache: str | None  # X-Cache (the proxy's answers only)
    document: Any  # parsed JSON without "time"; the raw bytes if not JSON

    def shown(self) -> str:
        return f"{self.status} {self.cache or ''} {str(self.document)[:300]}"


def document(body: bytes) -> Any:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if isinstance(parsed, dict):
        parsed.pop("time", None)
    return parsed


def expected_cache(text: str) -> str:
    return "HIT" if isinstance(compile_query(text), Plan) else "BYPASS"


def allowed_caches(text: str) -> set[str]:
    """A `SELECT *` on a name list whose rule for inactive rows is unsure is answered from
    the cache only when no inactive row would change the answer; else Intuit's (MISS)."""
    plan = compile_query(text)
    if isinstance(plan, Plan) and plan.inactive_probe is not None:
        return {"HIT", "MISS"}
    return {expected_cache(text)}


@dataclass
class Env:
    """A fake Intuit, a proxy in front of it, and a client session for both."""

    intuit: Intuit
    proxy: Running
    session: aiohttp.ClientSession

    @property
    def sandbox(self) -> Sandbox:
        return self.intuit.sandbox

    def docs(self) -> dict[str, list[Doc]]:
        return {e: self.sandbox.entities(REALM, e) for e in ENTITIES}

    async def ask(self, base: str, text: str, transport: str, extra: str = "") -> Answer:
        url = f"{base}/v3/company/{REALM}/query?minorversion=75{extra}"
        headers = self.intuit.auth()
        if transport == "post":
            request = self.session.post(
                URL(url, encoded=True),
                data=text.encode(),
                headers={**headers, "Content-Type": "application/text"},
            )
        elif transport == "get-%20":  # node-quickbooks: encodeURIComponent, spaces as %20
            request = self.session.get(
                URL(f"{url}&query={url_quote(text, safe='')}", encoded=True), headers=headers
            )
        else:  # aiohttp's own encoding: spaces as +
            request = self.session.get(
                URL(url, encoded=True).update_query(query=text), headers=headers
            )
        async with request as response:
            return Answer(
                response.status, response.headers.get("X-Cache"), document(await response.read())
            )

    async def via_proxy(self, text: str, transport: str) -> Answer:
        return await self.ask(str(self.proxy.server.make_url("")).rstrip("/"), text, transport)

    async def direct(self, text: str, transport: str) -> Answer:
        return await self.ask(self.intuit.url, text, transport, "&" + DIRECT_MARK)

    def proxy_queries_since(self, mark: int) -> list[str]:
        """Query texts the fake received from the proxy after call number `mark`."""
        return [
            call.query or ""
            for call in self.sandbox.calls[mark:]
            if call.kind == "query" and DIRECT_MARK not in call.query_string
        ]

    async def warm_up(self) -> None:
        """One query per entity: each table is loaded whole, later queries are HITs."""
        for entity in ENTITIES:
            # Naming Active: a plain count of a name list may be Intuit's to answer.
            active = " WHERE Active IN (true, false)" if "Active" in SPECS[entity].fields else ""
            answer = await self.via_proxy(f"SELECT COUNT(*) FROM {entity}{active}", "get")
            assert (answer.status, answer.cache) == (200, "MISS"), answer.shown()
            rows = len(self.sandbox.entities(REALM, entity))
            pages = max(1, -(-rows // 1000))
            loads = self.proxy_queries_since(0)
            assert sum(f"FROM {entity}" in q for q in loads) == pages, loads


EnvFactory = Callable[[SandboxConfig], Awaitable[Env]]


@pytest.fixture
async def env_for(proxy_for: ProxyFactory) -> AsyncIterator[EnvFactory]:
    """Start a fake Intuit seeded by a config, a proxy in front of it, and warm it up."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(config: SandboxConfig) -> Env:
            # No rate limits: the test sends each query twice, several at a time.
            config = dataclasses.replace(
                config, max_requests_per_minute_per_realm=10**9, max_concurrency_per_realm=1000
            )
            app = create_app(config)
            server = TestServer(app, host="127.0.0.1")
            await server.start_server()
            stack.push_async_callback(server.close)
            intuit = Intuit(server, app[SANDBOX_KEY])
            proxy = await proxy_for(intuit.url)
            session = await stack.enter_async_context(aiohttp.ClientSession())
            env = Env(intuit, proxy, session)
            await env.warm_up()
            return env

        yield start


async def check(env: Env, text: str, transport: str) -> tuple[list[str], Answer, bool]:
    """Differences between the proxy's and the fake's answers to `text` (empty: none), the
    fake's answer, and whether the proxy asked Intuit (MISS or BYPASS)."""
    proxy, intuit = await env.via_proxy(text, transport), await env.direct(text, transport)
    problems = []
    if proxy.status >= 500:
        problems.append("the proxy answered 5xx")
    if (proxy.status, proxy.document) != (intuit.status, intuit.document):
        problems.append("answers differ")
    if proxy.cache not in allowed_caches(text):
        problems.append(f"X-Cache {proxy.cache}, expected {expected_cache(text)}")
    if problems:
        problems = [
            f"{text!r} via {transport}: {'; '.join(problems)}",
            f"    proxy: {proxy.shown()}",
            f"    fake:  {intuit.shown()}",
        ]
    return problems, intuit, proxy.cache != "HIT"


async def test_generated_queries_answer_as_intuit_does(env_for: EnvFactory) -> None:
    env = await env_for(LARGE)
    builder = QueryBuilder(RandomSource(random.Random("differential")), env.docs())
    texts = [builder.query() for _ in range(QUERIES)]
    mark = len(env.sandbox.calls)
    limit = asyncio.Semaphore(CONCURRENCY)

    async def bounded_check(i: int, text: str) -> tuple[list[str], Answer, bool]:
        async with limit:
            return await check(env, text, TRANSPORTS[i % len(TRANSPORTS)])

    results = await asyncio.gather(*(bounded_check(i, text) for i, text in enumerate(texts)))
    problems: list[str] = []
    forwarded: Counter[str] = Counter()
    hits = nonempty = projections = 0
    for text, (found, answer, asked) in zip(texts, results, strict=True):
        problems += found
        if asked:
            forwarded[text] += 1
        else:
            hits += 1
            nonempty += answer.status == 200 and answer.document["QueryResponse"] != {}
            plan = compile_query(text)
            assert isinstance(plan, Plan)
            projections += plan.projection is not None
    assert not problems, "\n".join(problems[:30])
    # After the warm-up, the proxy asked Intuit nothing but the queries it forwarded.
    assert Counter(env.proxy_queries_since(mark)) == forwarded
    # The generator is worth running: mostly cacheable queries, most of them with rows.
    # Fewer than for the seed's three: Purchase's and Transfer's filters, and plain
    # `SELECT *` on name lists with inactive rows, are Intuit's to answer.
    assert hits >= 0.6 * len(texts), hits
    # Every entity was answered from the cache, and checked, many times.
    answered: Counter[str] = Counter()
    for text, (_, _, asked) in zip(texts, results, strict=True):
        plan = compile_query(text)
        if not asked and isinstance(plan, Plan):
            answered[plan.entity] += 1
    assert set(answered) == set(ENTITIES), set(ENTITIES) - set(answered)
    assert min(answered.values()) >= 5, answered
    assert len(texts) - hits >= 0.05 * len(texts)
    assert nonempty >= 0.5 * hits, (nonempty, hits)
    assert projections >= 0.15 * hits, (projections, hits)  # `SELECT Id, SyncToken` etc.


# -- hypothesis -----------------------------------------------------------------------------
# pytest-asyncio runs an async @given test itself: every example runs on the test's event
# loop, and the function-scoped servers are shared by all examples (hence the suppressed
# health check). Strategies draw values from the same seeded company the servers hold.

SMALL_DOCS = {e: Sandbox(SMALL).entities(REALM, e) for e in ENTITIES}
CHARACTERS = st.characters(exclude_categories=["Cs"])
NAME_CHARACTERS = sorted({c for d in SMALL_DOCS["Customer"] for c in d["DisplayName"]})
LITERAL_TEXT = st.text(
    st.sampled_from("'\\%_ ") | st.sampled_from(NAME_CHARACTERS) | CHARACTERS, max_size=12
)
HYPOTHESIS_SETTINGS = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class DrawSource:
    """A `querygen.Source` whose choices are hypothesis draws (so failures shrink)."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw

    def choice(self, options: Sequence[T]) -> T:
        return self.draw(st.sampled_from(options))

    def integer(self, low: int, high: int) -> int:
        return self.draw(st.integers(low, high))

    def chance(self, p: float) -> bool:
        # Shrinks towards False: the simpler query.
        return self.draw(st.integers(0, 99)) >= round(100 * (1 - p))

    def text(self) -> str:
        return self.draw(LITERAL_TEXT)


@st.composite
def queries(draw: st.DrawFn) -> str:
    return QueryBuilder(DrawSource(draw), SMALL_DOCS).query()


@st.composite
def mutated_queries(draw: st.DrawFn) -> str:
    """A generated query with a few characters inserted or deleted."""
    text = draw(queries())
    inserted = st.sampled_from("'\\ ()*,=<>-.%_;\n\t\"azAZ09é‘’") | CHARACTERS
    edits = draw(
        st.lists(st.tuples(st.integers(0, 400), st.none() | inserted), min_size=1, max_size=4)
    )
    for position, char in edits:
        at = position % (len(text) + 1)
        text = text[:at] + text[at + 1 :] if char is None else text[:at] + char + text[at:]
    return text


@pytest.fixture
async def small_env(env_for: EnvFactory) -> Env:
    env = await env_for(SMALL)
    assert env.docs() == SMALL_DOCS  # the strategies' values are this company's
    return env


async def check_one(env: Env, text: str, transport: str) -> None:
    mark = len(env.sandbox.calls)
    problems, _, asked = await check(env, text, transport)
    assert not problems, "\n".join(problems)
    forwarded = [text] if asked else []
    assert env.proxy_queries_since(mark) == forwarded


@HYPOTHESIS_SETTINGS
@given(text=queries(), transport=st.sampled_from(TRANSPORTS))
async def test_hypothesis_queries_answer_as_intuit_does(
    small_env: Env, text: str, transport: str
) -> None:
    await check_one(small_env, text, transport)


@HYPOTHESIS_SETTINGS
@given(text=mutated_queries(), transport=st.sampled_from(TRANSPORTS))
async def test_mutated_queries_never_500_and_answer_as_intuit_does(
    small_env: Env, text: str, transport: str
) -> None:
    await check_one(small_env, text, transport)


# -- disagreements found, minimised -------------------------------------------------------


async def test_dotted_capital_i_folds_as_intuit_folds_it(small_env: Env) -> None:
    await check_one(small_env, "SELECT * FROM Customer WHERE DisplayName LIKE '%İ%'", "get")


def test_ordering_on_a_boolean_is_forwarded() -> None:
    assert isinstance(compile_query("SELECT * FROM Customer ORDERBY Active"), Unsupported)
