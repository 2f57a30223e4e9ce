"""The benchmark's chat-trace generator and file, and the pure parts of its reports."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fake_intuit import Sandbox, SandboxConfig
from fake_intuit.catalog import NAMES as CATALOG
from fake_intuit.journal import report as journal_report
from fake_intuit.routes import answer_query
from yarl import URL

from bench import trace as tr
from bench.assistant import ENTITIES, REPORTS
from bench.assistant import generate as generate_assistant
from bench.contenders import cache_class
from bench.hitpath import parse_wrk, wrk_script
from bench.nginx import config as nginx_config
from bench.replay import Exchange, Replay, docs_of, report_digest
from bench.report import stale_reads
from bench.staleness import stale_reports

SMALL = tr.TraceParams(
    realms=3,
    sessions=12,
    seed=7,
    customers_per_realm=25,
    invoices_per_realm=50,
    payments_per_realm=20,
)


@pytest.fixture(scope="module")
def trace() -> tr.Trace:
    return tr.generate(SMALL)


def test_same_seed_same_trace_byte_for_byte(trace: tr.Trace) -> None:
    assert tr.to_json(tr.generate(SMALL)) == tr.to_json(trace)


def test_another_seed_another_trace(trace: tr.Trace) -> None:
    other = tr.generate(_seed(8))
    assert tr.to_json(other) != tr.to_json(trace)


def _seed(seed: int) -> tr.TraceParams:
    return tr.TraceParams(
        realms=SMALL.realms,
        sessions=SMALL.sessions,
        seed=seed,
        customers_per_realm=SMALL.customers_per_realm,
        invoices_per_realm=SMALL.invoices_per_realm,
        payments_per_realm=SMALL.payments_per_realm,
    )


def test_save_and_load_round_trip(trace: tr.Trace, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "trace.json"
    tr.save(trace, path)
    loaded = tr.load(path)
    assert loaded == trace
    assert tr.to_json(loaded) == path.read_bytes()


def test_load_refuses_other_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a qbproxy-bench-chat-trace"):
        tr.from_json(b'{"format": "something else"}')
    with pytest.raises(ValueError, match="version"):
        tr.from_json(b'{"format": "qbproxy-bench-chat-trace", "version": 99}')


@pytest.mark.parametrize("share", [0.0, 0.1, 0.25, 1.0])
def test_write_share_is_the_share_of_questions_that_write(share: float) -> None:
    params = tr.TraceParams(
        realms=2,
        sessions=10,
        seed=3,
        write_share=share,
        customers_per_realm=20,
        invoices_per_realm=40,
        payments_per_realm=10,
    )
    trace = tr.generate(params)
    questions = list(trace.questions())
    writing = [q for q in questions if q.writes]
    assert len(writing) == round(share * len(questions))
    for q in writing:  # a write question writes once, then looks at what it changed
        ops = [c.op for c in q.steps[0]]
        assert len(ops) == 1
        assert ops[0] in tr.WRITE_OPS
        assert all(c.op in ("query", "read") for step in q.steps[1:] for c in step)


def test_sessions_look_like_chat(trace: tr.Trace) -> None:
    assert {s.realm for s in trace.sessions} == set(trace.company.realms)
    for session in trace.sessions:
        times = [q.at for q in session.questions]
        assert 8 <= len(times) <= 12
        assert times == sorted(times)
        assert times[-1] - times[0] <= SMALL.session_seconds + 1e-6
        assert 0 <= times[0] <= SMALL.window_seconds
        for call in (c for q in session.questions for step in q.steps for c in step):
            assert call.path.startswith(f"/v3/company/{session.realm}/")


def test_queries_come_in_the_shapes_real_apps_send(trace: tr.Trace) -> None:
    queries = [c for c in trace.calls() if c.op == "query"]
    methods = Counter(c.method for c in queries)
    assert methods["GET"]
    assert methods["POST"]
    minors = set()
    for call in trace.calls():
        params = parse_qs(urlsplit(call.path).query)
        minors.update(params.get("minorversion", ["(none)"]))
        if call.op == "query" and call.method == "GET":
            assert params["query"][0].lower().startswith("select")
            assert call.body is None
        if call.op == "query" and call.method == "POST":
            assert call.body is not None
            assert call.body.lower().startswith("select")
    assert len(minors) >= 2
    texts = " ".join((c.body or urlsplit(c.path).query) for c in queries)
    for needle in ("Customer", "Invoice", "Payment", "TxnDate", "Balance", "CustomerRef"):
        assert needle.lower() in texts.lower()
    reads = [c for c in trace.calls() if c.op == "read"]
    assert {c.entity for c in reads} >= {"Customer", "Invoice"}


def test_trace_params_are_checked() -> None:
    with pytest.raises(ValueError, match="write share"):
        tr.TraceParams(write_share=1.5)
    with pytest.raises(ValueError, match=">= 1"):
        tr.TraceParams(sessions=0)


# -- reports -------------------------------------------------------------------------------------
def _ex(
    kind: str, start: int, end: int, docs: list[tuple[str, str, str]] | None = None
) -> Exchange:
    return Exchange(0, 0, "1", kind, kind, "GET", 200, "", start, end, docs=docs or [])


def test_stale_read_is_older_than_a_write_completed_before_the_read_began() -> None:
    history: dict[tuple[str, str, str], list[tuple[int, str | None]]] = {
        ("1", "Customer", "5"): [(10, "0"), (205, "1")],  # written at 205 by the write below
        ("1", "Customer", "6"): [(10, "3")],  # never written
    }
    exchanges = [
        _ex("write", 200, 300),
        _ex("read", 250, 260, [("Customer", "5", "0")]),  # began before the write completed
        _ex("read", 310, 320, [("Customer", "5", "0"), ("Customer", "6", "3")]),  # stale
        _ex("read", 330, 340, [("Customer", "5", "1")]),  # fresh
    ]
    n, docs, checked, examples = stale_reads(Replay(exchanges, [], 100, 400), history)
    assert (n, docs, checked) == (1, 1, 4)
    assert examples[0].expected == "1"
    assert examples[0].returned == "0"


def test_docs_of_reads_query_answers_and_entity_reads() -> None:
    query = {"QueryResponse": {"Invoice": [{"Id": "1", "SyncToken": "2"}], "maxResults": 1}}
    read = {"Customer": {"Id": "9", "SyncToken": "0"}, "time": "x"}
    assert docs_of(query) == [("Invoice", "1", "2")]
    assert docs_of(read) == [("Customer", "9", "0")]
    assert docs_of({"QueryResponse": {"totalCount": 3}}) == []


def test_cache_classes() -> None:
    assert cache_class("direct", None) == "miss"
    assert cache_class("qbproxy", "HIT") == "hit"
    assert cache_class("qbproxy", "BYPASS") == "bypass"
    assert cache_class("nginx", "EXPIRED") == "miss"
    assert cache_class("nginx", None) == "bypass"


def test_nginx_config_is_url_and_body_keyed() -> None:
    conf = nginx_config(workdir=Path("nginx-prefix"), port=1, upstream_port=2, valid_seconds=300)
    for line in (
        "proxy_cache_methods GET HEAD POST;",
        'proxy_cache_key "$request_method$request_uri$request_body";',
        "proxy_cache_valid 200 300s;",
        "proxy_ignore_headers Cache-Control Expires Set-Cookie;",
        "add_header X-Cache-Status $upstream_cache_status always;",
        "listen 127.0.0.1:1",
        "server 127.0.0.1:2;",
    ):
        assert line in conf


def test_wrk_output_is_parsed() -> None:
    output = """Running 5s test @ http://127.0.0.1:1/x
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   640.12us  200.00us   5.00ms   90.00%
  Latency Distribution
     50%  600.00us
     75%  700.00us
     90%  800.00us
     99%    1.50ms
  88000 requests in 5.00s, 4.00GB read
  Non-2xx or 3xx responses: 3
Requests/sec:  17600.00
Transfer/sec:    800.00MB
"""
    load = parse_wrk(output)
    assert load.rps == 17600.0
    assert load.requests == 88000
    assert load.non_2xx == 3
    assert load.p50_ms == pytest.approx(0.6)
    assert load.p99_ms == pytest.approx(1.5)
    script = wrk_script(["/a", "/b"], {"Authorization": "Bearer t"})
    assert 'wrk.headers["Authorization"] = "Bearer t"' in script
    assert '"/a", "/b"' in script


# -- the assistant trace -------------------------------------------------------------------------
ASSISTANT = tr.TraceParams(
    realms=3,
    sessions=12,
    seed=7,
    customers_per_realm=25,
    invoices_per_realm=50,
    payments_per_realm=20,
)
# What each write changes, written down apart from the generator (qbo-api.md "Entities" and
# design.md's dependency examples): the trace must read each of these after the write.
WRITE_CHANGES = {
    "create_bill": {"Bill", "Vendor", "Account", "report"},
    "pay_bill": {"BillPayment", "Bill", "Vendor", "Account", "report"},
    "create_invoice": {"Invoice", "Customer", "report"},
    "receive_payment": {"Payment", "Invoice", "Customer", "report"},
    "create_vendor": {"Vendor"},
    "update_vendor": {"Vendor"},
    "create_item": {"Item"},
    "create_journal_entry": {"JournalEntry", "Account", "report"},
    "create_purchase": {"Purchase", "Account", "report"},
    "create_sales_receipt": {"SalesReceipt", "Item", "Account", "report"},
    "create_estimate": {"Estimate"},
    "create_credit_memo": {"CreditMemo", "Customer", "report"},
    "update_customer": {"Customer"},
    "create_transfer": {"Transfer", "Account", "report"},
    "create_vendor_credit": {"VendorCredit", "Vendor", "report"},
    "create_purchase_order": {"PurchaseOrder"},
    "create_time_activity": {"TimeActivity"},
}


@pytest.fixture(scope="module")
def assistant() -> tr.Trace:
    return generate_assistant(ASSISTANT)


def _entity_of(call: tr.Call) -> str | None:
    """The entity a read or query looks at, by its canonical name."""
    if call.op == "read":
        return call.entity
    text = call.body or parse_qs(urlsplit(call.path).query)["query"][0]
    word = text.replace(",", " ").split()
    name = word[[w.lower() for w in word].index("from") + 1]
    return next(e for e in CATALOG if e.lower() == name.lower())


def test_assistant_trace_is_seeded(assistant: tr.Trace) -> None:
    assert tr.to_json(generate_assistant(ASSISTANT)) == tr.to_json(assistant)
    other = generate_assistant(dataclasses.replace(ASSISTANT, seed=8))
    assert tr.to_json(other) != tr.to_json(assistant)
    assert assistant.kind == "assistant"
    assert tr.to_json(assistant).count(b"qbproxy-bench-assistant-trace") == 1


def test_assistant_trace_round_trips(assistant: tr.Trace, tmp_path: Path) -> None:
    path = tmp_path / "assistant.json"
    tr.save(assistant, path)
    assert tr.load(path) == assistant


def test_assistant_trace_covers_every_entity_and_report(assistant: tr.Trace) -> None:
    reads = [c for c in assistant.calls() if c.op in ("read", "query")]
    assert {_entity_of(c) for c in reads} >= set(ENTITIES) | {"CompanyInfo", "Preferences"}
    assert len(ENTITIES) == 27
    reports = {c.entity for c in assistant.calls() if c.op == "report"}
    assert reports == set(REPORTS)
    assert len(REPORTS) == 12


@pytest.mark.parametrize("share", [0.0, 0.1, 0.3])
def test_assistant_mix(share: float) -> None:
    trace = generate_assistant(dataclasses.replace(ASSISTANT, write_share=share))
    questions = list(trace.questions())
    assert sum(q.writes for q in questions) == round(share * len(questions))
    ops = Counter(c.op for c in trace.calls())
    reads = ops["read"] + ops["query"] + ops["report"]
    assert 0.15 < ops["report"] / reads < 0.5
    assert ops["read"] / reads > 0.15
    assert ops["query"] / reads > 0.25
    assert {s.app for s in trace.sessions} == {"mcp-assistant", "connector"}


def test_assistant_sends_what_node_quickbooks_and_connectors_send(assistant: tr.Trace) -> None:
    paths = [c.path for c in assistant.calls()]
    node = [p for p in paths if "format=json" in p]
    assert any(
        "query=select%20*%20from%20vendor%20startposition%201%20maxresults%201000&" in p
        for p in node
    )
    assert any("query=select%20count(*)%20from%20bill%20startposition%201" in p for p in node)
    assert any("%20where%20VendorRef%20%3D%20%27" in p for p in node)
    assert any("/companyinfo/" in p for p in node)
    assert any(p.split("?")[0].endswith("/preferences") for p in node)
    report_paths = [c.path for c in assistant.calls() if c.op == "report"]
    for param in ("date_macro", "start_date", "accounting_method", "summarize_column_by"):
        assert any(f"{param}=" in p for p in report_paths), param
    assert any("days_per_aging_period=30" in p for p in report_paths)
    assert any("&&minorversion=" in p for p in report_paths)  # node's reportCriteria
    texts = [parse_qs(urlsplit(p).query).get("query", [""])[0] for p in paths]
    assert any(
        t.startswith("SELECT Id, DisplayName FROM Vendor STARTPOSITION 1 MAXRESULTS 100")
        for t in texts
    )
    assert any(c.body and c.body.startswith("SELECT *, Sku FROM Item") for c in assistant.calls())


def test_every_assistant_write_is_followed_by_reads_of_what_it_changes() -> None:
    trace = generate_assistant(dataclasses.replace(ASSISTANT, sessions=30, write_share=0.4))
    seen = set()
    for q in (q for q in trace.questions() if q.writes):
        assert len(q.steps[0]) == 1
        assert q.steps[0][0].op in tr.WRITE_OPS
        write = q.steps[0][0]
        later = [c for step in q.steps[1:] for c in step]
        assert all(c.op in tr.READ_OPS for c in later)
        looked_at = {_entity_of(c) for c in later if c.op != "report"}
        if any(c.op == "report" for c in later):
            looked_at.add("report")
        assert WRITE_CHANGES[q.intent] <= looked_at, q.intent
        # the document itself: by the Id the write made, or the one it updated
        assert any(
            c.op == "read" and c.entity == write.entity and c.id in (tr.CREATED, write.id)
            for c in later
        ), q.intent
        seen.add(q.intent)
    assert len(seen) >= 12


def test_every_assistant_request_is_answered_by_the_fake(assistant: tr.Trace) -> None:
    """Queries parse and run, reads find their document, reports compute, on the data the
    trace was drawn from (writes are checked against the fake in the smoke test)."""
    sandbox = Sandbox(assistant.company.sandbox_config())
    for session in assistant.sessions:
        for call in (c for q in session.questions for s in q.steps for c in s):
            url = URL(call.path, encoded=True)
            if call.op == "query":
                text = call.body or url.query["query"]
                answer_query(sandbox, session.realm, text)
            elif call.op == "read" and call.id not in (None, tr.CREATED, session.realm):
                assert call.entity is not None
                assert sandbox.get(session.realm, call.entity, call.id) is not None, call.path
            elif call.op == "report":
                body = journal_report(
                    sandbox.realms[session.realm],
                    url.name,
                    list(url.query.items()),
                    dt.date(2025, 6, 2),
                )
                assert body["Header"]["ReportName"] == url.name


# -- report staleness ----------------------------------------------------------------------------
def _bill(vendor: str, amount: float) -> dict[str, Any]:
    line = {
        "Amount": amount,
        "DetailType": "AccountBasedExpenseLineDetail",
        "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "17"}},
    }
    return {"VendorRef": {"value": vendor}, "TxnDate": "2025-06-02", "Line": [line]}


def test_journal_rebuilds_the_state_reports_are_computed_from() -> None:
    sandbox = Sandbox(SandboxConfig(realms=("1",), seed=3))
    journal = sandbox.start_journal()
    vendor = next(v["Id"] for v in sandbox.entities("1", "Vendor") if v["Active"])
    params = [("report_date", "2025-06-02")]
    day = dt.date(2025, 6, 2)
    before = journal_report(sandbox.realms["1"], "AgedPayables", params, day)
    for amount in (100.0, 250.5):
        sandbox.write("1", "Bill", "create", _bill(vendor, amount))
    current = sandbox.get("1", "Vendor", vendor)
    assert current is not None
    update = {"Id": vendor, "SyncToken": current["SyncToken"], "sparse": True, "Notes": "x"}
    sandbox.write("1", "Vendor", "update", update)
    live = journal_report(sandbox.realms["1"], "AgedPayables", params, day)
    states = {
        v: journal_report(state, "AgedPayables", params, day) for v, state in journal.states("1")
    }
    assert sorted(states) == [0, 1, 2, 3]
    assert states[0] == before
    assert states[3] == live
    assert states[1] != states[0]
    assert states[2] != states[1]
    assert (
        sandbox.realms["1"].docs["Bill"]
        == next(s for v, s in journal.states("1") if v == 3).docs["Bill"]
    )


def test_report_checker_tells_fresh_stale_and_unmatched_apart() -> None:
    sandbox = Sandbox(SandboxConfig(realms=("1",), seed=3))
    journal = sandbox.start_journal()
    vendor = next(v["Id"] for v in sandbox.entities("1", "Vendor") if v["Active"])
    path = "/v3/company/1/reports/AgedPayables?report_date=2025-06-02&&minorversion=75&format=json"
    day = dt.date(2025, 6, 2)

    def digest() -> str:
        return report_digest(
            journal_report(
                sandbox.realms["1"], "AgedPayables", [("report_date", "2025-06-02")], day
            )
        )

    old = digest()
    start = time.monotonic_ns()
    sandbox.write("1", "Bill", "create", _bill(vendor, 500.0))
    written = time.monotonic_ns()
    new = digest()

    def report_read(begin: int, end: int, answer: str) -> Exchange:
        return Exchange(
            0, 0, "1", "report", "report", "GET", 200, "HIT", begin, end, path=path, digest=answer
        )

    exchanges = [
        Exchange(0, 0, "1", "write", "write", "POST", 200, "", start, written + 10),
        report_read(start + 1, written + 5, old),  # began before the write completed: fine
        report_read(written + 20, written + 30, new),  # fresh
        report_read(written + 40, written + 50, old),  # stale: lacks the completed write
        report_read(written + 60, written + 70, "0" * 64),  # no state ever said this
    ]
    replay = Replay(exchanges, [], start - 1, written + 100)
    check = stale_reports(replay, journal, lambda _ns: day)
    assert (check.checked, check.stale, check.unmatched) == (4, 1, 1)
    assert [e["verdict"] for e in check.examples] == ["stale", "unmatched"]
