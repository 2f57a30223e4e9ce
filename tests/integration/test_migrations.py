"""Migrations apply to an empty database once, safely from two threads at once, and create
cache tables whose columns match qbproxy.core.catalog."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import psycopg
import pytest

from qbproxy.core.catalog import ENTITIES, ColumnType
from qbproxy.db import migrate
from qbproxy.db.migrate import apply_migrations, migrations_dir, pending_migrations
from qbproxy.errors import ConfigError, StoreUnavailable

PG_TYPES: dict[ColumnType, str] = {
    "text": "text",
    "ref": "text",
    "bool": "boolean",
    "money": "numeric",
    "date": "date",
    "timestamp": "timestamp with time zone",
    "id": "bigint",
}
# Columns every cache table has beside the entity's fields (see the migration).
BOOKKEEPING = {
    "realm_id": "text",
    "gen": "bigint",
    "cached_at": "timestamp with time zone",
    "doc": "text",
}


async def _columns(dsn: str, table: str) -> dict[str, str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = $1",
            table,
        )
    finally:
        await conn.close()
    return {r["column_name"]: r["data_type"] for r in rows}


# Every migration file in the repository, in order (rollbacks are not migrations).
ALL_MIGRATIONS = sorted(
    p.stem
    for p in (Path(__file__).resolve().parents[2] / "migrations").glob("*.sql")
    if not p.stem.endswith(".rollback")
)


def test_migrations_apply_to_an_empty_database_once(empty_pg_dsn: str) -> None:
    pending = pending_migrations(empty_pg_dsn)
    assert pending == ALL_MIGRATIONS
    assert pending[0] == "0001_cache_tables"

    assert apply_migrations(empty_pg_dsn) == pending
    assert pending_migrations(empty_pg_dsn) == []
    assert apply_migrations(empty_pg_dsn) == []


async def test_cache_tables_match_schema(pg_dsn: str) -> None:
    assert await _columns(pg_dsn, "qbo_table_state")
    for entity in ENTITIES:
        columns = await _columns(pg_dsn, entity.table)
        expected = BOOKKEEPING | {f.column: PG_TYPES[f.type] for f in entity.fields}
        assert columns == expected, entity.name


def test_concurrent_apply_runs_each_migration_once(empty_pg_dsn: str) -> None:
    start = threading.Barrier(2)

    def apply() -> list[str]:
        start.wait()
        return apply_migrations(empty_pg_dsn)

    with ThreadPoolExecutor(2) as pool:
        results = [f.result() for f in [pool.submit(apply), pool.submit(apply)]]

    assert sorted(results) == [[], ALL_MIGRATIONS]
    with psycopg.connect(empty_pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM yoyo_lock").fetchone() == (0,)


def test_migrations_of_another_directory(empty_pg_dsn: str, tmp_path: Path) -> None:
    (tmp_path / "0001_probe.sql").write_text("CREATE TABLE probe (id bigint);\n")

    assert apply_migrations(empty_pg_dsn, tmp_path) == ["0001_probe"]


def test_the_shipped_migrations_are_found_without_any_variable() -> None:
    found = migrations_dir()

    assert sorted(p.stem for p in found.glob("0*.sql") if ".rollback" not in p.name) == (
        ALL_MIGRATIONS
    )


def test_missing_migrations_dir_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrate, "__file__", str(tmp_path / "qbproxy" / "db" / "migrate.py"))

    with pytest.raises(ConfigError, match="no migrations found"):
        apply_migrations("postgresql://postgres@127.0.0.1:1/postgres")


def test_failing_migration_is_store_unavailable_and_applies_nothing(
    empty_pg_dsn: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_broken.sql").write_text("CREATE TABLE half (id bigint);\nNOT SQL;\n")

    with pytest.raises(StoreUnavailable, match="migrating failed"):
        apply_migrations(empty_pg_dsn, tmp_path)
    assert pending_migrations(empty_pg_dsn, tmp_path) == ["0001_broken"]


def test_unreachable_server_is_store_unavailable() -> None:
    with pytest.raises(StoreUnavailable, match="cannot connect"):
        apply_migrations("postgresql://postgres@127.0.0.1:1/postgres")


def test_non_postgres_dsn_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="postgresql://"):
        pending_migrations("mysql://root@localhost/db")
