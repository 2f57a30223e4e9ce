"""The cache policy over its decision space: freshness windows, the next action for a query
and for a read by id, and the write plan (qbproxy/core/policy.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from qbproxy.core import policy
from qbproxy.core.catalog import BILL, CUSTOMER, INVOICE, PREFERENCES, VENDOR
from qbproxy.core.deps import ALL
from qbproxy.core.policy import (
    Action,
    Fail,
    Fetch,
    LookUp,
    QueryFacts,
    ReadFacts,
    Refresh,
    Relay,
    RelayAnswer,
    ReportEntry,
    ReportFacts,
    ServeMemory,
    ServeRows,
    ServeStale,
    TableFacts,
    Windows,
)
from qbproxy.core.reports import CompanyDay

W = Windows.of(ttl=300, max_stale=3600, refresh_ahead=30)
FRESH = TableFacts(generation=4, complete_generation=4, age=10.0)
EXPIRED = TableFacts(generation=4, complete_generation=4, age=400.0)
ANCIENT = TableFacts(generation=4, complete_generation=4, age=4000.0)
PURGED = TableFacts(generation=5, complete_generation=4, age=10.0)
NEVER = TableFacts(generation=1, complete_generation=None, age=None)


@pytest.mark.parametrize(
    ("table", "fresh_for", "complete", "stale_ok"),
    [
        (FRESH, 290.0, True, True),
        (TableFacts(4, 4, 299.9), pytest.approx(0.1), True, True),
        (TableFacts(4, 4, 300.0), 0.0, False, True),
        (EXPIRED, -100.0, False, True),
        (ANCIENT, -3700.0, False, False),
        (PURGED, 0.0, False, False),  # a purge outranks every window
        (NEVER, 0.0, False, False),
        (None, 0.0, False, False),
    ],
)
def test_freshness_windows(
    table: TableFacts | None, fresh_for: float, complete: bool, stale_ok: bool
) -> None:
    assert policy.fresh_for(table, W) == fresh_for
    assert policy.complete(table, W) is complete
    assert policy.stale_servable(table, W) is stale_ok


@pytest.mark.parametrize(
    ("ahead", "ttl", "window"),
    [(30, 300, 30), (30, 20, 10), (0, 300, 0), (-5, 300, 0), (300, 300, 150)],
)
def test_the_refresh_ahead_window_is_at_most_half_the_ttl(
    ahead: float, ttl: float, window: float
) -> None:
    assert Windows.of(ttl, 3600, ahead).ahead == window


@pytest.mark.parametrize(
    ("table", "due"),
    [
        (TableFacts(4, 4, 269.0), False),  # 31 s left
        (TableFacts(4, 4, 270.0), True),  # 30 s left
        (TableFacts(4, 4, 299.5), True),
        (TableFacts(4, 4, 300.0), False),  # expired: the next request refreshes it
        (PURGED, False),  # a write purged it: its caller reads next
        (None, False),
    ],
)
def test_refresh_ahead_is_due_within_the_window_only(table: TableFacts | None, due: bool) -> None:
    assert policy.due_ahead(table, W) is due
    assert policy.due_ahead(table, Windows.of(300, 3600, 0)) is False  # off


@pytest.mark.parametrize(
    ("table", "margin", "needed"),
    [(FRESH, 0.0, False), (FRESH, 289.0, False), (FRESH, 290.0, True), (EXPIRED, 0.0, True)],
)
def test_a_refresh_is_needed_unless_fresh_for_the_margin(
    table: TableFacts, margin: float, needed: bool
) -> None:
    assert policy.needs_refresh(table, W, margin) is needed


@pytest.mark.parametrize(
    ("age", "stale", "ok"),
    [(10.0, False, True), (300.0, False, False), (300.0, True, True), (3600.0, True, False)],
)
def test_row_freshness(age: float, stale: bool, ok: bool) -> None:
    assert policy.row_fresh(age, W, stale=stale) is ok
    assert policy.row_fresh(None, W, stale=stale) is False


# Each row: the facts so far, and the one action the policy must answer with.
QUERY_CASES: list[tuple[str, QueryFacts, Action]] = [
    ("memory answers a trusted caller", QueryFacts(True, in_memory=True), ServeMemory()),
    ("memory never answers an untrusted one", QueryFacts(False, in_memory=True), LookUp()),
    ("nothing known yet: look the table up", QueryFacts(True), LookUp()),
    (
        "complete table, trusted: rows, remembered",
        QueryFacts(True, looked_up=True, table=FRESH),
        ServeRows("HIT", remember=True),
    ),
    (
        "complete table, untrusted: Intuit decides",
        QueryFacts(False, looked_up=True, table=FRESH),
        Relay(),
    ),
    ("expired: refresh", QueryFacts(True, looked_up=True, table=EXPIRED), Refresh()),
    ("purged: refresh", QueryFacts(True, looked_up=True, table=PURGED), Refresh()),
    ("never loaded: refresh", QueryFacts(True, looked_up=True, table=None), Refresh()),
    (
        "untrusted, incomplete: refresh (the load teaches trust)",
        QueryFacts(False, looked_up=True, table=NEVER),
        Refresh(),
    ),
    (
        "loaded, trusted: rows, a MISS, not remembered",
        QueryFacts(True, looked_up=True, table=NEVER, refreshed="loaded"),
        ServeRows("MISS"),
    ),
    (
        "loaded, but Intuit has not vouched for this caller",
        QueryFacts(False, looked_up=True, table=NEVER, refreshed="loaded"),
        Relay(),
    ),
    (
        "Intuit refused the load this caller led: relay its answer",
        QueryFacts(False, looked_up=True, table=NEVER, refreshed="refused", answered=True),
        RelayAnswer(),
    ),
    (
        "Intuit refused another caller's load: ask for this one",
        QueryFacts(True, looked_up=True, table=NEVER, refreshed="refused"),
        Relay(),
    ),
    (
        "a purge overtook the load: ask Intuit",
        QueryFacts(True, looked_up=True, table=NEVER, refreshed="discarded"),
        Relay(),
    ),
    (
        "Intuit failing: judge the table as it is now",
        QueryFacts(True, failure="timeout"),
        LookUp(),
    ),
    (
        "Intuit failing, table within the stale window",
        QueryFacts(True, looked_up=True, table=EXPIRED, failure="timeout"),
        ServeStale(),
    ),
    (
        "Intuit failing, table past the stale window",
        QueryFacts(True, looked_up=True, table=ANCIENT, failure="unavailable"),
        Fail(),
    ),
    (
        "Intuit failing, table purged by a write: never stale",
        QueryFacts(True, looked_up=True, table=PURGED, failure="5xx", answered=True),
        RelayAnswer(),
    ),
    (
        "Intuit failing, untrusted caller: never stale, never a lookup",
        QueryFacts(False, failure="throttled", answered=True),
        RelayAnswer(),
    ),
    ("Intuit failing, untrusted, no answer", QueryFacts(False, failure="timeout"), Fail()),
]


@pytest.mark.parametrize(("why", "facts", "action"), QUERY_CASES, ids=[c[0] for c in QUERY_CASES])
def test_decide_query(why: str, facts: QueryFacts, action: Action) -> None:
    assert policy.decide_query(facts, W) == action


READ_CASES: list[tuple[str, ReadFacts, Action]] = [
    ("untrusted: fetched, never cached", ReadFacts(False, in_memory=True), Fetch()),
    ("memory answers a trusted caller", ReadFacts(True, in_memory=True), ServeMemory()),
    ("nothing known yet: look the row up", ReadFacts(True), LookUp()),
    (
        "fresh row: a HIT, remembered",
        ReadFacts(True, looked_up=True, row_age=5.0),
        ServeRows("HIT", remember=True),
    ),
    ("no row: the realm's CDC", ReadFacts(True, looked_up=True), Refresh(incremental=True)),
    (
        "expired row: the realm's CDC",
        ReadFacts(True, looked_up=True, row_age=301.0),
        Refresh(incremental=True),
    ),
    ("CDC landed: look again", ReadFacts(True, refreshed="loaded"), LookUp()),
    (
        "CDC landed and the row is fresh: a MISS",
        ReadFacts(True, looked_up=True, row_age=0.5, refreshed="loaded"),
        ServeRows("MISS"),
    ),
    (
        "CDC landed, no such row: fetch it alone",
        ReadFacts(True, looked_up=True, refreshed="loaded"),
        Fetch(),
    ),
    ("CDC not possible: fetch it alone", ReadFacts(True, refreshed="not_possible"), Fetch()),
    ("CDC discarded: fetch it alone", ReadFacts(True, refreshed="discarded"), Fetch()),
    ("Intuit failing: judge the row as it is now", ReadFacts(True, failure="timeout"), LookUp()),
    (
        "Intuit failing, row within the stale window",
        ReadFacts(True, looked_up=True, row_age=1000.0, failure="timeout"),
        ServeStale(),
    ),
    (
        "Intuit failing, row past it, Intuit's answer in hand",
        ReadFacts(True, looked_up=True, row_age=4000.0, failure="5xx", answered=True),
        RelayAnswer(),
    ),
    (
        "Intuit failing, no row, no answer",
        ReadFacts(True, looked_up=True, failure="unavailable"),
        Fail(),
    ),
    ("Intuit failing, untrusted", ReadFacts(False, failure="timeout"), Fail()),
]


@pytest.mark.parametrize(("why", "facts", "action"), READ_CASES, ids=[c[0] for c in READ_CASES])
def test_decide_read(why: str, facts: ReadFacts, action: Action) -> None:
    assert policy.decide_read(facts, W) == action


@pytest.mark.parametrize(
    ("status", "failure"),
    [(200, None), (400, None), (401, None), (404, None), (429, "throttled"), (500, "5xx")],
)
def test_failure_of(status: int, failure: str | None) -> None:
    assert policy.failure_of(status) == failure


@pytest.mark.parametrize(
    ("segment", "operation", "is_json", "needed"),
    [
        ("customer", "create/update", True, True),  # create or update? and write-through
        ("customer", "create/update", False, False),  # not JSON: streamed on
        ("invoice", "update", True, True),  # node-quickbooks' ?operation=update
        ("invoice", "delete", True, False),
        ("creditmemo", "create/update", True, True),  # written through
        ("upload", "create/update", True, False),  # not cached, purges all either way
        ("payment", "create/update", True, True),
    ],
)
def test_which_write_bodies_are_read(
    segment: str, operation: str, is_json: bool, needed: bool
) -> None:
    assert policy.needs_body(segment, operation, is_json) is needed


@pytest.mark.parametrize(
    ("segment", "operation", "body", "tables", "through"),
    [
        ("customer", "create/update", {"DisplayName": "x"}, {CUSTOMER}, CUSTOMER),
        ("customer", "create/update", {"DisplayName": "x", "Balance": 5}, ALL, CUSTOMER),
        ("customer", "create/update", {"Id": "1", "sparse": True}, ALL, CUSTOMER),
        ("customer", "create/update", None, ALL, None),
        ("invoice", "create/update", {"Line": []}, ALL, INVOICE),
        ("invoice", "update", {"Id": "1"}, ALL, INVOICE),
        ("invoice", "void", None, ALL, None),
        ("invoice", "send", None, {INVOICE}, None),
        ("payment", "delete", None, ALL, None),
        ("vendor", "create/update", {"DisplayName": "v"}, {VENDOR}, VENDOR),
        ("bill", "create/update", {"Line": []}, ALL, BILL),
        ("preferences", "create/update", {"Id": "1", "sparse": True}, ALL, PREFERENCES),
        ("upload", "create/update", None, ALL, None),
    ],
)
def test_write_plans(
    segment: str,
    operation: str,
    body: dict[str, object] | None,
    tables: set[object],
    through: object,
) -> None:
    plan = policy.plan_write(segment, operation, body)
    assert plan.tables == tables
    assert plan.write_through is through


@pytest.mark.parametrize(
    ("status", "purge"), [(200, True), (400, True), (500, True), (401, False), (403, False)]
)
def test_a_write_purges_after_unless_intuit_refused_the_token(status: int, purge: bool) -> None:
    # Every write purges (the realm's reports at least, whatever its plan's tables).
    assert policy.purge_after(status) is purge


@pytest.mark.parametrize(
    ("status", "before", "after", "lands"),
    [
        (200, 4, 5, True),
        (200, 4, 6, False),  # another write purged in between: it may be newer
        (200, None, 5, False),  # no purge before (untrusted caller)
        (200, 4, None, False),  # the purge after failed
        (400, 4, 5, False),
    ],
)
def test_write_through_lands_only_between_its_own_two_purges(
    status: int, before: int | None, after: int | None, lands: bool
) -> None:
    assert policy.write_through_lands(status, before, after) is lands


# --- reports -------------------------------------------------------------------------------

PACIFIC = dt.timezone(dt.timedelta(hours=-8))
NOON = dt.datetime(2016, 3, 3, 12, 0, tzinfo=PACIFIC)
NEXT_DAY = dt.datetime(2016, 3, 4, 0, 5, tzinfo=PACIFIC)
TODAY = CompanyDay(dt.date(2016, 3, 3), -8 * 3600)
R_FRESH = ReportEntry(age=10.0, day=TODAY)
R_FIXED = ReportEntry(age=10.0, day=None)  # an absolute range: no day
R_EXPIRED = ReportEntry(age=400.0, day=TODAY)
R_ANCIENT = ReportEntry(age=4000.0, day=None)


def rf(trusted: bool = True, now: dt.datetime = NOON, **kw: object) -> ReportFacts:
    return ReportFacts(trusted, now, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("facts", "action"),
    [
        # First: look in Postgres (reports are never kept in memory).
        (rf(), LookUp()),
        (rf(trusted=False), LookUp()),
        # A fresh entry: served to a trusted caller, Intuit decides for anyone else.
        (rf(looked_up=True, entry=R_FRESH), ServeRows("HIT")),
        (rf(looked_up=True, entry=R_FIXED), ServeRows("HIT")),
        (rf(trusted=False, looked_up=True, entry=R_FRESH), Relay()),
        # Missing, expired, or computed on another company day: ask Intuit (once per key).
        (rf(looked_up=True), Refresh()),
        (rf(trusted=False, looked_up=True), Refresh()),
        (rf(looked_up=True, entry=R_EXPIRED), Refresh()),
        (rf(now=NEXT_DAY, looked_up=True, entry=R_FRESH), Refresh()),
        # An answer that does not depend on the day outlives midnight (within the TTL).
        (rf(now=NEXT_DAY, looked_up=True, entry=R_FIXED), ServeRows("HIT")),
        # This caller's own call was answered: relay it (Intuit's bytes, whatever status).
        (rf(looked_up=False, fetched="answered"), RelayAnswer()),
        (rf(trusted=False, fetched="answered", answered=True), RelayAnswer()),
        # Another request's call landed: look again and serve it as a MISS.
        (rf(fetched="landed"), LookUp()),
        (rf(looked_up=True, entry=R_FRESH, fetched="landed"), ServeRows("MISS")),
        (rf(trusted=False, looked_up=True, entry=R_FRESH, fetched="landed"), Relay()),
        (rf(looked_up=True, fetched="landed"), Relay()),  # purged since: ask for this caller
        # Another request's call did not land (not storable, over the size bound, purged).
        (rf(fetched="not_landed"), Relay()),
        # Intuit failing: stale within max_stale, never purged, never across the day.
        (rf(failure="timeout"), LookUp()),
        (rf(failure="timeout", looked_up=True, entry=R_EXPIRED), ServeStale()),
        (rf(failure="5xx", looked_up=True, entry=R_EXPIRED, answered=True), ServeStale()),
        (rf(failure="timeout", looked_up=True, entry=R_ANCIENT), Fail()),
        (rf(failure="timeout", looked_up=True), Fail()),  # purged: no candidate at all
        (rf(failure="5xx", looked_up=True, answered=True), RelayAnswer()),
        (
            rf(now=NEXT_DAY, failure="unavailable", looked_up=True, entry=R_EXPIRED),
            Fail(),
        ),
        (rf(trusted=False, failure="timeout"), Fail()),
        (rf(trusted=False, failure="throttled", answered=True), RelayAnswer()),
    ],
)
def test_decide_report(facts: ReportFacts, action: Action) -> None:
    assert policy.decide_report(facts, W) == action


@pytest.mark.parametrize(
    ("entry", "now", "stale", "servable"),
    [
        (R_FRESH, NOON, False, True),
        (ReportEntry(299.9, TODAY), NOON, False, True),
        (ReportEntry(300.0, TODAY), NOON, False, False),
        (R_EXPIRED, NOON, True, True),
        (ReportEntry(3600.0, None), NOON, True, False),
        (R_FRESH, NEXT_DAY, False, False),
        (R_FRESH, NEXT_DAY, True, False),
        (R_FIXED, NEXT_DAY, False, True),
        (None, NOON, True, False),
    ],
)
def test_report_windows(
    entry: ReportEntry | None, now: dt.datetime, stale: bool, servable: bool
) -> None:
    assert policy.report_servable(entry, now, W, stale=stale) is servable
