"""The benchmark's chat-trace generator and file, and the pure parts of its reports."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from bench import trace as tr
from bench.contenders import cache_class
from bench.hitpath import parse_wrk, wrk_script
from bench.nginx import config as nginx_config
from bench.replay import Exchange, Replay, docs_of
from bench.report import stale_reads

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
