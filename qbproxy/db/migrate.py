"""Schema migrations: yoyo applies the SQL files of `migrations/` (package data in a wheel).

Synchronous (yoyo speaks DB-API through psycopg 3); run it before the asyncpg pool opens.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import yoyo
import yoyo.exceptions
from yoyo.connections import BadConnectionURI

from qbproxy.errors import ConfigError, StoreUnavailable

log = logging.getLogger("qbproxy.db")

# Generous: a second process starting at the same time waits while the first applies.
LOCK_TIMEOUT_SECONDS = 60


def migrations_dir() -> Path:
    """The SQL files: `qbproxy/migrations/` in an installed wheel (setup.cfg maps the
    repository's top-level `migrations/` there), else that top-level folder itself (a
    source checkout or an editable install)."""
    package = Path(__file__).resolve().parent.parent  # qbproxy/
    for path in (package / "migrations", package.parent / "migrations"):
        if path.is_dir():
            return path
    raise ConfigError(f"no migrations found beside {package}; reinstall qbproxy")


def yoyo_uri(dsn: str) -> str:
    """The asyncpg/libpq URL as yoyo names it: the same URL with the psycopg 3 scheme."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigError("database.dsn must be a postgresql:// URL")
    return urlunsplit(parts._replace(scheme="postgresql+psycopg"))


def pending_migrations(dsn: str, directory: Path | None = None) -> list[str]:
    """Ids of the migrations not yet applied to the database at `dsn`, in apply order."""
    migrations = _read_migrations(directory)
    with _backend(dsn) as backend:
        return [m.id for m in backend.to_apply(migrations)]


def apply_migrations(dsn: str, directory: Path | None = None) -> list[str]:
    """Apply pending migrations (of `directory`, default the shipped ones) and return their
    ids; [] when the schema is current."""
    migrations = _read_migrations(directory)
    # yoyo's lock is a row in yoyo_lock: a second process starting at once waits for it, and
    # reads what is applied only then, so it finds nothing left to do.
    with _backend(dsn) as backend, backend.lock(timeout=LOCK_TIMEOUT_SECONDS):
        pending = backend.to_apply(migrations)
        ids = [m.id for m in pending]
        if ids:
            log.info("applying migrations %s", ", ".join(ids))
            backend.apply_migrations(pending)
    return ids


def _read_migrations(directory: Path | None) -> Any:
    return yoyo.read_migrations(str(directory or migrations_dir()))


@contextmanager
def _backend(dsn: str) -> Iterator[Any]:
    """A yoyo backend for `dsn`, its connection closed after; library errors as StoreUnavailable."""
    uri = yoyo_uri(dsn)
    try:
        backend = yoyo.get_backend(uri)
    except (psycopg.Error, BadConnectionURI, ValueError) as exc:
        raise StoreUnavailable(f"cannot connect to Postgres to migrate: {exc}") from exc
    try:
        with backend:
            yield backend
    except yoyo.exceptions.LockTimeout as exc:
        raise StoreUnavailable(
            f"migrations stay locked by another process ({exc}); if none is running, "
            "remove the stale lock with `DELETE FROM yoyo_lock`"
        ) from exc
    except psycopg.Error as exc:
        raise StoreUnavailable(f"migrating failed: {exc}") from exc
