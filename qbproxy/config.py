"""Settings: proxy.toml plus QBPROXY_<SECTION>_<KEY> environment overrides (pure).

`load_config(toml_text, environ)` does no I/O; it turns both into one frozen, typed object
and refuses unknown keys and bad values at start-up, naming the key.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from qbproxy.errors import ConfigError

INTUIT_PRODUCTION = "https://quickbooks.api.intuit.com"


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    # Worker processes sharing the port (SO_REUSEPORT); 0 means one per CPU.
    workers: int = 1
    # Largest request body the proxy accepts (forwarded or inspected), bytes.
    max_body_bytes: int = 10 * 1024 * 1024
    # Largest query text answered or forwarded, characters.
    max_query_chars: int = 100_000
    # Largest single request header line, bytes (aiohttp's parser limit).
    max_header_bytes: int = 16_384
    # Concurrent client connections per worker; more get a QBO-shaped 503. A request
    # counts once its body's first 64 KiB (or all of it) arrived: slow senders hold none.
    max_connections: int = 1_000
    # A connection that has not sent a whole request head this long after it opened (or
    # after its last answer: the keep-alive idle time too) is closed.
    header_timeout_seconds: float = 30.0
    # A request body not received this long after its head gets a 408 Fault and the
    # connection is closed.
    body_timeout_seconds: float = 10.0
    # Seconds in-flight requests get to finish on SIGTERM (aiohttp may take up to twice
    # this to cancel stragglers; 4 s keeps that inside Docker's 10 s stop grace period).
    shutdown_timeout_seconds: float = 4.0

    def validate(self) -> None:
        _port("server.port", self.port)
        _at_least("server.workers", self.workers, 0)
        _positive("server.max_body_bytes", self.max_body_bytes)
        _positive("server.max_query_chars", self.max_query_chars)
        _positive("server.max_header_bytes", self.max_header_bytes)
        _positive("server.max_connections", self.max_connections)
        _positive("server.header_timeout_seconds", self.header_timeout_seconds)
        _positive("server.body_timeout_seconds", self.body_timeout_seconds)
        _at_least("server.shutdown_timeout_seconds", self.shutdown_timeout_seconds, 0)


@dataclass(frozen=True, slots=True)
class AdminSettings:
    # Loopback by default: metrics and health are for operators, not the internet.
    host: str = "127.0.0.1"
    port: int = 9090

    def validate(self) -> None:
        _port("admin.port", self.port)


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    base_url: str = INTUIT_PRODUCTION
    # Whole upstream call; Intuit itself gives up after 120 s (qbo-api.md, Limits).
    timeout_seconds: float = 60.0
    connect_timeout_seconds: float = 10.0
    # Intuit allows 10 concurrent requests and 500 a minute per realm (qbo-api.md, Limits).
    max_concurrency_per_realm: int = 10
    max_requests_per_minute_per_realm: int = 500
    # Starts a minute the proxy leaves unused under that limit (Intuit's clock and the
    # proxy's differ by a round trip; other apps may share the realm).
    requests_per_minute_margin: int = 10
    # Callers Intuit has not vouched for (no token, or one not yet accepted for the realm)
    # share this much of the realm's budget, only what no trusted caller waits for; more
    # get the proxy's 429. Their failures never open the circuit.
    untrusted_concurrency_per_realm: int = 3
    untrusted_requests_per_minute_per_realm: int = 100
    # Longest a request waits for those limits; a longer expected wait gets the proxy's
    # own 429 with Retry-After. 0: never queue.
    max_queue_seconds: float = 10.0
    # Consecutive failures of Intuit (timeouts, connection errors, 5xx) that open a realm's
    # circuit; it stays open (failing fast) circuit_first_open_seconds before one probe may
    # go to Intuit, twice as long after each failed probe, at most circuit_open_seconds
    # (so a trusted request succeeds within seconds of Intuit's recovery).
    circuit_failures: int = 5
    circuit_first_open_seconds: float = 1.0
    circuit_open_seconds: float = 4.0
    # minorversion the proxy asks for when it loads tables itself (75 is Intuit's floor).
    minor_version: int = 75
    # Connections kept to Intuit across all realms.
    pool_size: int = 100

    def validate(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"upstream.base_url must be an http(s) URL, got {self.base_url!r}")
        _positive("upstream.timeout_seconds", self.timeout_seconds)
        _positive("upstream.connect_timeout_seconds", self.connect_timeout_seconds)
        _positive("upstream.max_concurrency_per_realm", self.max_concurrency_per_realm)
        _positive(
            "upstream.max_requests_per_minute_per_realm", self.max_requests_per_minute_per_realm
        )
        _at_least("upstream.requests_per_minute_margin", self.requests_per_minute_margin, 0)
        if self.requests_per_minute_margin >= self.max_requests_per_minute_per_realm:
            raise ConfigError(
                "upstream.requests_per_minute_margin must be below "
                "upstream.max_requests_per_minute_per_realm, got "
                f"{self.requests_per_minute_margin} >= {self.max_requests_per_minute_per_realm}"
            )
        _positive("upstream.untrusted_concurrency_per_realm", self.untrusted_concurrency_per_realm)
        _positive(
            "upstream.untrusted_requests_per_minute_per_realm",
            self.untrusted_requests_per_minute_per_realm,
        )
        _at_least("upstream.max_queue_seconds", self.max_queue_seconds, 0)
        _positive("upstream.circuit_failures", self.circuit_failures)
        _positive("upstream.circuit_first_open_seconds", self.circuit_first_open_seconds)
        _at_least(
            "upstream.circuit_open_seconds",
            self.circuit_open_seconds,
            self.circuit_first_open_seconds,
        )
        _at_least("upstream.minor_version", self.minor_version, 1)
        _positive("upstream.pool_size", self.pool_size)


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    # Empty: start a private Postgres kept under data_dir.
    dsn: str = field(default="", repr=False)
    data_dir: str = ".qbproxy-data/pg"
    pool_min_size: int = 1
    pool_max_size: int = 10
    # A cache lookup slower than this is abandoned and the request forwarded.
    statement_timeout_seconds: float = 2.0

    def validate(self) -> None:
        if self.dsn and urlsplit(self.dsn).scheme not in ("postgres", "postgresql"):
            raise ConfigError("database.dsn must be a postgresql:// URL")
        _positive("database.pool_min_size", self.pool_min_size)
        if self.pool_max_size < self.pool_min_size:
            raise ConfigError(
                "database.pool_max_size must be >= database.pool_min_size, "
                f"got {self.pool_max_size} < {self.pool_min_size}"
            )
        _positive("database.statement_timeout_seconds", self.statement_timeout_seconds)

    def __repr__(self) -> str:
        return (
            f"DatabaseSettings(dsn={redact_dsn(self.dsn)!r}, data_dir={self.data_dir!r}, "
            f"pool_min_size={self.pool_min_size}, pool_max_size={self.pool_max_size}, "
            f"statement_timeout_seconds={self.statement_timeout_seconds})"
        )


@dataclass(frozen=True, slots=True)
class CacheSettings:
    ttl_seconds: float = 300.0
    # Intuit failing: rows up to this old are served, marked X-Cache: STALE.
    max_stale_seconds: float = 3600.0
    # How long a bearer token Intuit accepted for a realm may be answered from cache.
    token_trust_seconds: float = 300.0
    # Prebuilt answers kept in each worker's memory (LISTEN/NOTIFY keeps them honest); 0: off.
    memory_bytes: int = 64 * 1024 * 1024
    # A report answer larger than this is relayed and not stored.
    report_max_bytes: int = 4 * 1024 * 1024

    def validate(self) -> None:
        _positive("cache.ttl_seconds", self.ttl_seconds)
        _at_least("cache.max_stale_seconds", self.max_stale_seconds, 0)
        _at_least("cache.token_trust_seconds", self.token_trust_seconds, 0)
        _at_least("cache.memory_bytes", self.memory_bytes, 0)
        _at_least("cache.report_max_bytes", self.report_max_bytes, 0)


@dataclass(frozen=True, slots=True)
class SyncSettings:
    cdc: bool = True
    refresh_ahead_seconds: float = 30.0
    safety_margin_seconds: float = 60.0

    def validate(self) -> None:
        _at_least("sync.refresh_ahead_seconds", self.refresh_ahead_seconds, 0)
        _at_least("sync.safety_margin_seconds", self.safety_margin_seconds, 0)


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    path: str = "/webhooks/intuit"
    # Empty: webhooks are off and the path answers 404.
    verifier_token: str = field(default="", repr=False)

    def validate(self) -> None:
        if not self.path.startswith("/") or self.path.startswith("/v3/"):
            raise ConfigError(
                f"webhooks.path must start with '/' and not be under /v3/, got {self.path!r}"
            )


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: str = "INFO"

    def validate(self) -> None:
        if self.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(f"log.level must be a logging level name, got {self.level!r}")


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    upstream: UpstreamSettings = field(default_factory=UpstreamSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    log: LogSettings = field(default_factory=LogSettings)


ENV_PREFIX = "QBPROXY_"
_SECTIONS: dict[str, type[Any]] = {
    f.name: typing.get_type_hints(Settings)[f.name] for f in dataclasses.fields(Settings)
}
# Variables with the prefix that are not config keys (test harness, tools).
_ENV_NOT_KEYS = frozenset({"QBPROXY_TEST_DSN"})


def load_config(toml_text: str, environ: Mapping[str, str]) -> Settings:
    """Settings from TOML text overlaid with QBPROXY_* variables; ConfigError names the key."""
    try:
        doc = tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file is not valid TOML: {exc}") from None
    raw: dict[str, dict[str, Any]] = {}
    for section, values in doc.items():
        if section not in _SECTIONS:
            raise ConfigError(f"unknown config section [{section}]")
        if not isinstance(values, dict):
            raise ConfigError(f"[{section}] must be a table")
        raw[section] = dict(values)
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _ENV_NOT_KEYS:
            continue
        section, key = _env_key(name)
        raw.setdefault(section, {})[key] = _EnvText(text)
    sections = {name: _build(name, cls, raw.get(name, {})) for name, cls in _SECTIONS.items()}
    settings = Settings(**sections)
    for name in _SECTIONS:
        getattr(settings, name).validate()
    return settings


class _EnvText(str):
    """A value that came from the environment as text, to be converted to the field's type."""


def _env_key(name: str) -> tuple[str, str]:
    rest = name[len(ENV_PREFIX) :].lower()
    # Section names contain no underscore, so the first one splits section from key.
    section, _, key = rest.partition("_")
    if section not in _SECTIONS or not key:
        raise ConfigError(f"{name} does not name a config key (QBPROXY_<SECTION>_<KEY>)")
    return section, key


def _build(section: str, cls: type[Any], values: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown config key {section}.{key}")
        kwargs[key] = _coerce(f"{section}.{key}", hints[key], value)
    return cls(**kwargs)


def _coerce(key: str, type_: Any, value: Any) -> Any:
    from_env = isinstance(value, _EnvText)
    if type_ is bool:
        if from_env:
            lowered = value.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
        elif isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if type_ is int:
        if from_env:
            try:
                return int(value.strip())
            except ValueError:
                pass
        elif isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if type_ is float:
        if from_env:
            try:
                return float(value.strip())
            except ValueError:
                pass
        elif isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key} must be a number, got {value!r}")
    if type_ is str:
        if isinstance(value, str):
            return str(value)
        raise ConfigError(f"{key} must be a string, got {value!r}")
    raise AssertionError(f"no conversion for {key}: {type_!r}")  # pragma: no cover


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced, for logs and reprs."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _positive(key: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{key} must be > 0, got {value!r}")


def _at_least(key: str, value: float, floor: float) -> None:
    if value < floor:
        raise ConfigError(f"{key} must be >= {floor}, got {value!r}")


def _port(key: str, value: int) -> None:
    if not 0 <= value <= 65535:
        raise ConfigError(f"{key} must be a TCP port (0-65535), got {value!r}")
