"""Prometheus metrics, built against an injected registry (a fresh one per test).

Labels are bounded: route kind, entity, cache result, status class. Never a realm, an id,
a token or a query literal: realms can be thousands (style.md, "Logs and metrics"). The
hit ratio is computed at scrape time from the request counter; the cache-state gauges
read from Postgres are added by the admin listener per scrape (cache_stats.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

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
        self.refresh_ahead = Counter(
            "qbproxy_refresh_ahead",
            "Background refreshes of in-use tables about to expire, by outcome (refreshed, "
            "discarded: a purge came first, failed: Intuit refused or failed, no_token: no "
            "trusted token for the realm, so nothing was asked).",
            ["outcome"],
            registry=registry,
        )
        self.store_errors = Counter(
            "qbproxy_store_errors",
            "Cache lookups or fills abandoned because Postgres failed; the request was forwarded.",
            [],
            registry=registry,
        )
        self.store_seconds = Histogram(
            "qbproxy_store_duration_seconds",
            "Time of one cache operation in Postgres (lookup, select, fill, purge), by operation.",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.stale_serves = Counter(
            "qbproxy_stale_serves",
            "Answers served from rows past the TTL (X-Cache: STALE), within "
            "cache.max_stale_seconds, by entity and why Intuit was not asked or not waited "
            "for (timeout, unavailable, 5xx, throttled, circuit_open).",
            ["entity", "reason"],
            registry=registry,
        )
        self.throttled = Counter(
            "qbproxy_upstream_throttled",
            "429 Too Many Requests answers received from Intuit, by entity.",
            ["entity"],
            registry=registry,
        )
        self.throttle_avoided = Counter(
            "qbproxy_upstream_throttle_avoided",
            "Requests the proxy's own per-realm limiter held back or answered itself, that "
            "would otherwise have exceeded Intuit's limits and drawn a 429.",
            ["entity"],
            registry=registry,
        )
        self.circuits = Gauge(
            "qbproxy_upstream_circuits",
            "Realms whose upstream circuit breaker is in this state (open, half_open); a "
            "count over realms, never a realm label. Closed circuits are not counted.",
            ["state"],
            registry=registry,
        )
        registry.register(HitRatio(self.requests))


HIT_RATIO_HELP = (
    "Share of cacheable requests answered from cache since the process started, per entity: "
    "hit / (hit + miss + stale) over qbproxy_requests_total, bypass excluded (writes, "
    "forwarded queries and Postgres outages are not cache decisions). Absent for an entity "
    "with no such request yet. Over a window, compute it from qbproxy_requests_total."
)


class HitRatio:
    """`qbproxy_cache_hit_ratio{entity}`, computed at scrape time from the request counter."""

    def __init__(self, requests: Counter) -> None:
        self._requests = requests

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily("qbproxy_cache_hit_ratio", HIT_RATIO_HELP, labels=["entity"])]

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("qbproxy_cache_hit_ratio", HIT_RATIO_HELP, labels=["entity"])
        for entity, ratio in sorted(hit_ratios(self._requests.collect()).items()):
            family.add_metric([entity], ratio)
        yield family


class AggregatedHitRatio:
    """The same gauge over another collector's samples (the workers' aggregate)."""

    def __init__(self, source: Collector) -> None:
        self._source = source

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily("qbproxy_cache_hit_ratio", HIT_RATIO_HELP, labels=["entity"])]

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("qbproxy_cache_hit_ratio", HIT_RATIO_HELP, labels=["entity"])
        for entity, ratio in sorted(hit_ratios(self._source.collect()).items()):
            family.add_metric([entity], ratio)
        yield family


def hit_ratios(families: Iterable[Metric]) -> dict[str, float]:
    """hit / (hit + miss + stale) per entity from the samples of qbproxy_requests."""
    hits: dict[str, float] = {}
    decided: dict[str, float] = {}
    for family in families:
        for sample in family.samples:
            if sample.name != "qbproxy_requests_total":
                continue
            cache = sample.labels.get("cache")
            entity = sample.labels.get("entity", "other")
            if cache in ("hit", "miss", "stale"):
                decided[entity] = decided.get(entity, 0.0) + sample.value
                hits[entity] = hits.get(entity, 0.0) + (sample.value if cache == "hit" else 0.0)
    return {entity: hits[entity] / n for entity, n in decided.items() if n > 0}
