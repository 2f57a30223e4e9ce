"""Queries and reads by id answered from the cache: gather facts, ask the policy
(qbproxy/core/policy.py), act, until the policy's answer is an answer.

When Postgres fails the request is forwarded; when Intuit fails the policy decides between
stale rows and a fault (design.md, promises 5 and 6).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import assert_never

from aiohttp import web

from qbproxy.core import inactive, policy, responses
from qbproxy.core.catalog import Entity, entity_named
from qbproxy.core.memory import AnswerKey
from qbproxy.core.policy import (
    Fail,
    Failure,
    Fetch,
    LookUp,
    QueryFacts,
    ReadFacts,
    Refresh,
    Relay,
    RelayAnswer,
    ServeMemory,
    ServeRows,
    ServeStale,
)
from qbproxy.core.projection import project
from qbproxy.core.qbql import Plan, Unsupported, compile_query
from qbproxy.core.routing import QueryRoute, ReadRoute
from qbproxy.errors import StoreUnavailable, UpstreamError, UpstreamTimeout
from qbproxy.services import Proxy
from qbproxy.sync.refresh import Discarded, Loaded, Refused
from qbproxy.upstream import CALLER_TRUSTED, Fetched
from qbproxy.web.bodies import Body, decoded
from qbproxy.web.landing import entity_row, fill_row
from qbproxy.web.relay import (
    BYPASS,
    HIT,
    MISS,
    STALE,
    Outcome,
    ask_and_learn,
    fault,
    forward,
    local_response,
    relay,
    relay_fetch,
    store_failed,
)

log = logging.getLogger("qbproxy.handlers")

# --- queries -------------------------------------------------------------------------


# The one Content-Type qbo-api.md and the clients (python-quickbooks, Intuit's SDKs) use for
# a POST query; with any other the proxy cannot be sure how Intuit reads the body: forward.
QUERY_CONTENT_TYPE = "application/text"


async def query(request: web.Request, proxy: Proxy, route: QueryRoute, sent: Body) -> Outcome:
    realm = route.realm
    body: bytes | None = None
    text = route.text
    if text is None:
        if request.content_type != QUERY_CONTENT_TYPE:
            return _bypass(await forward(request, proxy, realm, sent), "query", realm)
        limit = proxy.settings.server.max_body_bytes
        body = await sent.read(limit)
        # An undecodable gzip body is BadBody: the handler answers a 400 Fault.
        plain = decoded(body, request.headers.get("Content-Encoding"), limit)
        try:
            text = None if plain is None else plain.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is None:
            return _bypass(await forward(request, proxy, realm, sent), "query", realm)
    limit = proxy.settings.server.max_query_chars
    if len(text) > limit:
        detail = f"query over {limit} characters"
        return _bypass(fault(proxy, 400, "QueryValidationError", detail, "4000"), "query", realm)
    plan = compile_text(text)
    if isinstance(plan, Unsupported):
        log.debug("forwarding a query the cache cannot answer exactly: %s", plan.reason)
        return _bypass(await forward(request, proxy, realm, sent), "query", realm)
    entity = entity_named(plan.entity)
    assert entity is not None
    try:
        response, cache = await _answer_query(request, proxy, realm, entity, plan, body)
    except StoreUnavailable as exc:
        return _bypass(await store_failed(request, proxy, realm, exc, sent), "query", realm)
    return Outcome(response, cache, "query", entity.name, realm)


async def _answer_query(
    request: web.Request,
    proxy: Proxy,
    realm: str,
    entity: Entity,
    plan: Plan,
    body: bytes | None,
) -> tuple[web.StreamResponse, str]:
    authorization = request.headers.get("Authorization")
    key = (realm, entity.name, plan.normalized)
    trusted, _, kept = await _first_facts(proxy, key, authorization)
    # A load this caller leads is held to the budget its trust allows (issue 14, item 3).
    CALLER_TRUSTED.set(trusted)
    facts = QueryFacts(trusted=trusted, in_memory=kept is not None)
    refused: Fetched | None = None
    error: UpstreamError | None = None
    while True:
        action = policy.decide_query(facts, proxy.windows)
        match action:
            case ServeMemory():
                assert kept is not None
                _answered_from_cache(proxy, realm, entity, authorization)
                return local_response(responses.query_body(kept, proxy.wall_clock()), HIT), HIT
            case LookUp():
                try:
                    table = await proxy.tables.state(realm, entity)
                except StoreUnavailable:
                    if facts.failure is None:
                        raise
                    table = None  # Intuit and Postgres failing: nothing stale either
                if table is not None:
                    _learn_state(proxy, realm, entity, table)
                facts = dataclasses.replace(facts, looked_up=True, table=table)
            case ServeRows(cache, remember):
                _answered_from_cache(proxy, realm, entity, authorization, saved=cache == HIT)
                fragment = await query_fragment(proxy, realm, plan)
                if fragment is None:
                    return await _ask_and_learn_rule(
                        request, proxy, realm, entity, plan, body
                    ), MISS
                if remember and facts.table is not None and proxy.memory.enabled:
                    proxy.memory.keep(key, facts.table.generation, fragment)
                return local_response(
                    responses.query_body(fragment, proxy.wall_clock()), cache
                ), cache
            case Refresh():
                try:
                    result, led = await proxy.loader.load_table(
                        realm, entity, _auth_headers(authorization)
                    )
                except UpstreamError as exc:
                    error = exc
                    facts = dataclasses.replace(facts, failure=_why(exc), looked_up=False)
                    continue
                # The loader recorded whether Intuit accepted its caller's token; every
                # other waiter (here or in another instance) is answered only if its own is.
                trusted = await proxy.tokens.trusted(realm, authorization)
                facts = dataclasses.replace(facts, trusted=trusted, refreshed=_refreshed(result))
                if isinstance(result, Refused) and led:
                    refused = result.answer
                    failure = policy.failure_of(refused.status)
                    facts = dataclasses.replace(
                        facts, answered=True, failure=failure, looked_up=failure is None
                    )
            case ServeStale():
                failure = facts.failure
                assert failure is not None
                try:
                    fragment = await query_fragment(proxy, realm, plan)
                except StoreUnavailable:
                    fragment = None
                if fragment is None:
                    facts = dataclasses.replace(facts, table=None)
                    continue
                _served_stale(proxy, realm, entity, failure)
                return local_response(
                    responses.query_body(fragment, proxy.wall_clock()), STALE
                ), STALE
            case Relay():
                answer = relay_fetch(request, proxy, realm, entity, body, trusted=facts.trusted)
                return await answer, MISS
            case RelayAnswer():
                assert refused is not None
                return relay(refused, MISS), MISS
            case Fail():
                assert error is not None
                raise error
            case Fetch():
                raise AssertionError("queries are never fetched row by row")
            case _:
                assert_never(action)


# Chat traffic repeats the same few query texts; compiling is pure, so remember results.
_compile_cached = functools.lru_cache(maxsize=4096)(compile_query)
_CACHED_TEXT_CHARS = 2_000  # longer texts are compiled each time (bounded memory)


def compile_text(text: str) -> Plan | Unsupported:
    if len(text) > _CACHED_TEXT_CHARS:
        return compile_query(text)
    return _compile_cached(text)


async def query_fragment(proxy: Proxy, realm: str, plan: Plan) -> bytes | None:
    """The QueryResponse the cache gives for `plan`, or None when only Intuit can say
    (a name list whose `SELECT *` rule is not known yet, and inactive rows on which the
    two rules disagree: qbproxy/core/inactive.py)."""
    probe = plan.inactive_probe
    if probe is not None:
        rule = proxy.inactive_rules.get(plan.entity)
        if rule == "shown":
            assert plan.shown is not None
            plan = plan.shown
        elif rule is None and await proxy.rows.exists(realm, probe, plan.probe_args):
            return None
    return await _fragment(proxy, realm, plan)


async def _fragment(proxy: Proxy, realm: str, plan: Plan) -> bytes:
    if plan.count:
        return responses.count_response(await proxy.rows.count(realm, plan.sql, plan.args))
    docs = await proxy.rows.select(realm, plan.sql, plan.args)
    if plan.projection is not None:
        names = frozenset(plan.projection)
        docs = [project(doc, names) for doc in docs]
    return responses.query_response(plan.entity, docs, plan.start_position)


async def _ask_and_learn_rule(
    request: web.Request, proxy: Proxy, realm: str, entity: Entity, plan: Plan, body: bytes | None
) -> web.Response:
    """Forward a query only Intuit can answer yet, and learn from its answer whether
    `SELECT *` on this name list hides inactive rows (qbproxy/core/inactive.py)."""
    # Only a trusted caller's query is answered from rows (policy.decide_query).
    answer = await ask_and_learn(request, proxy, realm, entity, body, trusted=True)
    if answer.status == 200 and plan.shown is not None:
        hidden = await _fragment(proxy, realm, plan)
        shown = await _fragment(proxy, realm, plan.shown)
        rule = inactive.learn(entity.name, answer.body, hidden, shown)
        if rule is not None and proxy.inactive_rules.setdefault(entity.name, rule) == rule:
            verb = "hides" if rule == "hidden" else "returns"
            log.info(
                "[CACHE] learned from Intuit: SELECT * FROM %s %s inactive rows", entity.name, verb
            )
    return relay(answer, MISS)


# --- reads by id ---------------------------------------------------------------------


async def read(request: web.Request, proxy: Proxy, route: ReadRoute, sent: Body) -> Outcome:
    try:
        response, cache = await _answer_read(request, proxy, route)
    except StoreUnavailable as exc:
        forwarded = await store_failed(request, proxy, route.realm, exc, sent)
        return _bypass(forwarded, "read", route.realm)
    return Outcome(response, cache, "read", route.entity.name, route.realm)


async def _answer_read(
    request: web.Request, proxy: Proxy, route: ReadRoute
) -> tuple[web.StreamResponse, str]:
    realm, entity = route.realm, route.entity
    authorization = request.headers.get("Authorization")
    key = (realm, entity.name, f"#{route.entity_id or ''}")
    trusted, generation, kept = await _first_facts(proxy, key, authorization)
    CALLER_TRUSTED.set(trusted)
    facts = ReadFacts(trusted=trusted, in_memory=kept is not None)
    doc: bytes | None = None
    answer: Fetched | None = None
    error: UpstreamError | None = None
    while True:
        action = policy.decide_read(facts, proxy.windows)
        match action:
            case ServeMemory():
                assert kept is not None
                _answered_from_cache(proxy, realm, entity, authorization)
                return local_response(
                    responses.entity_body(entity.name, kept, proxy.wall_clock()), HIT
                ), HIT
            case LookUp():
                try:
                    entity_id = None if route.entity_id is None else int(route.entity_id)
                    found = await proxy.rows.row(realm, entity, entity_id)
                except StoreUnavailable:
                    if facts.failure is None:
                        raise
                    found = None  # Intuit and Postgres failing: nothing stale either
                doc = None if found is None else found[0].encode()
                age = None if found is None else found[1]
                facts = dataclasses.replace(facts, looked_up=True, row_age=age)
            case ServeRows(cache, remember):
                assert doc is not None
                _answered_from_cache(proxy, realm, entity, authorization, saved=cache == HIT)
                if remember and generation is not None:
                    proxy.memory.keep(key, generation, doc)
                body = responses.entity_body(entity.name, doc, proxy.wall_clock())
                return local_response(body, cache), cache
            case Refresh():
                refreshed = await _refresh_for_read(proxy, realm, entity, authorization)
                facts = dataclasses.replace(facts, refreshed=refreshed, looked_up=False)
            case Fetch():
                ticket = await proxy.tables.begin_fill(realm, entity)
                try:
                    answer = await proxy.upstream.fetch(
                        "GET",
                        request.path,
                        request.rel_url.raw_query_string,
                        request.headers,
                        entity=entity.name,
                        realm=realm,
                        trusted=facts.trusted,
                    )
                except UpstreamError as exc:
                    error = exc
                    facts = dataclasses.replace(facts, failure=_why(exc), looked_up=False)
                    continue
                failure = policy.failure_of(answer.status)
                if failure is not None:
                    facts = dataclasses.replace(
                        facts, failure=failure, answered=True, looked_up=False
                    )
                    continue
                await proxy.tokens.learn(realm, authorization, answer.status)
                if answer.status == 200:
                    await fill_row(proxy, ticket, entity_row(entity, answer.body, route.entity_id))
                return relay(answer, MISS), MISS
            case ServeStale():
                assert doc is not None
                assert facts.failure is not None
                _served_stale(proxy, realm, entity, facts.failure)
                body = responses.entity_body(entity.name, doc, proxy.wall_clock())
                return local_response(body, STALE), STALE
            case RelayAnswer():
                assert answer is not None
                await proxy.tokens.learn(realm, authorization, answer.status)
                return relay(answer, MISS), MISS
            case Fail():
                assert error is not None
                raise error
            case Relay():
                raise AssertionError("a read is fetched, never relayed unread")
            case _:
                assert_never(action)


async def _refresh_for_read(
    proxy: Proxy, realm: str, entity: Entity, authorization: str | None
) -> policy.Refreshed:
    """A table loaded whole before but incomplete now (a write purged it, or its TTL ran
    out) is brought up to date by the realm's one CDC call: the one call the read would
    have cost, after which the rest of the realm's tables are fresh too."""
    try:
        result = await proxy.loader.refresh_incrementally(
            realm, entity, _auth_headers(authorization)
        )
    except UpstreamError:
        return "not_possible"  # the entity alone is asked for next
    return "not_possible" if result is None else _refreshed(result)


# --- shared -------------------------------------------------------------------------


def _refreshed(result: Loaded | Refused | Discarded) -> policy.Refreshed:
    match result:
        case Loaded():
            return "loaded"
        case Refused():
            return "refused"
        case Discarded():
            return "discarded"


def _why(exc: UpstreamError) -> Failure:
    return "timeout" if isinstance(exc, UpstreamTimeout) else "unavailable"


async def _first_facts(
    proxy: Proxy, key: AnswerKey, authorization: str | None
) -> tuple[bool, int | None, bytes | None]:
    """(trusted, the generation memory may answer under, the answer it keeps for a trusted
    caller): what is known without asking Postgres (token trust is in memory when hot)."""
    realm, entity, _ = key
    trusted = await proxy.tokens.trusted(realm, authorization)
    if not proxy.memory.enabled or not proxy.invalidation.healthy:
        return trusted, None, None
    generation = proxy.memory.complete_generation(realm, entity, proxy.clock())
    if not trusted or generation is None:
        return trusted, generation, None
    return trusted, generation, proxy.memory.answer(key, generation)


def _learn_state(proxy: Proxy, realm: str, entity: Entity, table: policy.TableFacts) -> None:
    if proxy.memory.enabled and table.whole:
        left = policy.fresh_for(table, proxy.windows)
        proxy.memory.learn(realm, entity.name, table.generation, left, proxy.clock())


def _answered_from_cache(
    proxy: Proxy, realm: str, entity: Entity, authorization: str | None, *, saved: bool = True
) -> None:
    """A trusted caller was answered about the table: count the call saved, and keep the
    table refreshed ahead for a while with this caller's token (qbproxy/core/in_use.py)."""
    if saved:
        proxy.metrics.calls_saved.labels(entity.name).inc()
    if authorization is not None:
        proxy.demand.used(realm, entity.name, authorization, proxy.clock())


def _served_stale(proxy: Proxy, realm: str, entity: Entity, reason: Failure) -> None:
    proxy.metrics.stale_serves.labels(entity.name, reason).inc()
    log.warning("[CACHE] Intuit failing: served stale %s for realm %s", entity.name, realm)


def _auth_headers(authorization: str | None) -> dict[str, str]:
    return {"Authorization": authorization} if authorization else {}


def _bypass(response: web.StreamResponse, route: str, realm: str) -> Outcome:
    return Outcome(response, BYPASS, route, realm=realm)
