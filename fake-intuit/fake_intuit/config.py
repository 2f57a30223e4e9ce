"""The fake Intuit's settings and its company clock (times as Intuit writes them)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_REALMS = ("9130350000000001", "9130350000000002", "9130350000000003")


def default_tokens(realms: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """One deterministic bearer token per realm: `token-<realm>`."""
    return {realm: (f"token-{realm}",) for realm in realms}


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """Everything a test or the benchmark can choose when it starts a fake Intuit."""

    realms: tuple[str, ...] = DEFAULT_REALMS
    customers_per_realm: int = 30
    invoices_per_realm: int = 60
    payments_per_realm: int = 25
    seed: int = 1
    # Per-realm counts of the other entities (Vendor, Bill, Estimate, ...), merged over
    # seed_more.DEFAULT_COUNTS (a few to a dozen each); drawn from their own random stream.
    entity_counts: Mapping[str, int] = field(default_factory=dict, hash=False)
    # Added to every /v3 call (asyncio.sleep); settable later on `Sandbox.latency_ms`.
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    # Intuit's per-realm limits (qbo-api.md "Limits"); more gets the XML 429.
    max_concurrency_per_realm: int = 10
    max_requests_per_minute_per_realm: int = 500
    # realm -> accepted bearer tokens; None: `default_tokens(realms)`.
    tokens: dict[str, tuple[str, ...]] | None = field(default=None, hash=False)
    minor_version_floor: int = 75
    # The company's UTC offset; Intuit writes every time in it (qbo-api.md "Envelopes").
    utc_offset_minutes: int = -7 * 60
    # "Today" for seeding; None: the wall clock at start. Fix it for byte-stable data.
    anchor: dt.datetime | None = None
    cdc_max_lookback_days: int = 30
    call_log_size: int = 100_000  # Sandbox.calls keeps about this many; counts stay exact
    webhook_url: str | None = None
    verifier_token: str | None = None

    def __post_init__(self) -> None:
        if not self.realms:
            raise ValueError("realms must not be empty")
        for realm in self.realms:
            if not realm.isdigit():
                raise ValueError(f"realm ids are digit strings, got {realm!r}")
        if min(self.customers_per_realm, self.invoices_per_realm, self.payments_per_realm) < 0:
            raise ValueError("entity counts must be >= 0")
        if any(n < 0 for n in self.entity_counts.values()):
            raise ValueError("entity counts must be >= 0")
        from fake_intuit.seed_more import DEFAULT_COUNTS

        unknown = set(self.entity_counts) - set(DEFAULT_COUNTS)
        if unknown:
            raise ValueError(f"entity_counts: no such seeded entities {sorted(unknown)}")
        if self.invoices_per_realm and not self.customers_per_realm:
            raise ValueError("invoices need customers")

    def accepted_tokens(self) -> dict[str, tuple[str, ...]]:
        return dict(self.tokens) if self.tokens is not None else default_tokens(self.realms)


class CompanyClock:
    """Formats instants the way Intuit does, in the company's fixed UTC offset."""

    def __init__(self, utc_offset_minutes: int) -> None:
        self.tz = dt.timezone(dt.timedelta(minutes=utc_offset_minutes))

    def at(self, epoch: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(epoch, self.tz)

    def meta(self, epoch: float) -> str:
        """MetaData times: seconds, no milliseconds, with offset: 2024-05-01T10:20:30-07:00."""
        return self.at(epoch).replace(microsecond=0).isoformat()

    def body_time(self, epoch: float) -> str:
        """The envelope's "time": milliseconds and offset: 2024-05-01T10:20:30.123-07:00."""
        return self.at(epoch).isoformat(timespec="milliseconds")

    def date(self, epoch: float) -> str:
        return self.at(epoch).date().isoformat()

    def parse_instant(self, text: str) -> dt.datetime | None:
        """An ISO time; without an offset it is read in the company's offset, a bare date as
        its midnight. None when it does not parse."""
        try:
            value = dt.datetime.fromisoformat(text.strip())
        except ValueError:
            return None
        return value if value.tzinfo is not None else value.replace(tzinfo=self.tz)
