"""Classify a request under /v3/ into what the proxy does with it (pure).

`classify()` looks only at the method, path and query string. Anything it does not
recognise exactly is `Passthrough`: when unsure, forward (design.md, promise 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from qbproxy.core.catalog import BY_SEGMENT, Entity
from qbproxy.core.reports import ReportKey, report_key

# Query parameters that do not change what a cached read or query returns. minorversion is
# served from the version the proxy loads with (README: "minorversion"); format=json is
# node-quickbooks' habit; requestid is Intuit's idempotency key, meaningful for writes only.
_HARMLESS_PARAMS = frozenset({"minorversion", "format", "requestid"})


@dataclass(frozen=True, slots=True)
class QueryRoute:
    """`GET .../query?query=` (text given) or `POST .../query` (text is the body)."""

    realm: str
    text: str | None


@dataclass(frozen=True, slots=True)
class ReadRoute:
    """`GET .../{entity}/{id}` of a cached entity; `GET .../companyinfo/{realm}` and
    `GET .../preferences` (entity_id None: the realm's one object)."""

    realm: str
    entity: Entity
    entity_id: str | None


@dataclass(frozen=True, slots=True)
class ReportRoute:
    """`GET .../reports/{Name}?...` of a report and parameters the catalog knows
    (qbproxy/core/reports.py); any other report request is Passthrough."""

    realm: str
    key: ReportKey


@dataclass(frozen=True, slots=True)
class WriteRoute:
    """Any other POST under a realm: create, update, delete, void, send, upload, ...

    `entity` is the path segment as sent ("invoice", "creditmemo", "upload"), lower-cased.
    """

    realm: str
    entity: str
    operation: str  # "create/update" when the URL has no ?operation=
    entity_id: str | None = None


@dataclass(frozen=True, slots=True)
class BatchRoute:
    realm: str


@dataclass(frozen=True, slots=True)
class Passthrough:
    """Forwarded untouched; `realm` when the path names one (for rate limits and logs)."""

    realm: str | None = None


Route = QueryRoute | ReadRoute | ReportRoute | WriteRoute | BatchRoute | Passthrough


def classify(method: str, path: str, query_string: str) -> Route:
    parts = path.split("/")
    # ["", "v3", "company", realm, segment, ...]
    if len(parts) < 5 or parts[:3] != ["", "v3", "company"] or not is_realm(parts[3]):
        return Passthrough()
    realm, rest = parts[3], parts[4:]
    params = _params(query_string)
    if params is None:
        return Passthrough(realm)
    method = method.upper()
    segment = rest[0]

    if segment == "query" and len(rest) == 1:
        if method == "GET":
            text = params.get("query")
            if text is None or set(params) - _HARMLESS_PARAMS - {"query"}:
                return Passthrough(realm)
            return QueryRoute(realm, text)
        if method == "POST":
            if set(params) - _HARMLESS_PARAMS:
                return Passthrough(realm)
            return QueryRoute(realm, None)
        return Passthrough(realm)

    if segment == "reports" and len(rest) == 2 and method == "GET":
        key = report_key(rest[1], query_string)
        return Passthrough(realm) if key is None else ReportRoute(realm, key)

    if method in ("GET", "HEAD"):
        entity = BY_SEGMENT.get(segment)
        if method != "GET" or entity is None or set(params) - _HARMLESS_PARAMS:
            return Passthrough(realm)
        if entity.singleton:
            # node-quickbooks' getCompanyInfo asks for companyinfo/{realm}; Preferences
            # has no id in its path. Other spellings are forwarded.
            by_realm = len(rest) == 2 and rest[1] == realm and segment == "companyinfo"
            if by_realm or (len(rest) == 1 and segment == "preferences"):
                return ReadRoute(realm, entity, None)
            return Passthrough(realm)
        if len(rest) == 2 and is_id(rest[1]):
            return ReadRoute(realm, entity, rest[1])
        return Passthrough(realm)

    # Every other method is a write of some kind: QBO mutates only through POST, and a
    # method the proxy does not know is treated as one that can change anything.
    if segment == "batch" and len(rest) == 1 and method == "POST":
        return BatchRoute(realm)
    operation = params.get("operation", "create/update").lower()
    entity_id = rest[1] if len(rest) >= 2 and is_id(rest[1]) else None
    if len(rest) == 3 and entity_id is not None:
        operation = rest[2].lower()  # invoice/{id}/send
    return WriteRoute(realm, segment.lower(), operation, entity_id)


def is_realm(text: str) -> bool:
    """The only realm parser: realm ids are ASCII digit strings (qbo-api.md), at most 32
    long. Anything else (40 digits, Arabic-Indic digits) names no realm: it is forwarded
    for Intuit to refuse, and never rate-limited or trusted as a realm."""
    return 0 < len(text) <= 32 and text.isascii() and text.isdigit()


def is_id(text: str) -> bool:
    """Entity ids are ASCII digit strings; `str.isdigit` alone admits other scripts' digits,
    which `int()` reads as another entity's id."""
    return 0 < len(text) <= 18 and text.isascii() and text.isdigit()  # within bigint


def _params(query_string: str) -> dict[str, str] | None:
    """Parameters by lower-cased name; None when a name repeats (ambiguous: forward)."""
    try:
        pairs = parse_qsl(query_string, keep_blank_values=True, strict_parsing=False)
    except ValueError:
        return None
    params: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        if key in params:
            return None
        params[key] = value
    return params
