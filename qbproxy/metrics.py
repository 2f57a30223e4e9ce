"""Prometheus metrics, built against an injected registry (a fresh one per test).

Labels are bounded: route kind, entity, cache result, status class. Never a realm, an id,
a token or a query literal: realms can be thousands (style.md, "Logs and metrics").
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# The hit path is sub-millisecond; prometheus' default buckets start at 5 ms.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "qbproxy_requests",
            "Requests under /v3 by route kind, entity and cache result.",
            ["route", "entity", "cache"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "qbproxy_request_duration_seconds",
            "Whole request time as the client sees it, by cache result.",
            ["cache"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.upstream = Counter(
            "qbproxy_upstream_requests",
            "Calls made to Intuit, by entity and status class (2xx..5xx, error).",
            ["entity", "status"],
            registry=registry,
        )
        self.upstream_seconds = Histogram(
            "qbproxy_upstream_duration_seconds",
            "Time to Intuit's answer (headers for forwards, whole body for fetches).",
            ["entity"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.calls_saved = Counter(
            "qbproxy_upstream_calls_saved",
            "Answers served from cache that would otherwise have been calls to Intuit.",
            ["entity"],
            registry=registry,
        )
        self.purges = Counter(
            "qbproxy_purges",
            "Table purges by entity and reason (write, stale_synctoken, manual, webhook).",
            ["entity", "reason"],
            registry=registry,
        )
        self.fills = Counter(
            "qbproxy_fills",
            "Fills by entity, kind (table, row) and outcome (landed, discarded, failed).",
            ["entity", "kind", "outcome"],
            registry=registry,
        )
        self.rows_filled = Counter(
            "qbproxy_rows_filled",
            "Entity rows written into the cache tables.",
            ["entity"],
            registry=registry,
        )
        self.singleflight_waits = Counter(
            "qbproxy_singleflight_waits",
            "Requests that waited for another request's table load instead of loading.",
            ["entity"],
            registry=registry,
        )
        self.store_errors = Counter(
            "qbproxy_store_errors",
            "Cache lookups or fills abandoned because Postgres failed; the request was forwarded.",
            [],
            registry=registry,
        )
