"""The pure part of webhooks: signature, payload parsing, and which tables each event purges."""

from __future__ import annotations

import orjson
import pytest
from fake_intuit.webhooks import cloudevents_body, legacy_body
from fake_intuit.webhooks import sign as sandbox_sign

from qbproxy.core import deps
from qbproxy.core.catalog import Entity
from qbproxy.core.webhook_events import (
    Event,
    MalformedPayload,
    WebhookPurges,
    parse,
    purges_for,
    sign,
    verify,
)

REALM = "9130350000000001"

# qbo-api.md "Webhooks": Intuit's published test vector.
VECTOR_BODY = b'{"stuff":"5"}'
VECTOR_TOKEN = "verify_me"
VECTOR_SIGNATURE = "nfPLN16u3vMvv08ghDs+dOkLuirEVDy5wAeG/lmM2OA="


def test_signature_matches_intuits_test_vector() -> None:
    assert sign(VECTOR_BODY, VECTOR_TOKEN) == VECTOR_SIGNATURE
    assert sandbox_sign(VECTOR_BODY, VECTOR_TOKEN) == VECTOR_SIGNATURE
    assert verify(VECTOR_BODY, VECTOR_SIGNATURE, VECTOR_TOKEN)


@pytest.mark.parametrize(
    ("body", "signature", "token"),
    [
        (VECTOR_BODY, None, VECTOR_TOKEN),  # header missing
        (VECTOR_BODY, "", VECTOR_TOKEN),  # header empty
        (b'{"stuff":"6"}', VECTOR_SIGNATURE, VECTOR_TOKEN),  # body changed
        (VECTOR_BODY + b" ", VECTOR_SIGNATURE, VECTOR_TOKEN),  # raw bytes, not the JSON value
        (VECTOR_BODY, VECTOR_SIGNATURE, "verify_you"),  # other token
        (VECTOR_BODY, VECTOR_SIGNATURE, ""),  # no token: nothing verifies
        (VECTOR_BODY, VECTOR_SIGNATURE[:-4], VECTOR_TOKEN),  # truncated
        (VECTOR_BODY, "not base64!", VECTOR_TOKEN),
        (VECTOR_BODY, "nfPLN16u3vMvv08ghDs+dOkLuirEVDy5wAeG/lmM2OA", VECTOR_TOKEN),  # no padding
        (VECTOR_BODY, VECTOR_SIGNATURE.lower(), VECTOR_TOKEN),
        (VECTOR_BODY, "é" + VECTOR_SIGNATURE, VECTOR_TOKEN),  # non-ASCII header
    ],
)
def test_bad_signatures_do_not_verify(body: bytes, signature: str | None, token: str) -> None:
    assert not verify(body, signature, token)


def test_signature_tolerates_surrounding_whitespace() -> None:
    assert verify(VECTOR_BODY, f" {VECTOR_SIGNATURE}\t", VECTOR_TOKEN)


def _entity(name: str, id_: str, operation: str) -> dict[str, str]:
    return {"name": name, "id": id_, "operation": operation, "lastUpdated": "2024-01-01T00:00:00Z"}


def test_legacy_payload() -> None:
    body = legacy_body(
        REALM, [_entity("Customer", "1", "Update"), _entity("Invoice", "130", "Void")]
    )
    assert parse(body) == (
        "legacy",
        [Event(REALM, "Customer", "1", "Update"), Event(REALM, "Invoice", "130", "Void")],
    )


def test_legacy_payload_with_several_realms_and_numeric_ids() -> None:
    body = orjson.dumps(
        {
            "eventNotifications": [
                {
                    "realmId": "1",
                    "dataChangeEvent": {"entities": [_entity("Payment", "9", "Create")]},
                },
                {
                    "realmId": 2,
                    "dataChangeEvent": {
                        "entities": [{"name": "Item", "id": 5, "operation": "Merge"}]
                    },
                },
                {"realmId": "3", "dataChangeEvent": {"entities": []}},
            ]
        }
    )
    assert parse(body) == (
        "legacy",
        [Event("1", "Payment", "9", "Create"), Event("2", "Item", "5", "Merge")],
    )


@pytest.mark.parametrize(
    ("operation", "verb"),
    [
        ("Create", "Create"),
        ("Update", "Update"),
        ("Delete", "Delete"),
        ("Merge", "Merge"),
        ("Void", "Void"),
    ],
)
def test_cloudevents_payload(operation: str, verb: str) -> None:
    body = cloudevents_body(REALM, [_entity("Invoice", "42", operation)])
    assert parse(body) == ("cloudevents", [Event(REALM, "invoice", "42", verb)])


def test_cloudevents_minimal_and_unknown_verbs() -> None:
    body = orjson.dumps(
        [
            {"type": "qbo.customer.created.v1", "intuitaccountid": REALM, "intuitentityid": "7"},
            {"type": "QBO.JournalEntry.emailed.v2", "intuitaccountid": 1, "intuitentityid": 3},
        ]
    )
    assert parse(body) == (
        "cloudevents",
        [Event(REALM, "customer", "7", "Create"), Event("1", "journalentry", "3", "Emailed")],
    )


def test_empty_payloads_are_well_formed() -> None:
    assert parse(b"[]") == ("cloudevents", [])
    assert parse(b'{"eventNotifications": []}') == ("legacy", [])


# Each must be refused whole (400), nothing purged.
MALFORMED = [
    b"",  # empty body
    b"not json",
    b'{"eventNotifications": ',  # truncated
    b"\xff\xfe",  # not UTF-8
    b"null",
    b"42",
    b'"eventNotifications"',
    b"{}",  # neither shape
    b'{"stuff":"5"}',  # the signature test vector's body
    b'{"eventNotifications": {}}',  # not an array
    b'{"eventNotifications": [1]}',  # not an object
    b'{"eventNotifications": [{"dataChangeEvent": {"entities": []}}]}',  # no realm
    b'{"eventNotifications": [{"realmId": "", "dataChangeEvent": {"entities": []}}]}',
    b'{"eventNotifications": [{"realmId": "abc", "dataChangeEvent": {"entities": []}}]}',
    b'{"eventNotifications": [{"realmId": "1/../2", "dataChangeEvent": {"entities": []}}]}',
    b'{"eventNotifications": [{"realmId": "'
    + b"1" * 33
    + b'", "dataChangeEvent": {"entities": []}}]}',
    b'{"eventNotifications": [{"realmId": true, "dataChangeEvent": {"entities": []}}]}',
    b'{"eventNotifications": [{"realmId": "1"}]}',  # no dataChangeEvent
    b'{"eventNotifications": [{"realmId": "1", "dataChangeEvent": {}}]}',  # no entities
    b'{"eventNotifications": [{"realmId": "1", "dataChangeEvent": {"entities": "x"}}]}',
    b'{"eventNotifications": [{"realmId": "1", "dataChangeEvent": {"entities": [null]}}]}',
    b'{"eventNotifications": [{"realmId": "1", "dataChangeEvent": {"entities": '
    b'[{"id": "1", "operation": "Update"}]}}]}',  # no name
    b'{"eventNotifications": [{"realmId": "1", "dataChangeEvent": {"entities": '
    b'[{"name": "Customer", "operation": "Update"}]}}]}',  # no id
    b'{"eventNotifications": [{"realmId": "1", "dataChangeEvent": {"entities": '
    b'[{"name": "Customer", "id": "1"}]}}]}',  # no operation
    b'{"eventNotifications": [{"realmId": "1", "dataChangeEvent": {"entities": '
    b'[{"name": " ", "id": "1", "operation": "Update"}]}}]}',  # blank name
    b"[1]",  # CloudEvents: not an object
    b"[{}]",  # no type
    b'[{"type": "qbo.customer.created.v1", "intuitentityid": "1"}]',  # no account id
    b'[{"type": "qbo.customer.created.v1", "intuitaccountid": "1"}]',  # no entity id
    b'[{"type": "com.example.thing", "intuitaccountid": "1", "intuitentityid": "1"}]',
    b'[{"type": "qbo.customer.created", "intuitaccountid": "1", "intuitentityid": "1"}]',
    b'[{"type": 7, "intuitaccountid": "1", "intuitentityid": "1"}]',
    b'[{"type": "qbo.customer.created.v1", "intuitaccountid": ["1"], "intuitentityid": "1"}]',
    b'[{"type": "qbo.customer.created.v1", "intuitaccountid": "1", "intuitentityid": "1"}, 2]',
]


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_payloads_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        parse(body)


def _plan(*events: tuple[str, str]) -> WebhookPurges:
    return purges_for(Event(REALM, name, "1", op) for name, op in events)


@pytest.mark.parametrize(
    ("entity", "operation", "tables"),
    [
        # The cached entities follow the write path's map exactly.
        # A webhook does not show the body: a create may carry an opening balance.
        ("Customer", "Create", set(deps.ALL)),
        ("customer", "Create", set(deps.ALL)),
        ("Vendor", "Create", set(deps.ALL)),
        ("Customer", "Update", set(deps.ALL)),
        ("Customer", "Merge", set(deps.ALL)),
        ("Invoice", "Create", set(deps.ALL)),
        ("Bill", "Create", set(deps.ALL)),
        ("BillPayment", "Void", set(deps.ALL)),
        ("Employee", "Update", set(deps.ALL)),
        ("Preferences", "Update", set(deps.ALL)),
        ("Invoice", "Update", set(deps.ALL)),
        ("Invoice", "Void", set(deps.ALL)),
        ("Invoice", "Delete", set(deps.ALL)),
        ("Payment", "Create", set(deps.ALL)),
        ("Payment", "Delete", set(deps.ALL)),
        # Balance movers, and entities whose names cached documents carry in refs.
        ("CreditMemo", "Create", set(deps.ALL)),
        ("JournalEntry", "Update", set(deps.ALL)),
        ("Deposit", "Create", set(deps.ALL)),
        ("Item", "Update", set(deps.ALL)),
        ("Account", "Merge", set(deps.ALL)),
        ("Term", "Update", set(deps.ALL)),
        # Entities deps does not know, and operations this module does not know: purge more.
        ("SomethingNew", "Create", set(deps.ALL)),
        ("Customer", "Emailed", set(deps.ALL)),
    ],
)
def test_events_purge_what_deps_says(entity: str, operation: str, tables: set[Entity]) -> None:
    assert _plan((entity, operation)) == WebhookPurges({REALM: frozenset(tables)})


@pytest.mark.parametrize(
    "entity",
    ["Budget", "budget", "BUDGET"],
)
def test_entities_that_change_no_cached_table_are_dropped(entity: str) -> None:
    event = Event(REALM, entity, "1", "Update")
    assert purges_for([event]) == WebhookPurges({}, (event,))


def test_plan_unions_per_realm_and_duplicates_are_harmless() -> None:
    events = [
        Event("1", "Customer", "1", "Create"),
        Event("1", "Customer", "1", "Create"),
        Event("1", "Invoice", "2", "Create"),
        Event("2", "Budget", "3", "Update"),
        Event("2", "Budget", "4", "Create"),
        Event("3", "Invoice", "5", "Update"),
        Event("3", "Budget", "6", "Create"),
    ]
    assert purges_for(events) == WebhookPurges(
        {"1": deps.ALL, "3": deps.ALL},
        (
            Event("2", "Budget", "3", "Update"),
            Event("2", "Budget", "4", "Create"),
            Event("3", "Budget", "6", "Create"),
        ),
    )
    assert "2" not in purges_for(events).purges
