"""Database fixtures: one Postgres per session, a fresh database per test.

`$QBPROXY_TEST_DSN` names the server (CI); without it an embedded one starts in a temp dir.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import LiteralString
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from qbproxy.db.migrate import apply_migrations
from qbproxy.embedded_pg import EmbeddedPostgres


def with_database(dsn: str, name: str) -> str:
    """`dsn` pointing at database `name` on the same server."""
    return urlunsplit(urlsplit(dsn)._replace(path="/" + name))


def _admin(server_dsn: str, statement: LiteralString, *names: str) -> None:
    """Run `statement` in autocommit, its `{}` placeholders filled by quoted database names."""
    query = sql.SQL(statement).format(*map(sql.Identifier, names))
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(query)


def _fresh_database(server_dsn: str, template: str) -> Iterator[str]:
    name = f"qbproxy_t_{uuid.uuid4().hex[:12]}"
    _admin(server_dsn, "CREATE DATABASE {} TEMPLATE {}", name, template)
    yield with_database(server_dsn, name)
    # FORCE ends connections a failed test left open.
    _admin(server_dsn, "DROP DATABASE {} WITH (FORCE)", name)


@pytest.fixture(scope="session")
def pg_server_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test server's maintenance database; create databases on it, never tables."""
    if dsn := os.environ.get("QBPROXY_TEST_DSN"):
        yield dsn
        return
    with EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data") as dsn:
        yield dsn


@pytest.fixture(scope="session")
def pg_template(pg_server_dsn: str) -> Iterator[str]:
    """Name of a database migrated once per session, copied for each test."""
    name = f"qbproxy_tmpl_{uuid.uuid4().hex[:12]}"
    _admin(pg_server_dsn, "CREATE DATABASE {}", name)
    try:
        apply_migrations(with_database(pg_server_dsn, name))
        yield name
    finally:
        _admin(pg_server_dsn, "DROP DATABASE {} WITH (FORCE)", name)


@pytest.fixture
def pg_dsn(pg_server_dsn: str, pg_template: str) -> Iterator[str]:
    """A fresh, migrated database for this test, dropped after it."""
    yield from _fresh_database(pg_server_dsn, pg_template)


@pytest.fixture
def empty_pg_dsn(pg_server_dsn: str) -> Iterator[str]:
    """A fresh database without migrations (template0: nothing from template1 either)."""
    yield from _fresh_database(pg_server_dsn, "template0")
