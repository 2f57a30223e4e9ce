"""Command line for the fake Intuit (`fake-intuit`, `python -m fake_intuit`)."""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

from fake_intuit.app import create_app
from fake_intuit.config import DEFAULT_REALMS, SandboxConfig


def _realms(text: str) -> tuple[str, ...]:
    """ "3" means three generated realms; otherwise a comma-separated list of realm ids."""
    if text.isdigit() and len(text) < 4:
        return tuple(f"91303500000{n:05d}" for n in range(1, int(text) + 1))
    return tuple(r.strip() for r in text.split(",") if r.strip())


def _counts(text: str) -> dict[str, int]:
    """ "Bill=50,Vendor=20" -> {"Bill": 50, "Vendor": 20}."""
    out = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, value = part.partition("=")
        out[name.strip()] = int(value)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fake-intuit", description="Run a fake Intuit QBO API.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8090)
    p.add_argument(
        "--realms",
        type=_realms,
        default=DEFAULT_REALMS,
        help="a count (e.g. 3) or comma-separated realm ids",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--latency-jitter-ms", type=float, default=0.0)
    p.add_argument("--customers", type=int, default=30, help="customers per realm")
    p.add_argument("--invoices", type=int, default=60, help="invoices per realm")
    p.add_argument("--payments", type=int, default=25, help="payments per realm")
    p.add_argument(
        "--entity-counts",
        type=_counts,
        default={},
        help="per realm, e.g. Bill=50,Vendor=20 (the other entities: seed_more.DEFAULT_COUNTS)",
    )
    p.add_argument("--max-concurrency", type=int, default=10, help="per realm, then 429")
    p.add_argument("--max-rpm", type=int, default=500, help="requests a minute per realm")
    p.add_argument("--webhook-url", default=None)
    p.add_argument("--verifier-token", default=None)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = SandboxConfig(
        realms=args.realms,
        seed=args.seed,
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.latency_jitter_ms,
        customers_per_realm=args.customers,
        invoices_per_realm=args.invoices,
        payments_per_realm=args.payments,
        entity_counts=args.entity_counts,
        max_concurrency_per_realm=args.max_concurrency,
        max_requests_per_minute_per_realm=args.max_rpm,
        webhook_url=args.webhook_url,
        verifier_token=args.verifier_token,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    log = logging.getLogger("fake_intuit")
    for realm in config.realms:
        log.info("realm %s accepts bearer token token-%s", realm, realm)
    web.run_app(create_app(config), host=args.host, port=args.port, print=None, access_log=None)
    return 0
