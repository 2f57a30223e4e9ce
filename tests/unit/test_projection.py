"""Projected rows: the fake Intuit's documented shape (fake-intuit/README.md, "Choices"),
as a table of documents, names and the rows they make."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from qbproxy.core.projection import canonical_names, project

VENDOR: dict[str, Any] = {
    "Id": "56",
    "SyncToken": "2",
    "DisplayName": "Bob's Burger Joint",
    "Balance": 0,
    "Active": True,
    "PrimaryEmailAddr": {"Address": "bob@example.com"},
    "MetaData": {
        "CreateTime": "2024-05-01T10:00:00-07:00",
        "LastUpdatedTime": "2024-05-02T10:00:00-07:00",
    },
    "domain": "QBO",
    "sparse": False,
}


@pytest.mark.parametrize(
    ("names", "row"),
    [
        (["Id", "DisplayName"], {"Id": "56", "DisplayName": "Bob's Burger Joint"}),
        (["Id", "SyncToken"], {"Id": "56", "SyncToken": "2"}),
        (["DisplayName"], {"DisplayName": "Bob's Burger Joint"}),  # Id only if named
        (["id", "DISPLAYNAME"], {"Id": "56", "DisplayName": "Bob's Burger Joint"}),  # any case
        (["Id", "Id", "id"], {"Id": "56"}),  # repeats change nothing
        (["Nope"], {}),  # a name the document lacks adds nothing
        (["Id", "Sku"], {"Id": "56"}),  # nor one this document lacks
        (["MetaData"], {"MetaData": VENDOR["MetaData"]}),  # an object comes whole
        (["PrimaryEmailAddr"], {"PrimaryEmailAddr": {"Address": "bob@example.com"}}),
        (["Balance", "Active"], {"Balance": 0, "Active": True}),  # numbers and booleans kept
        (["domain", "sparse"], {}),  # always there anyway
    ],
)
def test_a_row_holds_the_named_properties_domain_and_sparse(
    names: list[str], row: dict[str, Any]
) -> None:
    wanted = frozenset(canonical_names(names))
    projected = orjson.loads(project(orjson.dumps(VENDOR).decode(), wanted))
    assert projected == {**row, "domain": "QBO", "sparse": True}


def test_properties_keep_the_documents_order() -> None:
    names = frozenset(canonical_names(["SyncToken", "MetaData", "Id"]))
    projected = orjson.loads(project(orjson.dumps(VENDOR), names))
    assert list(projected) == ["Id", "SyncToken", "MetaData", "domain", "sparse"]


def test_values_are_the_same_json_values() -> None:
    doc = '{"Id":"7","TotalAmt":100.50,"Amount":1e2,"Name":"\\u00e9 \\"x\\"","Line":[]}'
    names = frozenset(canonical_names(["TotalAmt", "Amount", "Name", "Line"]))
    assert orjson.loads(project(doc, names)) == {
        "TotalAmt": 100.5,
        "Amount": 100.0,
        "Name": 'é "x"',
        "Line": [],
        "domain": "QBO",
        "sparse": True,
    }


@pytest.mark.parametrize(
    ("names", "key"),
    [
        (["Id", "DisplayName"], ("displayname", "id")),
        (["DisplayName", "ID", "id"], ("displayname", "id")),
        (["SyncToken"], ("synctoken",)),
    ],
)
def test_canonical_names_are_lower_cased_unique_and_sorted(
    names: list[str], key: tuple[str, ...]
) -> None:
    assert canonical_names(names) == key
