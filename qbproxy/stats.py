"""`qbproxy stats`: the admin endpoint's figures for a person.

`report(text)` is pure (Prometheus text in, a table out): hit rate per entity, calls
saved, p50/p95 latency estimated from the histogram buckets. `fetch` is the only I/O.
"""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from qbproxy.config import AdminSettings
from qbproxy.errors import QBProxyError
from qbproxy.metrics import hit_ratios

CACHE_RESULTS = ("hit", "miss", "stale", "bypass")
FETCH_TIMEOUT_SECONDS = 5.0


@dataclass(slots=True)
class EntityFigures:
    requests: dict[str, float] = field(default_factory=dict)  # cache result -> count
    hit_rate: float | None = None
    calls_saved: float = 0.0
    upstream_calls: float = 0.0
    rows_cached: float | None = None
    tables_complete: float | None = None


@dataclass(frozen=True, slots=True)
class Latency:
    result: str
    count: float
    p50: float | None
    p95: float | None


@dataclass(slots=True)
class Stats:
    entities: dict[str, EntityFigures] = field(default_factory=dict)
    latency: list[Latency] = field(default_factory=list)
    upstream_by_status: dict[str, float] = field(default_factory=dict)
    totals: dict[str, float] = field(default_factory=dict)  # single figures by metric name

    def entity(self, name: str) -> EntityFigures:
        return self.entities.setdefault(name, EntityFigures())


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus' histogram_quantile over cumulative (upper bound, count) buckets.

    Linear interpolation inside the bucket holding the rank; a rank in the +Inf bucket
    gives the highest finite bound. None when nothing was observed.
    """
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in ordered:
        if count >= rank:
            if math.isinf(upper):
                return lower
            if count == below:
                return upper
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


def parse(text: str) -> Stats:
    families = list(text_string_to_metric_families(text))
    stats = Stats()
    latency_buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for family in families:
        for sample in family.samples:
            labels = sample.labels
            entity = labels.get("entity", "other")
            match sample.name:
                case "qbproxy_requests_total":
                    figures = stats.entity(entity)
                    cache = labels.get("cache", "bypass")
                    figures.requests[cache] = figures.requests.get(cache, 0.0) + sample.value
                case "qbproxy_upstream_calls_saved_total":
                    stats.entity(entity).calls_saved += sample.value
                case "qbproxy_upstream_requests_total":
                    stats.entity(entity).upstream_calls += sample.value
                    status = labels.get("status", "error")
                    stats.upstream_by_status[status] = (
                        stats.upstream_by_status.get(status, 0.0) + sample.value
                    )
                case "qbproxy_cache_rows":
                    stats.entity(entity).rows_cached = sample.value
                case "qbproxy_cache_tables_complete":
                    stats.entity(entity).tables_complete = sample.value
                case "qbproxy_request_duration_seconds_bucket":
                    le = float(labels["le"])
                    latency_buckets[labels.get("cache", "bypass")][le] += sample.value
                    latency_buckets["all"][le] += sample.value
                case (
                    "qbproxy_stale_serves_total"
                    | "qbproxy_upstream_throttled_total"
                    | "qbproxy_upstream_throttle_avoided_total"
                    | "qbproxy_store_errors_total"
                    | "qbproxy_upstream_circuits"
                ):
                    key: str = sample.name
                    if key == "qbproxy_upstream_circuits":
                        key = f"{key}_{labels.get('state', '')}"
                    stats.totals[key] = stats.totals.get(key, 0.0) + sample.value
    for entity, ratio in hit_ratios(families).items():
        stats.entity(entity).hit_rate = ratio
    for result in (*CACHE_RESULTS, "all"):
        if result in latency_buckets:
            buckets = sorted(latency_buckets[result].items())
            stats.latency.append(
                Latency(result, buckets[-1][1], quantile(0.5, buckets), quantile(0.95, buckets))
            )
    return stats


def render(stats: Stats) -> str:
    if not stats.entities:
        return "no /v3 traffic yet\n"
    names = sorted(stats.entities, key=lambda n: (n == "other", n))
    rows = [
        [
            "entity",
            "requests",
            *CACHE_RESULTS,
            "hit rate",
            "calls saved",
            "upstream calls",
            "rows cached",
            "tables complete",
        ]
    ]
    for name in names:
        e = stats.entities[name]
        rows.append(
            [
                name,
                _int(sum(e.requests.values())),
                *(_int(e.requests.get(r, 0.0)) for r in CACHE_RESULTS),
                _percent(e.hit_rate),
                _int(e.calls_saved),
                _int(e.upstream_calls),
                "-" if e.rows_cached is None else _int(e.rows_cached),
                "-" if e.tables_complete is None else _int(e.tables_complete),
            ]
        )
    every = stats.entities.values()
    requests = sum(sum(e.requests.values()) for e in every)
    saved = sum(e.calls_saved for e in every)
    hits = sum(e.requests.get("hit", 0.0) for e in every)
    decided = sum(e.requests.get(r, 0.0) for e in every for r in ("hit", "miss", "stale"))
    rows.append(
        [
            "all",
            _int(requests),
            *(_int(sum(e.requests.get(r, 0.0) for e in every)) for r in CACHE_RESULTS),
            _percent(hits / decided if decided else None),
            _int(saved),
            _int(sum(e.upstream_calls for e in every)),
            "",
            "",
        ]
    )
    lines = [*_table(rows), ""]
    lines.append(
        "hit rate = hit / (hit + miss + stale); bypass (writes, forwarded queries) excluded"
    )
    upstream = sum(stats.upstream_by_status.values())
    by_status = ", ".join(
        f"{status} {_int(n)}" for status, n in sorted(stats.upstream_by_status.items())
    )
    lines.append(
        f"calls saved: {_int(saved)} of {_int(requests)} requests answered without Intuit "
        f"({_percent(saved / requests if requests else None)}); "
        f"upstream calls made: {_int(upstream)}" + (f" ({by_status})" if by_status else "")
    )
    t = stats.totals
    lines.append(
        f"stale serves {_int(t.get('qbproxy_stale_serves_total', 0.0))}, "
        f"429s from Intuit {_int(t.get('qbproxy_upstream_throttled_total', 0.0))}, "
        f"429s avoided {_int(t.get('qbproxy_upstream_throttle_avoided_total', 0.0))}, "
        f"open circuits {_int(t.get('qbproxy_upstream_circuits_open', 0.0))}, "
        f"store errors {_int(t.get('qbproxy_store_errors_total', 0.0))}"
    )
    if stats.latency:
        lines.append("")
        latency_rows = [["latency (estimated from buckets)", "count", "p50", "p95"]]
        latency_rows.extend(
            [f"  {lat.result}", _int(lat.count), _duration(lat.p50), _duration(lat.p95)]
            for lat in stats.latency
        )
        lines.extend(_table(latency_rows))
    return "\n".join(lines) + "\n"


def report(text: str) -> str:
    """The figures of one /metrics scrape, as a person reads them."""
    return render(parse(text))


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def _int(value: float) -> str:
    return str(round(value))


def _percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio * 100:.1f}%"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 0.01:
        return f"{seconds * 1000:.2f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


# --- the I/O: one GET of the running proxy's admin /metrics --------------------------


def default_admin_url(admin: AdminSettings) -> str:
    """The admin listener as seen from this machine (a wildcard bind answers on loopback)."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(admin.host, admin.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{admin.port}"


def metrics_url(admin_url: str) -> str:
    base = admin_url.rstrip("/")
    return base if base.endswith("/metrics") else f"{base}/metrics"


def fetch(url: str, timeout: float = FETCH_TIMEOUT_SECONDS) -> str:
    if not url.startswith(("http://", "https://")):
        raise QBProxyError(f"admin URL must be http(s)://, got {url!r}")
    request = urllib.request.Request(url, headers={"Accept": "text/plain"})  # noqa: S310 (scheme checked above)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked above)
            body: bytes = response.read()
    except urllib.error.HTTPError as exc:
        raise QBProxyError(f"{url} answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise QBProxyError(f"cannot reach the admin endpoint {url}: {reason}") from None
    return body.decode("utf-8")


def run(admin_url: str) -> int:
    url = metrics_url(admin_url)
    text = fetch(url)
    print(f"qbproxy stats from {url}\n")
    print(report(text), end="")
    return 0
