"""Command line: `qbproxy serve | migrate | purge | stats`. Parsing only, no logic."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from qbproxy import log as qlog
from qbproxy.config import Settings, load_config
from qbproxy.core.catalog import ENTITIES
from qbproxy.core.routing import is_realm
from qbproxy.errors import ConfigError, QBProxyError

DEFAULT_CONFIG = "proxy.toml"


def _realm(text: str) -> str:
    if not is_realm(text):
        raise argparse.ArgumentTypeError(f"not a realm id (ASCII digits, at most 32): {text!r}")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="qbproxy", description="Read-through caching proxy for the QuickBooks Online API."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the proxy and its admin listener")
    migrate = commands.add_parser("migrate", help="apply pending database migrations")
    purge = commands.add_parser("purge", help="drop a realm's cached tables and reports")
    purge.add_argument("--realm", required=True, type=_realm, help="realm (company) id")
    purge.add_argument(
        "--entity",
        choices=[e.name for e in ENTITIES],
        help="one table (default: every cached table)",
    )
    stats = commands.add_parser(
        "stats", help="hit rate, calls saved and latency of a running proxy"
    )
    stats.add_argument(
        "--admin-url",
        help="the proxy's admin listener (default: http://<admin.host>:<admin.port> from config)",
    )
    for command in (serve, migrate, purge, stats):
        command.add_argument(
            "--config",
            help=f"TOML config file (default: ./{DEFAULT_CONFIG} if present); "
            "QBPROXY_<SECTION>_<KEY> variables override it",
        )
    args = parser.parse_args(argv)
    try:
        settings = _settings(args.config)
    except ConfigError as exc:
        print(f"qbproxy: {exc}", file=sys.stderr)
        return 2
    qlog.setup(settings.log.level)
    try:
        if args.command == "serve":
            return _serve(settings)
        if args.command == "migrate":
            return _migrate(settings)
        if args.command == "purge":
            return asyncio.run(_purge(settings, args.realm, args.entity))
        if args.command == "stats":
            from qbproxy.stats import default_admin_url, run

            return run(args.admin_url or default_admin_url(settings.admin))
    except QBProxyError as exc:
        logging.getLogger("qbproxy").error("%s", exc)
        return 1
    raise AssertionError(args.command)  # pragma: no cover


def _serve(settings: Settings) -> int:
    from qbproxy import workers

    with workers.metrics_dir_for(settings) as metrics_dir, contextlib.suppress(KeyboardInterrupt):
        # Imported only now: prometheus_client picks its multiprocess mode at import.
        if metrics_dir is None:
            from qbproxy.app import serve

            asyncio.run(serve(settings))
        else:
            asyncio.run(workers.serve_parent(settings, metrics_dir))
    return 0


def _settings(path: str | None) -> Settings:
    if path is None:
        default = Path(DEFAULT_CONFIG)
        text = default.read_text() if default.is_file() else ""
    else:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    return load_config(text, os.environ)


@contextlib.contextmanager
def _database(settings: Settings) -> Iterator[str]:
    """The configured DSN, or the embedded Postgres started for the command's duration."""
    if settings.database.dsn:
        yield settings.database.dsn
        return
    from qbproxy.embedded_pg import EmbeddedPostgres

    with EmbeddedPostgres(Path(settings.database.data_dir)) as dsn:
        yield dsn


def _migrate(settings: Settings) -> int:
    from qbproxy.db.migrate import apply_migrations

    with _database(settings) as dsn:
        applied = apply_migrations(dsn)
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
    return 0


async def _purge(settings: Settings, realm: str, entity_name: str | None) -> int:
    """The one purge path (qbproxy/sync/purge.py), as writes and webhooks use it: running
    instances drop the tables from memory too, and this waits for their acknowledgement.
    Every purge takes the realm's reports with it."""
    import uuid

    from qbproxy.db.pool import Pool
    from qbproxy.db.tables import Tables
    from qbproxy.sync.purge import Purger

    entities = [e for e in ENTITIES if entity_name in (None, e.name)]
    pool = Pool(min_size=1, max_size=1, timeout=settings.database.statement_timeout_seconds)
    with _database(settings) as dsn:
        await pool.open(dsn)
        try:
            purger = Purger(Tables(pool), pool, f"cli:{uuid.uuid4().hex}")
            purged = await purger.purge(realm, entities, "cli")
        finally:
            await pool.close()
    if purged is None:
        print(f"qbproxy: purge for realm {realm} failed: Postgres unavailable", file=sys.stderr)
        return 1
    print(f"purged {', '.join(e.name for e in entities)} and the reports for realm {realm}")
    return 0
