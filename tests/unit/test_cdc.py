"""qbproxy.core.cdc: which tables CDC may refresh and from when, and CDC answers read into
upserts and deletes, or a reason to reload whole."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from typing import Any
from urllib.parse import parse_qs

import orjson
import pytest

from qbproxy.core.catalog import CUSTOMER, ENTITIES, INVOICE, PAYMENT
from qbproxy.core.cdc import (
    CAP,
    Changes,
    Reload,
    SyncState,
    answer_time,
    cdc_query,
    changed_since,
    format_since,
    parse_answer,
)

UTC = dt.UTC
NOW = dt.datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
DAY = dt.timedelta(days=1)
TIME = "2026-05-01T05:00:00.250-07:00"  # 12:00:00.250 UTC


def state(
    synced_ago: dt.timedelta | None, reloaded_ago: dt.timedelta | None = DAY / 2
) -> SyncState:
    return SyncState(
        "Invoice",
        None if synced_ago is None else NOW - synced_ago,
        None if reloaded_ago is None else NOW - reloaded_ago,
    )


def since(s: SyncState) -> dt.datetime | None:
    return changed_since(s, NOW, margin_seconds=60, full_reload_seconds=86_400)


# --- when CDC may refresh a table ----------------------------------------------------------


def test_recently_synced_table_asks_from_last_sync_minus_margin() -> None:
    assert since(state(dt.timedelta(minutes=5))) == NOW - dt.timedelta(minutes=6)


@pytest.mark.parametrize(
    ("s", "why"),
    [
        (state(None), "never synced (first load, or loaded before the migration)"),
        (state(dt.timedelta(minutes=5), None), "never loaded whole"),
        (state(dt.timedelta(minutes=5), DAY * 1.01), "last whole load over a day ago"),
        (state(30 * DAY), "past Intuit's 30 days"),
        (state(30 * DAY - dt.timedelta(seconds=90)), "within the margin of the 30 days"),
    ],
)
def test_reload_whole_when(s: SyncState, why: str) -> None:
    assert since(s) is None, why


def test_within_the_window_with_the_margin_to_spare() -> None:
    assert since(state(30 * DAY - dt.timedelta(seconds=180))) is not None


def test_since_is_iso_with_offset_rounded_down() -> None:
    local = dt.datetime(2026, 5, 1, 5, 0, 7, 999_000, tzinfo=dt.timezone(dt.timedelta(hours=-7)))
    assert format_since(local) == "2026-05-01T12:00:07+00:00"


def test_query_names_the_entities_the_time_and_the_minor_version() -> None:
    query = parse_qs(cdc_query(ENTITIES[:3], NOW, 75))
    assert query == {
        "entities": ["Customer,Invoice,Payment"],
        "changedSince": ["2026-05-01T12:00:00+00:00"],
        "minorversion": ["75"],
    }


# --- reading answers -------------------------------------------------------------------------


def customer(id_: str, **extra: Any) -> dict[str, Any]:
    return {
        "Id": id_,
        "DisplayName": f"C{id_}",
        "Active": True,
        "Balance": 10,
        "MetaData": {"LastUpdatedTime": "2026-05-01T04:59:00-07:00"},
        **extra,
    }


def invoice(id_: str) -> dict[str, Any]:
    return {"Id": id_, "CustomerRef": {"value": "1"}, "Balance": 5, "TotalAmt": 5}


def tombstone(id_: str) -> dict[str, Any]:
    return {
        "domain": "QBO",
        "status": "Deleted",
        "Id": id_,
        "MetaData": {"LastUpdatedTime": "2026-05-01T04:59:30-07:00"},
    }


def answer(*lists: dict[str, Any], time: str | None = TIME) -> bytes:
    doc: dict[str, Any] = {"CDCResponse": [{"QueryResponse": list(lists)}]}
    if time is not None:
        doc["time"] = time
    return orjson.dumps(doc)


def test_changes_deletes_and_intuits_time() -> None:
    body = answer(
        {"Invoice": [invoice("7"), tombstone("8")], "startPosition": 1, "maxResults": 2},
        {"Customer": [customer("1"), customer("2", Active=False)]},
        {},
    )
    parsed = parse_answer(body, [CUSTOMER, INVOICE, PAYMENT])
    assert isinstance(parsed, Changes)
    assert parsed.synced_at == dt.datetime(2026, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    assert parsed.count == 4
    invoices, customers, payments = (parsed.tables[n] for n in ("Invoice", "Customer", "Payment"))
    assert [orjson.loads(doc)["Id"] for doc, _ in invoices.rows] == ["7"]
    assert invoices.deleted_ids == (8,)
    # An inactive customer is upserted (SELECT * FROM Customer hides it), never deleted.
    assert [values[0] for _, values in customers.rows] == [1, 2]
    assert customers.deleted_ids == ()
    assert (payments.rows, payments.deleted_ids) == ((), ())


def test_rows_carry_the_document_as_intuit_sent_it() -> None:
    doc = customer("3")
    parsed = parse_answer(answer({"Customer": [doc]}), [CUSTOMER])
    assert isinstance(parsed, Changes)
    ((text, values),) = parsed.tables["Customer"].rows
    assert orjson.loads(text) == doc
    assert values[0] == 3


def test_the_last_word_on_an_id_wins() -> None:
    parsed = parse_answer(answer({"Invoice": [invoice("7"), tombstone("7")]}), [INVOICE])
    assert isinstance(parsed, Changes)
    assert (parsed.tables["Invoice"].rows, parsed.tables["Invoice"].deleted_ids) == ((), (7,))


def test_entities_not_asked_for_are_ignored() -> None:
    parsed = parse_answer(answer({"Invoice": [invoice("7")]}, {"Vendor": [{}]}), [CUSTOMER])
    assert isinstance(parsed, Changes)
    assert parsed.count == 0


def test_an_answer_at_the_cap_reloads() -> None:
    full = answer({"Invoice": [invoice(str(i)) for i in range(1, CAP + 1)]})
    assert parse_answer(full, [INVOICE]) == Reload("capped", f"{CAP} objects")


def test_the_cap_counts_the_whole_answer() -> None:
    # Whether Intuit's 1,000 is per list or per answer is not settled: reload either way.
    half = CAP // 2
    body = answer(
        {"Invoice": [invoice(str(i)) for i in range(1, half + 1)]},
        {"Customer": [customer(str(i)) for i in range(1, half + 1)]},
    )
    parsed = parse_answer(body, [CUSTOMER, INVOICE])
    assert isinstance(parsed, Reload)
    assert parsed.reason == "capped"


def test_just_under_the_cap_is_applied() -> None:
    body = answer({"Invoice": [invoice(str(i)) for i in range(1, CAP)]})
    parsed = parse_answer(body, [INVOICE])
    assert isinstance(parsed, Changes)
    assert parsed.count == CAP - 1


# Each of these must reload whole: a change read wrongly would be served for a TTL and more.
UNREADABLE: list[tuple[bytes, str]] = [
    (b"", "empty body"),
    (b"{not json", "not JSON"),
    (b"[]", "not an object"),
    (answer({"Invoice": []}, time=None), "no time"),
    (answer({"Invoice": []}, time="yesterday"), "time that does not parse"),
    (answer({"Invoice": []}, time="2026-05-01T05:00:00"), "time without an offset"),
    (orjson.dumps({"time": TIME}), "no CDCResponse"),
    (orjson.dumps({"CDCResponse": [], "time": TIME}), "empty CDCResponse"),
    (orjson.dumps({"CDCResponse": {}, "time": TIME}), "CDCResponse not a list"),
    (orjson.dumps({"CDCResponse": [{}], "time": TIME}), "no QueryResponse"),
    (orjson.dumps({"CDCResponse": [{"QueryResponse": {}}], "time": TIME}), "not a list"),
    (orjson.dumps({"CDCResponse": [{"QueryResponse": [1]}], "time": TIME}), "item not object"),
    (answer({"Invoice": {"Id": "1"}}), "entity list is an object"),
    (answer({"Invoice": ["1"]}), "entity list of strings"),
    (answer({"Invoice": [{"Balance": 1}]}), "entity without an Id"),
    (answer({"Invoice": [{"Id": 7}]}), "Id not a string"),
    (answer({"Invoice": [{"Id": "x7"}]}), "Id not digits"),
    (answer({"Invoice": [{"status": "Deleted"}]}), "tombstone without an Id"),
    (
        orjson.dumps(
            {"Fault": {"Error": [{"Message": "m", "code": "6000"}], "type": "ValidationFault"}}
            | {"time": TIME}
        ),
        "a Fault with status 200",
    ),
]


@pytest.mark.parametrize(("body", "why"), UNREADABLE, ids=[why for _, why in UNREADABLE])
def test_unreadable_answers_reload(body: bytes, why: str) -> None:
    parsed = parse_answer(body, [CUSTOMER, INVOICE, PAYMENT])
    assert isinstance(parsed, Reload), why
    assert parsed.reason == "unreadable"


def test_answer_time_reads_the_envelope() -> None:
    assert answer_time({"time": TIME}) == dt.datetime(2026, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    assert answer_time({"time": 5}) is None
    assert answer_time(["time"]) is None


def test_core_imports_no_io_libraries() -> None:
    code = (
        "import sys, qbproxy.core.cdc\n"
        "io = {'asyncio', 'aiohttp', 'asyncpg', 'prometheus_client', 'socket'}\n"
        "bad = io & set(sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
