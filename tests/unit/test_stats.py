"""`qbproxy stats` as a pure function of a scrape, and the hit-ratio gauge it agrees with."""

from __future__ import annotations

import math
import socket

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from qbproxy.config import AdminSettings
from qbproxy.errors import QBProxyError
from qbproxy.metrics import Metrics
from qbproxy.stats import default_admin_url, fetch, metrics_url, parse, quantile, report

INF = math.inf


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.5, [], None),
        (0.5, [(0.001, 0.0), (INF, 0.0)], None),
        # All in the first bucket: interpolated up from 0.
        (0.5, [(0.001, 10.0), (0.002, 10.0), (INF, 10.0)], 0.0005),
        (0.95, [(0.001, 10.0), (0.002, 10.0), (INF, 10.0)], 0.00095),
        # Half below 1 ms, half in (1 ms, 2 ms]: the median is the bucket edge.
        (0.5, [(0.001, 5.0), (0.002, 10.0), (INF, 10.0)], 0.001),
        (0.75, [(0.001, 5.0), (0.002, 10.0), (INF, 10.0)], 0.0015),
        # Ranks landing in +Inf give the highest finite bound, as histogram_quantile does.
        (0.95, [(0.001, 5.0), (0.002, 5.0), (INF, 10.0)], 0.002),
        # Unsorted input is sorted first.
        (0.75, [(INF, 10.0), (0.002, 10.0), (0.001, 5.0)], 0.0015),
    ],
)
def test_quantile_interpolates_like_prometheus(
    q: float, buckets: list[tuple[float, float]], expected: float | None
) -> None:
    result = quantile(q, buckets)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


def traffic() -> tuple[CollectorRegistry, Metrics]:
    """3 misses then 7 hits on Customer reads, 1 Invoice query miss, 2 bypassed writes."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    for _ in range(3):
        metrics.requests.labels("read", "Customer", "miss").inc()
        metrics.request_seconds.labels("miss").observe(0.040)
        metrics.upstream.labels("Customer", "2xx").inc()
    for _ in range(7):
        metrics.requests.labels("read", "Customer", "hit").inc()
        metrics.request_seconds.labels("hit").observe(0.0008)
        metrics.calls_saved.labels("Customer").inc()
    metrics.requests.labels("query", "Invoice", "miss").inc()
    metrics.request_seconds.labels("miss").observe(0.2)
    metrics.upstream.labels("Invoice", "2xx").inc()
    for status in ("2xx", "4xx"):
        metrics.requests.labels("write", "Invoice", "bypass").inc()
        metrics.request_seconds.labels("bypass").observe(0.3)
        metrics.upstream.labels("other", status).inc()
    metrics.throttled.labels("Invoice").inc(2)
    metrics.circuits.labels("open").set(1)
    return registry, metrics


def test_hit_ratio_gauge_is_hits_over_cache_decisions() -> None:
    registry, metrics = traffic()
    assert registry.get_sample_value("qbproxy_cache_hit_ratio", {"entity": "Customer"}) == 0.7
    # The Invoice bypasses (writes) are not cache decisions: one miss, no hit.
    assert registry.get_sample_value("qbproxy_cache_hit_ratio", {"entity": "Invoice"}) == 0.0
    assert registry.get_sample_value("qbproxy_cache_hit_ratio", {"entity": "other"}) is None
    metrics.requests.labels("query", "Invoice", "stale").inc()
    metrics.requests.labels("query", "Invoice", "hit").inc(2)
    assert registry.get_sample_value("qbproxy_cache_hit_ratio", {"entity": "Invoice"}) == 0.5


def test_a_bypass_only_entity_gets_no_ratio() -> None:
    registry = CollectorRegistry()
    Metrics(registry).requests.labels("other", "other", "bypass").inc()
    assert registry.get_sample_value("qbproxy_cache_hit_ratio", {"entity": "other"}) is None


def test_parse_reads_the_figures_of_a_scrape() -> None:
    registry, _ = traffic()
    stats = parse(generate_latest(registry).decode())
    customer = stats.entities["Customer"]
    assert customer.requests == {"miss": 3.0, "hit": 7.0}
    assert customer.hit_rate == registry.get_sample_value(
        "qbproxy_cache_hit_ratio", {"entity": "Customer"}
    )
    assert (customer.calls_saved, customer.upstream_calls) == (7.0, 3.0)
    assert (customer.rows_cached, customer.tables_complete) == (None, None)
    assert stats.entities["other"].upstream_calls == 2.0
    assert stats.upstream_by_status == {"2xx": 5.0, "4xx": 1.0}
    assert stats.totals["qbproxy_upstream_throttled_total"] == 2.0
    assert stats.totals["qbproxy_upstream_circuits_open"] == 1.0
    latency = {lat.result: lat for lat in stats.latency}
    assert list(latency) == ["hit", "miss", "bypass", "all"]
    assert latency["hit"].count == 7
    # 0.8 ms falls in the (0.5 ms, 1 ms] bucket: estimates stay inside it.
    assert latency["hit"].p50 is not None
    assert 0.0005 < latency["hit"].p50 <= 0.001
    assert latency["all"].count == 13


def test_report_is_a_table_a_person_reads() -> None:
    registry, _ = traffic()
    lines = report(generate_latest(registry).decode()).splitlines()
    assert [c.strip() for c in lines[0].split("  ") if c] == [
        "entity",
        "requests",
        "hit",
        "miss",
        "stale",
        "bypass",
        "hit rate",
        "calls saved",
        "upstream calls",
        "rows cached",
        "tables complete",
    ]
    assert lines[1].split() == ["Customer", "10", "7", "3", "0", "0", "70.0%", "7", "3", "-", "-"]
    assert lines[2].split() == ["Invoice", "3", "0", "1", "0", "2", "0.0%", "0", "1", "-", "-"]
    assert lines[3].split() == ["other", "0", "0", "0", "0", "0", "-", "0", "2", "-", "-"]
    assert lines[4].split() == ["all", "13", "7", "4", "0", "2", "63.6%", "7", "6"]
    text = "\n".join(lines)
    assert "calls saved: 7 of 13 requests answered without Intuit (53.8%)" in text
    assert "upstream calls made: 6 (2xx 5, 4xx 1)" in text
    assert "429s from Intuit 2" in text
    assert "open circuits 1" in text
    assert "hit rate = hit / (hit + miss + stale)" in text
    latency = {line.split()[0]: line.split()[1:] for line in lines if line.startswith("  ")}
    assert latency["hit"][0] == "7"
    # p50: 0.5 ms + 0.5 ms * 3.5/7; p95: 0.5 ms + 0.5 ms * 6.65/7.
    assert latency["hit"][1:] == ["0.75", "ms", "0.97", "ms"]
    # Three misses at 40 ms in (25 ms, 50 ms]: p50 = 25 ms + 25 ms * 2/3.
    assert latency["miss"][:3] == ["4", "41.7", "ms"]


def test_report_without_traffic_says_so() -> None:
    assert report(generate_latest(CollectorRegistry()).decode()) == "no /v3 traffic yet\n"


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", 9090, "http://127.0.0.1:9090"),
        ("0.0.0.0", 9191, "http://127.0.0.1:9191"),
        ("::", 9090, "http://[::1]:9090"),
        ("::1", 9090, "http://[::1]:9090"),
        ("admin.internal", 80, "http://admin.internal:80"),
    ],
)
def test_default_admin_url_is_reachable_from_this_machine(host: str, port: int, url: str) -> None:
    assert default_admin_url(AdminSettings(host=host, port=port)) == url


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("http://127.0.0.1:9090", "http://127.0.0.1:9090/metrics"),
        ("http://127.0.0.1:9090/", "http://127.0.0.1:9090/metrics"),
        ("http://127.0.0.1:9090/metrics", "http://127.0.0.1:9090/metrics"),
    ],
)
def test_metrics_url(given: str, url: str) -> None:
    assert metrics_url(given) == url


def test_fetch_refuses_other_schemes() -> None:
    with pytest.raises(QBProxyError, match="must be http"):
        fetch("file:///etc/passwd")


def test_fetch_names_an_unreachable_endpoint() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(QBProxyError, match=f"cannot reach the admin endpoint .*:{port}"):
        fetch(f"http://127.0.0.1:{port}/metrics", timeout=2)
