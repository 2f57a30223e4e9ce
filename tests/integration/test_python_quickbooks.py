"""A real client library, python-quickbooks, pointed at the proxy as its README says
(`api_url_v3`): it sees Intuit's answers, its reads repeat without calls to Intuit, and
what it writes it reads back."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from quickbooks import QuickBooks  # type: ignore[import-untyped]
from quickbooks.objects.customer import Customer  # type: ignore[import-untyped]
from quickbooks.objects.invoice import Invoice  # type: ignore[import-untyped]

from tests.integration.conftest import REALM, Intuit, Running


@pytest.fixture(autouse=True)
def plain_http() -> Iterator[None]:
    # requests-oauthlib refuses http:// without this (qbo-api.md, "Pointing real clients").
    previous = os.environ.get("OAUTHLIB_INSECURE_TRANSPORT")
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    yield
    if previous is None:
        del os.environ["OAUTHLIB_INSECURE_TRANSPORT"]


def client_for(intuit: Intuit, base: str) -> Any:
    # intuitlib's AuthClient fetches Intuit's discovery document when built (no network
    # here); python-quickbooks reads only these attributes of it.
    auth = SimpleNamespace(
        client_id="id",
        access_token=intuit.sandbox.token_for(REALM),
        refresh_token="r",
        environment="production",
    )
    QuickBooks._drop(QuickBooks)  # the library keeps a process-wide instance
    client = QuickBooks(auth_client=auth, refresh_token="r", company_id=REALM, minorversion=75)
    client.api_url_v3 = f"{base}/v3"
    return client


async def test_python_quickbooks_through_the_proxy(intuit: Intuit, proxy: Running) -> None:
    via_proxy = client_for(intuit, proxy.url("").rstrip("/"))
    direct = client_for(intuit, intuit.url)

    def listing(client: Any) -> list[dict[str, Any]]:
        return [c.to_dict() for c in Customer.all(qb=client, max_results=1000)]

    expected = await asyncio.to_thread(listing, direct)
    intuit.sandbox.reset_calls()
    via_proxy = client_for(intuit, proxy.url("").rstrip("/"))
    assert await asyncio.to_thread(listing, via_proxy) == expected
    calls = intuit.sandbox.count()
    assert await asyncio.to_thread(listing, via_proxy) == expected
    first = expected[0]
    one = await asyncio.to_thread(lambda: Customer.get(first["Id"], qb=via_proxy).to_dict())
    assert one == first
    invoices = await asyncio.to_thread(
        lambda: [i.Id for i in Invoice.filter(CustomerRef=first["Id"], qb=via_proxy)]
    )
    assert intuit.sandbox.count() == calls + 1  # only the Invoice table's load

    # A write through the library is read back through the library.
    def rename() -> str:
        customer = Customer.get(first["Id"], qb=via_proxy)
        customer.CompanyName = "Written Through Ltd"
        customer.save(qb=via_proxy)
        again = Customer.filter(CompanyName="Written Through Ltd", qb=via_proxy)
        return str(again[0].Id)

    assert await asyncio.to_thread(rename) == first["Id"]
    assert isinstance(invoices, list)


# python-quickbooks' class for each cached entity (Class is TrackingClass there).
LIBRARY_CLASSES = {
    "Class": "quickbooks.objects.trackingclass.Class",
    "CompanyInfo": "quickbooks.objects.company_info.CompanyInfo",
}


def library_class(entity: str) -> Any:
    import importlib

    path = LIBRARY_CLASSES.get(entity, f"quickbooks.objects.{entity.lower()}.{entity}")
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


async def test_python_quickbooks_reads_every_entity_and_repeats_are_hits(
    intuit: Intuit, proxy: Running
) -> None:
    from quickbooks.objects.preferences import Preferences  # type: ignore[import-untyped]

    from qbproxy.core.catalog import ENTITIES

    def read_everything(client: Any) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for entity in ENTITIES:
            if entity.singleton:
                continue
            cls = library_class(entity.name)
            # `SELECT * FROM X MAXRESULTS 1000` (`SELECT *, Sku FROM Item` for items).
            listed = [o.to_dict() for o in cls.all(qb=client, max_results=1000)]
            assert listed, entity.name
            seen[entity.name] = listed
            seen[entity.name + " by id"] = cls.get(listed[0]["Id"], qb=client).to_dict()
        seen["CompanyInfo"] = library_class("CompanyInfo").get(REALM, qb=client).to_dict()
        seen["Preferences"] = Preferences.get(qb=client).to_dict()
        return seen

    expected = await asyncio.to_thread(read_everything, client_for(intuit, intuit.url))
    via_proxy = client_for(intuit, proxy.url("").rstrip("/"))
    assert await asyncio.to_thread(read_everything, via_proxy) == expected
    calls = intuit.sandbox.count()
    assert await asyncio.to_thread(read_everything, via_proxy) == expected
    assert intuit.sandbox.count() == calls  # every repeat answered from the cache
