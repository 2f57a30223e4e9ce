"""What the fake answers under /v3/company/{realm}/: classification and one function per
endpoint, each returning a `Reply` (qbo-api.md "Hosts and paths", "Envelopes")."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import orjson
from multidict import MultiMapping

from fake_intuit import extras
from fake_intuit.catalog import CANONICAL, CDC_EXCLUDED, SPECS
from fake_intuit.data import SEGMENTS
from fake_intuit.envelopes import Reply, dumps, fault, item_fault
from fake_intuit.errors import WriteError, not_found
from fake_intuit.faults import CallKind
from fake_intuit.query import QueryError, run
from fake_intuit.state import Sandbox

BATCH_LIMIT = 30  # clients send up to 30 items (qbo-api.md "Envelopes")
CDC_LIMIT = 1000  # at most 1,000 objects per entity list (qbo-api.md)
_CDC_EXCLUDED = {name.lower() for name in CDC_EXCLUDED}
_FROM = re.compile(r"\bfrom\s+(\w+)", re.IGNORECASE)


@dataclass(frozen=True)
class Request:
    """What a route needs from the HTTP request, already read."""

    method: str
    parts: tuple[str, ...]  # path segments after /v3/company/{realm}/
    params: MultiMapping[str]
    body: bytes
    realm: str
    authorization: str = ""


def classify(
    method: str, parts: tuple[str, ...], query_text: str | None
) -> tuple[CallKind, str | None]:
    head = parts[0].lower() if parts else ""
    if head == "query":
        found = _FROM.search(query_text or "")
        return "query", CANONICAL.get(found.group(1).lower()) if found else None
    if head in ("batch", "cdc"):
        return ("batch" if head == "batch" else "cdc"), None
    if head == "reports":
        return "report", parts[1] if len(parts) > 1 else None
    if head == "preferences" and len(parts) == 1:
        return ("read" if method == "GET" else "write"), "Preferences"
    entity = SEGMENTS.get(head) or CANONICAL.get(head)
    if entity and method == "GET" and len(parts) == 2:
        return "read", entity
    if entity and method == "POST" and (len(parts) == 1 or parts[2:] == ("send",)):
        return "write", entity
    return "other", entity


def query_text(req: Request) -> str | None:
    if req.method == "POST":
        return req.body.decode("utf-8", "replace")
    return req.params.get("query")


def json_reply(sb: Sandbox, obj: dict[str, Any], status: int = 200) -> Reply:
    return Reply(status, dumps(obj | {"time": sb.clock.body_time(sb.now())}))


def fault_reply(sb: Sandbox, exc: WriteError | QueryError) -> Reply:
    element = exc.element if isinstance(exc, WriteError) else ""
    time = sb.clock.body_time(sb.now())
    return Reply(400, dumps(fault(exc.code, exc.message, exc.detail, time, element=element)))


def bad_json(detail: str) -> WriteError:
    return WriteError(
        "2010",
        "Request has invalid or unsupported property",
        f"Property Name:{detail} specified is unsupported or invalid",
    )


async def dispatch(sb: Sandbox, req: Request) -> Reply:
    parts, method = req.parts, req.method
    head = parts[0].lower() if parts else ""
    try:
        if head == "query" and len(parts) == 1 and method in ("GET", "POST"):
            return json_reply(sb, {"QueryResponse": answer_query(sb, req.realm, query_text(req))})
        if head == "batch" and len(parts) == 1 and method == "POST":
            return json_reply(sb, batch(sb, req))
        if head == "cdc" and len(parts) == 1 and method == "GET":
            return json_reply(sb, cdc(sb, req))
        if head == "reports" and len(parts) == 2 and method == "GET":
            if parts[1] == "BigReport":
                return extras.big_report(sb, req.params)
            return json_report(sb, req.realm, parts[1], req.params)
        if head in ("companyinfo", "preferences") and method == "GET":
            return single(sb, req.realm, parts)
        entity = SEGMENTS.get(head)
        if entity is not None:
            return entity_route(sb, req, entity)
        if head in CANONICAL and method == "GET" and len(parts) == 2:
            raise not_found(CANONICAL[head], parts[1])  # a real entity the fake keeps none of
    except (WriteError, QueryError) as exc:
        return fault_reply(sb, exc)
    return Reply(
        404, b"<html><body><h1>404 Not Found</h1></body></html>", "text/html;charset=utf-8"
    )


def single(sb: Sandbox, realm: str, parts: tuple[str, ...]) -> Reply:
    """`GET companyinfo/{realm}` and `GET preferences`: the company's one object of each."""
    docs = sb.realms[realm].docs
    if parts[0].lower() == "preferences" and len(parts) == 1:
        return json_reply(sb, {"Preferences": docs["Preferences"]["1"]})
    if parts[0].lower() == "companyinfo" and len(parts) == 2:
        if parts[1] != realm and parts[1] not in docs["CompanyInfo"]:
            raise not_found("CompanyInfo", parts[1])
        return json_reply(sb, {"CompanyInfo": docs["CompanyInfo"]["1"]})
    return Reply(404, b"")


def json_report(sb: Sandbox, realm: str, name: str, params: MultiMapping[str]) -> Reply:
    """A report computed from the realm's data now; no top-level `time` (qbo-api.md)."""
    return Reply(200, dumps(extras.report(sb, realm, name, params)))


def answer_query(sb: Sandbox, realm: str, text: str | None) -> dict[str, Any]:
    if not text or not text.strip():
        raise QueryError("4000", 'Encountered "<EOF>" at line 1, column 0')
    data = sb.realms[realm]
    return run(text, lambda entity: data.docs.get(entity, {}).values(), sb.clock.tz)


def entity_route(sb: Sandbox, req: Request, entity: str) -> Reply:
    parts, method = req.parts, req.method
    data = sb.realms[req.realm]
    if method == "GET" and len(parts) == 2:
        doc = data.docs[entity].get(parts[1])
        if doc is None:  # inactive entities are returned too; deleted ones are not
            raise not_found(entity, parts[1])
        return json_reply(sb, {entity: doc})
    if entity == "Invoice" and len(parts) == 3 and parts[2] == "pdf" and method == "GET":
        inv = data.docs[entity].get(parts[1])
        if inv is None:
            raise not_found(entity, parts[1])
        return Reply(
            200, extras.pdf_bytes(f"Invoice {inv.get('DocNumber', inv['Id'])}"), "application/pdf"
        )
    if entity == "Invoice" and len(parts) == 3 and parts[2] == "send" and method == "POST":
        result = sb.write(req.realm, entity, "send", {"Id": parts[1]}, req.params.get("sendTo"))
        return json_reply(sb, {entity: result.doc})
    if method != "POST" or len(parts) != 1:
        return Reply(
            405,
            b"<html><body><h1>405 Method Not Allowed</h1></body></html>",
            "text/html;charset=utf-8",
        )
    try:
        body = orjson.loads(req.body)
    except orjson.JSONDecodeError as exc:
        raise bad_json(str(exc)) from exc
    result = sb.write(req.realm, entity, write_operation(req.params, body), body)
    return json_reply(sb, {entity: result.doc})


def write_operation(params: MultiMapping[str], body: Any) -> str:
    """node-quickbooks posts updates to ?operation=update; a Payment void is
    ?operation=update&include=void (qbo-api.md "Hosts and paths")."""
    operation = params.get("operation", "").lower()
    include = params.get("include", "").lower()
    if operation in ("delete", "void"):
        return operation
    if operation == "update" and include == "void":
        return "void"
    if operation == "update":
        return "update"
    if operation == "":
        return "update" if isinstance(body, dict) and body.get("Id") else "create"
    raise WriteError(
        "2010",
        "Request has invalid or unsupported property",
        f"Operation {operation} is not supported",
    )


def batch(sb: Sandbox, req: Request) -> dict[str, Any]:
    """Items fail independently; the whole answer is always 200 (qbo-api.md)."""
    try:
        items = orjson.loads(req.body).get("BatchItemRequest")
    except (orjson.JSONDecodeError, AttributeError) as exc:
        raise bad_json("BatchItemRequest") from exc
    if not isinstance(items, list) or not items:
        raise WriteError(
            "2020",
            "Required param missing, need to supply the required value for the API",
            "Required parameter BatchItemRequest is missing",
            "BatchItemRequest",
        )
    if len(items) > BATCH_LIMIT:
        raise WriteError(
            "6000",
            "A business validation error has occurred while processing your request",
            f"Business Validation Error: Batch size {len(items)} "
            f"exceeds the maximum of {BATCH_LIMIT} items",
        )
    out: list[dict[str, Any]] = []
    for item in items:
        bid = item.get("bId") if isinstance(item, dict) else None
        try:
            out.append(batch_item(sb, req.realm, item) | {"bId": bid})
        except (WriteError, QueryError) as exc:
            element = exc.element if isinstance(exc, WriteError) else ""
            out.append(
                {"Fault": item_fault(exc.code, exc.message, exc.detail, element), "bId": bid}
            )
    return {"BatchItemResponse": out}


def batch_item(sb: Sandbox, realm: str, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict) or not item.get("bId"):
        raise WriteError(
            "2020",
            "Required param missing, need to supply the required value for the API",
            "Required parameter bId is missing",
            "bId",
        )
    if "Query" in item:
        return {"QueryResponse": answer_query(sb, realm, str(item["Query"]))}
    operation = str(item.get("operation", "")).lower()
    entity = next((name for name in SEGMENTS.values() if name in item), None)
    if entity is None or operation not in ("create", "update", "delete", "void"):
        raise bad_json("operation")
    body = item[entity]
    if operation == "create" and isinstance(body, dict) and body.get("Id"):
        operation = "update"
    return {entity: sb.write(realm, entity, operation, body).doc}


def cdc(sb: Sandbox, req: Request) -> dict[str, Any]:
    names = [n.strip() for n in req.params.get("entities", "").split(",") if n.strip()]
    raw_since = req.params.get("changedSince", "")
    if not names or not raw_since:
        raise WriteError(
            "2020",
            "Required param missing, need to supply the required value for the API",
            "Required parameter entities and changedSince",
            "entities" if not names else "changedSince",
        )
    # node-quickbooks sends "+07:00" unencoded, which decodes to " 07:00" (qbo-api.md).
    since = sb.clock.parse_instant(re.sub(r" (\d\d:?\d\d)$", r"+\1", raw_since.strip()))
    if since is None:
        raise WriteError(
            "2010",
            "Request has invalid or unsupported property",
            f"Property Name:changedSince value {raw_since} is invalid",
            "changedSince",
        )
    limit = sb.config.cdc_max_lookback_days
    if limit and since.timestamp() < sb.now() - limit * 86_400:
        raise WriteError(
            "6000",
            "A business validation error has occurred while processing your request",
            f"Business Validation Error: changedSince must be within the last {limit} days",
        )
    data = sb.realms[req.realm]
    lists: list[dict[str, Any]] = []
    for name in names:
        entity = CANONICAL.get(name.lower())
        if entity is None or not SPECS[entity].cdc or name.lower() in _CDC_EXCLUDED:
            # Intuit's CDC excludes TimeActivity, TaxCode, TaxRate, JournalCode, TaxAgency:
            # the fake's choice is to refuse them like an unknown entity (README).
            raise QueryError("4001", f"{name} is not a valid entity for CDC")
        docs = list(data.docs.get(entity, {}).values()) + list(
            data.tombstones.get(entity, {}).values()
        )
        found: list[tuple[dt.datetime, int, dict[str, Any]]] = []
        for doc in docs:
            when = sb.clock.parse_instant(doc["MetaData"]["LastUpdatedTime"])
            if when is not None and when >= since:
                found.append((when, int(doc["Id"]), doc))
        found.sort(key=lambda t: t[:2])
        changed = [doc for _, _, doc in found[:CDC_LIMIT]]
        if changed:
            lists.append({entity: changed, "startPosition": 1, "maxResults": len(changed)})
        else:
            lists.append({})
    return {"CDCResponse": [{"QueryResponse": lists}]}
