"""The Grafana dashboard and Prometheus example in deploy/ stay in step with the metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from qbproxy.config import AdminSettings
from qbproxy.db.cache_stats import CacheState
from qbproxy.metrics import Metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "gauge": ("",),
}


def exported_names() -> set[str]:
    """Every sample name /metrics can carry, whether or not a series exists yet."""
    registry = CollectorRegistry()
    Metrics(registry)
    families = [*registry.collect(), *CacheState({}, {}).families()]
    return {f.name + suffix for f in families for suffix in SUFFIXES[f.type]}


def dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DEPLOY / "grafana" / "qbproxy.json").read_text())
    return doc


def test_every_metric_the_dashboard_queries_is_exported() -> None:
    exported = exported_names()
    queried = set()
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            queried |= set(re.findall(r"\bqbproxy_[a-z0-9_]+", target["expr"]))
    assert queried
    assert queried - exported == set()


def test_dashboard_shows_what_operators_asked_for() -> None:
    exprs = " ".join(t["expr"] for p in dashboard()["panels"] for t in p.get("targets", []))
    for name in (
        "qbproxy_requests_total",
        "qbproxy_cache_hit_ratio",
        "qbproxy_upstream_calls_saved_total",
        "qbproxy_request_duration_seconds_bucket",
        "qbproxy_upstream_requests_total",
        "qbproxy_upstream_throttled_total",
        "qbproxy_upstream_throttle_avoided_total",
        "qbproxy_stale_serves_total",
        "qbproxy_fills_total",
        "qbproxy_refresh_ahead_total",
        "qbproxy_purges_total",
        "qbproxy_cache_rows",
        "qbproxy_cache_tables_complete",
    ):
        assert name in exprs, name
    assert "histogram_quantile(0.99, sum by (le, cache)" in exprs


def test_dashboard_is_importable() -> None:
    doc = dashboard()
    assert doc["uid"] == "qbproxy"
    assert isinstance(doc["schemaVersion"], int)
    variables = {v["name"] for v in doc["templating"]["list"]}
    assert variables == {"datasource", "job", "instance"}
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for panel in doc["panels"]:
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        for target in panel.get("targets", []):
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert 'job=~"$job", instance=~"$instance"' in target["expr"]


def test_prometheus_example_scrapes_the_default_admin_listener() -> None:
    text = (DEPLOY / "prometheus.yml").read_text()
    assert "metrics_path: /metrics" in text
    admin = AdminSettings()
    assert f"- {admin.host}:{admin.port}" in text
    assert "\t" not in text
