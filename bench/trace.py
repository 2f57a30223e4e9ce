"""Chat traffic: a seeded generator of what AI context builders send to QBO, and its JSON file.

A trace is a list of chat *sessions*, each bound to one realm (company) and one client app
(a query style: GET `?query=` or POST `application/text`, URL encoding, keyword case, page
size, `minorversion`). A session asks about ten *questions* within five minutes; each
question is a list of *steps* run one after another, the calls of a step concurrently, as a
context builder gathers them. A share of questions write (create an invoice, receive a
payment, sparse-update a customer) and then look at what they changed.

Everything is drawn from one `random.Random(seed)` and from the fake Intuit seeded with the
same seed, so one seed gives the same trace, byte for byte, on any machine and day: the
company data is anchored to a fixed date (`ANCHOR`) written into the trace.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, quote_plus

import orjson
from fake_intuit import Sandbox, SandboxConfig

FORMAT = "qbproxy-bench-chat-trace"
FORMATS = {"chat": FORMAT, "assistant": "qbproxy-bench-assistant-trace"}
VERSION = 1
# "Today" of the fake companies: fixed, so that date filters in a saved trace keep meaning.
ANCHOR = "2025-06-02T17:00:00+00:00"
COMPANY_OFFSET = dt.timezone(dt.timedelta(hours=-7))  # SandboxConfig's default offset

# `report` (GET reports/{Name}) and `write` (a write of any entity, `data["recipe"]` says how
# its body is made) are the assistant trace's (bench/assistant.py).
Op = Literal[
    "query", "read", "report", "create_invoice", "receive_payment", "update_customer", "write"
]
WRITE_OPS: tuple[Op, ...] = ("create_invoice", "receive_payment", "update_customer", "write")
READ_OPS: tuple[Op, ...] = ("query", "read", "report")
# In a path, the Id the question's write created (an assistant reads what it just made).
CREATED = "{created}"


@dataclass(frozen=True, slots=True)
class Call:
    """One thing a context builder does. `query` and `read` are one HTTP request each
    (`path` already percent-encoded, query string included). A write reads what it needs
    first through the same endpoint (`read_path`, as apps do: the SyncToken or the balance
    comes from that read) and then posts to `path`; `data` holds the fixed parts."""

    op: Op
    method: str
    path: str
    body: str | None = None  # POST application/text query text
    entity: str | None = None
    id: str | None = None
    read_path: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Question:
    at: float  # seconds from the start of the trace (before --time-scale)
    intent: str
    steps: list[list[Call]]

    @property
    def writes(self) -> bool:
        return any(c.op in WRITE_OPS for step in self.steps for c in step)


@dataclass(frozen=True, slots=True)
class Session:
    id: int
    realm: str
    app: str
    questions: list[Question]


@dataclass(frozen=True, slots=True)
class Company:
    """How to rebuild the fake Intuit the trace was drawn from."""

    realms: tuple[str, ...]
    seed: int
    customers_per_realm: int
    invoices_per_realm: int
    payments_per_realm: int
    anchor: str = ANCHOR

    def sandbox_config(self, **run: Any) -> SandboxConfig:
        """The fake's config; `run` adds run-time knobs (latency_ms, rate limits)."""
        return SandboxConfig(
            realms=self.realms,
            seed=self.seed,
            customers_per_realm=self.customers_per_realm,
            invoices_per_realm=self.invoices_per_realm,
            payments_per_realm=self.payments_per_realm,
            anchor=dt.datetime.fromisoformat(self.anchor),
            **run,
        )


@dataclass(frozen=True, slots=True)
class TraceParams:
    realms: int = 20
    sessions: int = 60
    questions: int = 10  # per session, on average (8 to 12)
    seed: int = 1
    write_share: float = 0.1  # of all questions
    window_seconds: float = 300.0  # sessions start within this window
    session_seconds: float = 300.0  # a session's questions fall within this span
    customers_per_realm: int = 150
    invoices_per_realm: int = 400
    payments_per_realm: int = 200

    def __post_init__(self) -> None:
        if self.realms < 1 or self.sessions < 1 or self.questions < 1:
            raise ValueError("realms, sessions and questions must be >= 1")
        if not 0.0 <= self.write_share <= 1.0:
            raise ValueError(f"write share must be within 0..1, got {self.write_share}")
        if self.window_seconds < 0 or self.session_seconds < 0:
            raise ValueError("window and session spans must be >= 0")
        if self.customers_per_realm < 1 or self.invoices_per_realm < 1:
            raise ValueError("a chat trace needs customers and invoices")


@dataclass(frozen=True, slots=True)
class Trace:
    params: TraceParams
    company: Company
    sessions: list[Session]
    kind: str = "chat"  # or "assistant"

    def questions(self) -> Iterator[Question]:
        for session in self.sessions:
            yield from session.questions

    def calls(self) -> Iterator[Call]:
        for question in self.questions():
            for step in question.steps:
                yield from step

    def http_requests(self) -> int:
        """Requests the trace sends when every write goes ahead (a write that reads first
        is two)."""
        return sum(2 if c.read_path is not None else 1 for c in self.calls())

    def summary(self) -> dict[str, Any]:
        questions = list(self.questions())
        ops = Counter(c.op for c in self.calls())
        return {
            "kind": self.kind,
            "realms": len(self.company.realms),
            "sessions": len(self.sessions),
            "questions": len(questions),
            "write_questions": sum(q.writes for q in questions),
            "calls": dict(sorted(ops.items())),
            "http_requests": self.http_requests(),
            "span_seconds": round(max((q.at for q in questions), default=0.0), 1),
        }


# -- client apps -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class App:
    """A query style seen in real QBO clients."""

    name: str
    method: str  # how queries are sent: GET ?query= or POST application/text
    encoding: Literal["plus", "percent"]  # spaces in ?query= as + (requests) or %20 (node)
    keywords: Literal["upper", "lower", "title"]
    page_size: int | None  # MAXRESULTS on lists; None: Intuit's default (100)
    minorversions: tuple[str | None, ...]  # one is picked per session; None: not sent
    minor_first: bool = False  # ?minorversion=..&query=.. instead of ?query=..&minorversion=..


APPS = (
    # python-quickbooks posts the query text; Customer.all() pages by 100 at minorversion 75.
    App("python-quickbooks", "POST", "plus", "upper", 100, ("75",)),
    # node-quickbooks: GET, encodeURIComponent, minorversion from its config (often older).
    App("node-quickbooks", "GET", "percent", "upper", 1000, ("65", "70", "75"), minor_first=True),
    # A hand-rolled LLM tool on requests: lower-case SQL, no minorversion at all.
    App("llm-tool-requests", "GET", "plus", "lower", None, (None, "75")),
    # Intuit's .NET / Java SDKs post the text, "Select * From ...".
    App("intuit-sdk", "POST", "plus", "title", 500, ("73", "75")),
)
APP_BY_NAME = {app.name: app for app in APPS}

_KEYWORDS = ("SELECT", "FROM", "WHERE", "AND", "ORDERBY", "DESC", "MAXRESULTS", "STARTPOSITION")


def _style(text: str, keywords: str) -> str:
    """Rewrite a query written with upper-case keywords in an app's keyword case."""
    if keywords == "upper":
        return text
    out = []
    for word in text.split(" "):
        if word not in _KEYWORDS and word != "COUNT(*)":
            out.append(word)
        elif keywords == "lower":
            out.append(word.lower())
        else:
            out.append("OrderBy" if word == "ORDERBY" else word.capitalize())
    return " ".join(out)


class _Builder:
    """Turns one session's intents into calls in its app's style."""

    def __init__(self, realm: str, app: App, minorversion: str | None) -> None:
        self.realm, self.app, self.minor = realm, app, minorversion
        self.base = f"/v3/company/{realm}"

    def _minor(self) -> str:
        return f"minorversion={self.minor}" if self.minor else ""

    def query(self, text: str, *, page: bool = False) -> Call:
        if page and self.app.page_size is not None:
            text += f" MAXRESULTS {self.app.page_size}"
        text = _style(text, self.app.keywords)
        if self.app.method == "POST":
            params = self._minor()
            path = f"{self.base}/query" + (f"?{params}" if params else "")
            return Call("query", "POST", path, body=text)
        encode = quote_plus if self.app.encoding == "plus" else quote
        parts = [f"query={encode(text, safe='*()')}"]
        if self.minor:
            parts.insert(0 if self.app.minor_first else 1, self._minor())
        return Call("query", "GET", f"{self.base}/query?" + "&".join(parts))

    def entity_path(self, entity: str, id_: str | None = None) -> str:
        path = f"{self.base}/{entity.lower()}" + (f"/{id_}" if id_ else "")
        return path + (f"?{self._minor()}" if self.minor else "")

    def read(self, entity: str, id_: str) -> Call:
        return Call("read", "GET", self.entity_path(entity, id_), entity=entity, id=id_)

    def write(self, op: Op, entity: str, id_: str | None, data: dict[str, Any]) -> Call:
        read_path = None
        if op == "update_customer":
            read_path = self.entity_path("Customer", id_)
        elif op == "receive_payment":
            read_path = self.entity_path("Invoice", str(data["InvoiceId"]))
        return Call(
            op,
            "POST",
            self.entity_path(entity),
            entity=entity,
            id=id_,
            read_path=read_path,
            data=data,
        )


# -- what the generator knows about the companies -----------------------------------------------
@dataclass(slots=True)
class _Realm:
    customers: list[tuple[str, str]]  # active (Id, DisplayName)
    invoices_of: dict[str, list[str]]  # customer Id -> invoice Ids
    open_invoices: list[tuple[str, str]]  # (invoice Id, customer Id) with Balance > 0
    payments: list[tuple[str, str, str | None]]  # (payment Id, customer Id, linked invoice)


def _ref(doc: dict[str, Any], key: str) -> str:
    return str((doc.get(key) or {}).get("value", ""))


def _survey(company: Company) -> dict[str, _Realm]:
    sandbox = Sandbox(company.sandbox_config())
    out: dict[str, _Realm] = {}
    for realm in company.realms:
        customers = [
            (c["Id"], c["DisplayName"]) for c in sandbox.entities(realm, "Customer") if c["Active"]
        ]
        invoices_of: dict[str, list[str]] = {}
        open_invoices = []
        for inv in sandbox.entities(realm, "Invoice"):
            invoices_of.setdefault(_ref(inv, "CustomerRef"), []).append(inv["Id"])
            if inv["Balance"] > 0:
                open_invoices.append((inv["Id"], _ref(inv, "CustomerRef")))
        payments = []
        for pay in sandbox.entities(realm, "Payment"):
            linked = [
                lk["TxnId"]
                for line in pay.get("Line") or []
                for lk in line.get("LinkedTxn") or []
                if lk.get("TxnType") == "Invoice"
            ]
            payments.append((pay["Id"], _ref(pay, "CustomerRef"), linked[0] if linked else None))
        out[realm] = _Realm(customers, invoices_of, open_invoices, payments)
    return out


def realm_ids(n: int) -> tuple[str, ...]:
    return tuple(f"91303500{i:08d}" for i in range(1, n + 1))


# -- intents ----------------------------------------------------------------------------------
INTENTS = (
    ("customer_overview", 25),
    ("receivables", 20),
    ("recent_payments", 15),
    ("invoice_detail", 15),
    ("sales_period", 10),
    ("find_customer", 10),
    ("what_changed", 5),
)
WRITES = (("create_invoice", 35), ("receive_payment", 35), ("update_customer", 30))


class _Generator:
    def __init__(self, params: TraceParams) -> None:
        self.params = params
        self.rng = random.Random(f"qbproxy-bench:{params.seed}")
        self.company = Company(
            realms=realm_ids(params.realms),
            seed=params.seed,
            customers_per_realm=params.customers_per_realm,
            invoices_per_realm=params.invoices_per_realm,
            payments_per_realm=params.payments_per_realm,
        )
        self.realms = _survey(self.company)
        anchor = dt.datetime.fromisoformat(ANCHOR).astimezone(COMPANY_OFFSET)
        self.today = anchor.date()
        self.anchor = anchor.replace(microsecond=0)
        self.note = 0

    def day(self, days_ago: int) -> str:
        return (self.today - dt.timedelta(days=days_ago)).isoformat()

    def pick(self, weighted: Sequence[tuple[str, int]]) -> str:
        names = [name for name, _ in weighted]
        weights = [weight for _, weight in weighted]
        return self.rng.choices(names, weights)[0]

    def trace(self) -> Trace:
        p, rng = self.params, self.rng
        apps_of = {
            realm: rng.sample(APPS, 1 if rng.random() < 0.5 else 2) for realm in self.company.realms
        }
        plans: list[tuple[str, App, float, list[float]]] = []
        for n in range(p.sessions):
            realm = self.company.realms[n % len(self.company.realms)]
            app = rng.choice(apps_of[realm])
            start = rng.uniform(0, p.window_seconds)
            count = max(1, p.questions + rng.randint(-2, 2))
            gaps = [rng.uniform(10, 50) for _ in range(count - 1)]
            if sum(gaps) > p.session_seconds:
                shrink = p.session_seconds / sum(gaps)
                gaps = [g * shrink for g in gaps]
            times = [start]
            for gap in gaps:
                times.append(times[-1] + gap)
            plans.append((realm, app, start, times))
        total = sum(len(times) for *_, times in plans)
        slots = [(s, q) for s, (*_, times) in enumerate(plans) for q in range(len(times))]
        writing = set(rng.sample(slots, round(p.write_share * total)))
        sessions = []
        for s, (realm, app, _, times) in enumerate(plans):
            minor = rng.choice(app.minorversions)
            build = _Builder(realm, app, minor)
            data = self.realms[realm]
            focus = rng.sample(data.customers, min(3, len(data.customers)))
            questions = []
            for q, at in enumerate(times):
                if (s, q) in writing:
                    intent = self.pick(WRITES)
                    steps = self.write_steps(
                        intent, b=build, data=data, focus=focus, session=s, question=q
                    )
                else:
                    intent = self.pick(INTENTS)
                    steps = self.read_steps(intent, build, data, focus)
                questions.append(Question(round(at, 3), intent, steps))
            sessions.append(Session(s, realm, app.name, questions))
        return Trace(self.params, self.company, sessions)

    def customer(self, data: _Realm, focus: list[tuple[str, str]]) -> str:
        pool = focus if focus and self.rng.random() < 0.8 else data.customers
        return self.rng.choice(pool)[0]

    def read_steps(
        self, intent: str, b: _Builder, data: _Realm, focus: list[tuple[str, str]]
    ) -> list[list[Call]]:
        rng = self.rng
        cust = self.customer(data, focus)
        if intent == "customer_overview":
            listing = "SELECT * FROM Customer" + (
                " ORDERBY DisplayName" if rng.random() < 0.5 else ""
            )
            return [
                [b.query(listing, page=True), b.read("Customer", cust)],
                [
                    b.query(
                        f"SELECT * FROM Invoice WHERE CustomerRef = '{cust}' ORDERBY TxnDate DESC"
                    ),
                    b.query(f"SELECT * FROM Payment WHERE CustomerRef = '{cust}'"),
                ],
            ]
        if intent == "receivables":
            return [
                [
                    b.query("SELECT * FROM Invoice WHERE Balance > '0' ORDERBY DueDate", page=True),
                    b.query(
                        "SELECT * FROM Customer WHERE Balance > '0' "
                        "ORDERBY Balance DESC MAXRESULTS 20"
                    ),
                    b.query(
                        "SELECT COUNT(*) FROM Invoice "
                        f"WHERE Balance > '0' AND DueDate < '{self.day(0)}'"
                    ),
                ]
            ]
        if intent == "recent_payments":
            days = rng.choice((7, 30, 30, 90))
            payments = [p for p in data.payments if p[2] is not None] or data.payments
            chosen = rng.sample(payments, min(2, len(payments)))
            reads = [b.read("Payment", pid) for pid, _, _ in chosen]
            reads += [b.read("Invoice", inv) for _, _, inv in chosen[:1] if inv]
            return [
                [
                    b.query(
                        f"SELECT * FROM Payment WHERE TxnDate >= '{self.day(days)}' "
                        "ORDERBY TxnDate DESC"
                    )
                ],
                reads,
            ]
        if intent == "invoice_detail":
            invoices = data.invoices_of.get(cust) or [i for i, _ in data.open_invoices]
            inv = rng.choice(invoices)
            owner = next((c for c, ids in data.invoices_of.items() if inv in ids), cust)
            return [
                [b.read("Invoice", inv)],
                [
                    b.read("Customer", owner),
                    b.query(
                        f"SELECT * FROM Payment WHERE CustomerRef = '{owner}' ORDERBY TxnDate DESC"
                    ),
                ],
            ]
        if intent == "sales_period":
            days = rng.choice((30, 90, 365))
            period = f"TxnDate >= '{self.day(days)}' AND TxnDate <= '{self.day(0)}'"
            return [
                [
                    b.query(
                        f"SELECT * FROM Invoice WHERE {period}",
                        page=True,
                    ),
                    b.query(
                        f"SELECT * FROM Payment WHERE {period}",
                        page=True,
                    ),
                ]
            ]
        if intent == "find_customer":
            named = [(i, n) for i, n in data.customers if n[:3].isascii() and n[:3].isalpha()]
            cid, name = rng.choice(named or data.customers)
            prefix = name[: rng.choice((3, 4))].replace("'", "")
            return [
                [b.query(f"SELECT * FROM Customer WHERE DisplayName LIKE '{prefix}%'")],
                [
                    b.read("Customer", cid),
                    b.query(f"SELECT * FROM Invoice WHERE CustomerRef = '{cid}'"),
                ],
            ]
        if intent == "what_changed":
            since = (self.anchor - dt.timedelta(days=rng.choice((1, 7)))).isoformat()
            return [
                [
                    b.query(f"SELECT * FROM Customer WHERE MetaData.LastUpdatedTime > '{since}'"),
                    b.query(f"SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime > '{since}'"),
                ]
            ]
        raise AssertionError(intent)

    def write_steps(
        self,
        intent: str,
        *,
        b: _Builder,
        data: _Realm,
        focus: list[tuple[str, str]],
        session: int,
        question: int,
    ) -> list[list[Call]]:
        rng = self.rng
        if intent == "receive_payment":
            mine = [t for t in data.open_invoices if t[1] in {c for c, _ in focus}]
            inv, cust = rng.choice(mine or data.open_invoices)
            share = rng.choice((1.0, 1.0, 0.5))
            pay = {"CustomerRef": cust, "InvoiceId": inv, "share": share}
            return [
                [b.write("receive_payment", "Payment", None, pay)],
                [
                    b.read("Invoice", inv),
                    b.query(
                        f"SELECT * FROM Invoice WHERE CustomerRef = '{cust}' AND Balance > '0'"
                    ),
                ],
            ]
        cust = self.customer(data, focus)
        if intent == "create_invoice":
            lines = []
            for _ in range(rng.randint(1, 3)):
                item, name, price = rng.choice(_ITEMS)
                qty = rng.randint(1, 8)
                lines.append(
                    {
                        "DetailType": "SalesItemLineDetail",
                        "Amount": round(price * qty, 2),
                        "Description": f"{name} (chat s{session} q{question})",
                        "SalesItemLineDetail": {
                            "ItemRef": {"value": item, "name": name},
                            "Qty": qty,
                            "UnitPrice": price,
                        },
                    }
                )
            body = {"CustomerRef": {"value": cust}, "Line": lines}
            return [
                [b.write("create_invoice", "Invoice", None, body)],
                [
                    b.query(
                        f"SELECT * FROM Invoice WHERE CustomerRef = '{cust}' ORDERBY TxnDate DESC"
                    ),
                    b.read("Customer", cust),
                ],
            ]
        if intent == "update_customer":
            changes = {
                "Notes": f"Updated from chat session {session}, question {question}",
                "PrimaryPhone": {"FreeFormNumber": f"(555) 010-{rng.randrange(10000):04d}"},
            }
            return [
                [b.write("update_customer", "Customer", cust, changes)],
                [b.read("Customer", cust)],
            ]
        raise AssertionError(intent)


_ITEMS = (
    ("1", "Services", 100.0),
    ("2", "Hours", 75.0),
    ("3", "Design", 120.0),
    ("4", "Gardening", 35.0),
)


def generate(params: TraceParams) -> Trace:
    """The trace for `params`; the same params give the same trace."""
    return _Generator(params).trace()


# -- file ---------------------------------------------------------------------------------------
def to_json(trace: Trace) -> bytes:
    doc = {
        "format": FORMATS[trace.kind],
        "version": VERSION,
        "params": asdict(trace.params),
        "company": asdict(trace.company),
        "summary": trace.summary(),
        "sessions": [asdict(s) for s in trace.sessions],
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2)


def from_json(raw: bytes) -> Trace:
    doc = orjson.loads(raw)
    kinds = {fmt: kind for kind, fmt in FORMATS.items()}
    if not isinstance(doc, dict) or doc.get("format") not in kinds:
        raise ValueError(f"not a {' or '.join(FORMATS.values())} file")
    if doc.get("version") != VERSION:
        raise ValueError(f"trace version {doc.get('version')} is not {VERSION}")
    company = doc["company"]
    company["realms"] = tuple(company["realms"])
    sessions = [
        Session(
            s["id"],
            s["realm"],
            s["app"],
            [
                Question(q["at"], q["intent"], [[Call(**c) for c in step] for step in q["steps"]])
                for q in s["questions"]
            ],
        )
        for s in doc["sessions"]
    ]
    return Trace(TraceParams(**doc["params"]), Company(**company), sessions, kinds[doc["format"]])


def save(trace: Trace, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_json(trace))


def load(path: Path) -> Trace:
    return from_json(path.read_bytes())
