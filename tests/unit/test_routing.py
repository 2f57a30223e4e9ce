"""Request classification: what is answered locally, what is a write, what is forwarded."""

import pytest

from qbproxy.core.catalog import (
    ATTACHABLE,
    BILL_PAYMENT,
    COMPANY_INFO,
    CUSTOMER,
    INVOICE,
    PAYMENT,
    PREFERENCES,
    VENDOR,
)
from qbproxy.core.reports import ReportKey
from qbproxy.core.routing import (
    BatchRoute,
    Passthrough,
    QueryRoute,
    ReadRoute,
    ReportRoute,
    Route,
    WriteRoute,
    classify,
)

R = "9130350000000001"
BASE = f"/v3/company/{R}"


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        (
            "GET",
            f"{BASE}/query",
            "query=select%20*%20from%20Customer",
            QueryRoute(R, "select * from Customer"),
        ),
        (
            "GET",
            f"{BASE}/query",
            "query=select+*+from+Invoice&minorversion=75",
            QueryRoute(R, "select * from Invoice"),
        ),
        ("GET", f"{BASE}/query", "minorversion=70&format=json&query=x", QueryRoute(R, "x")),
        ("POST", f"{BASE}/query", "minorversion=75", QueryRoute(R, None)),
        ("POST", f"{BASE}/query", "", QueryRoute(R, None)),
        ("GET", f"{BASE}/customer/12", "", ReadRoute(R, CUSTOMER, "12")),
        ("GET", f"{BASE}/invoice/130", "minorversion=75", ReadRoute(R, INVOICE, "130")),
        ("GET", f"{BASE}/payment/7", "minorversion=4", ReadRoute(R, PAYMENT, "7")),
        ("GET", f"{BASE}/vendor/3", "", ReadRoute(R, VENDOR, "3")),
        ("GET", f"{BASE}/billpayment/3", "", ReadRoute(R, BILL_PAYMENT, "3")),
        ("GET", f"{BASE}/attachable/5", "", ReadRoute(R, ATTACHABLE, "5")),
        ("GET", f"{BASE}/companyinfo/{R}", "minorversion=75", ReadRoute(R, COMPANY_INFO, None)),
        ("GET", f"{BASE}/preferences", "", ReadRoute(R, PREFERENCES, None)),
        ("POST", f"{BASE}/invoice", "minorversion=75", WriteRoute(R, "invoice", "create/update")),
        ("POST", f"{BASE}/invoice", "operation=delete", WriteRoute(R, "invoice", "delete")),
        ("POST", f"{BASE}/invoice", "operation=void", WriteRoute(R, "invoice", "void")),
        ("POST", f"{BASE}/customer", "operation=update", WriteRoute(R, "customer", "update")),
        (
            "POST",
            f"{BASE}/invoice/130/send",
            "sendTo=a@b.c",
            WriteRoute(R, "invoice", "send", "130"),
        ),
        ("POST", f"{BASE}/creditmemo", "", WriteRoute(R, "creditmemo", "create/update")),
        ("POST", f"{BASE}/upload", "", WriteRoute(R, "upload", "create/update")),
        ("PUT", f"{BASE}/customer", "", WriteRoute(R, "customer", "create/update")),
        ("DELETE", f"{BASE}/invoice/5", "", WriteRoute(R, "invoice", "create/update", "5")),
        ("POST", f"{BASE}/batch", "minorversion=75", BatchRoute(R)),
    ],
)
def test_recognised(method: str, path: str, query: str, expected: Route) -> None:
    assert classify(method, path, query) == expected


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        # Other reads are forwarded untouched.
        ("GET", f"{BASE}/invoice/130/pdf", "", Passthrough(R)),
        # CompanyInfo by another id than the realm's, Preferences with an id: Intuit's.
        ("GET", f"{BASE}/companyinfo/1", "", Passthrough(R)),
        ("GET", f"{BASE}/preferences/1", "", Passthrough(R)),
        ("GET", f"{BASE}/preferences", "include=x", Passthrough(R)),
        (
            "GET",
            f"{BASE}/cdc",
            "entities=Customer&changedSince=2024-01-01T00:00:00+07:00",
            Passthrough(R),
        ),
        ("GET", f"{BASE}/vendor/3x", "", Passthrough(R)),
        ("GET", f"{BASE}/upload/3", "", Passthrough(R)),
        ("GET", f"{BASE}/download/3", "", Passthrough(R)),
        ("GET", f"{BASE}/attachable/3/extra", "", Passthrough(R)),
        # Reports the catalog does not know, or parameters it does not, are Intuit's.
        ("GET", f"{BASE}/reports/ProfitAndLossDetail", "", Passthrough(R)),
        ("GET", f"{BASE}/reports/profitandloss", "", Passthrough(R)),
        ("GET", f"{BASE}/reports/ProfitAndLoss", "nonsense=1", Passthrough(R)),
        ("GET", f"{BASE}/reports/ProfitAndLoss", "format=xml", Passthrough(R)),
        ("GET", f"{BASE}/reports/ProfitAndLoss", "customer=1&customer=2", Passthrough(R)),
        ("GET", f"{BASE}/reports/ProfitAndLoss/x", "", Passthrough(R)),
        ("HEAD", f"{BASE}/reports/ProfitAndLoss", "", Passthrough(R)),
        # A read with a parameter that may change its answer is Intuit's.
        ("GET", f"{BASE}/invoice/130", "include=invoiceLink", Passthrough(R)),
        ("GET", f"{BASE}/customer/abc", "", Passthrough(R)),
        ("GET", f"{BASE}/Customer/1", "", Passthrough(R)),
        ("GET", f"{BASE}/customer/1/extra", "", Passthrough(R)),
        # Queries that are not plainly queries.
        ("GET", f"{BASE}/query", "", Passthrough(R)),
        ("GET", f"{BASE}/query", "query=a&query=b", Passthrough(R)),
        ("GET", f"{BASE}/query", "query=a&include=deleted", Passthrough(R)),
        ("HEAD", f"{BASE}/query", "query=a", Passthrough(R)),
        # Not a realm path at all.
        ("GET", "/v3/company/abc/customer/1", "", Passthrough()),
        ("GET", "/v3/company//customer/1", "", Passthrough()),
        ("GET", "/v3/company", "", Passthrough()),
        ("GET", "/v3/other", "", Passthrough()),
    ],
)
def test_forwarded(method: str, path: str, query: str, expected: Route) -> None:
    assert classify(method, path, query) == expected


def test_known_reports_are_report_routes() -> None:
    route = classify(
        "GET", f"{BASE}/reports/ProfitAndLoss", "minorversion=75&start_date=2024-01-01"
    )
    assert route == ReportRoute(
        R, ReportKey("ProfitAndLoss", (("start_date", "2024-01-01"),), True)
    )
