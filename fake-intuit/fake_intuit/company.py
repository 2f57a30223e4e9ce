"""The two single objects of a company: CompanyInfo and Preferences, seeded with the realm
(queryable, readable, in CDC; CompanyInfo refuses writes, Preferences takes updates, whose
`ReportPrefs.ReportBasis` is the reports' default `accounting_method`)."""

from __future__ import annotations

from collections.abc import Callable

from fake_intuit.data import DAY, RealmData


def seed_company(data: RealmData, anchor: float, meta: Callable[[float], str]) -> None:
    created = meta(anchor - 800 * DAY)
    stamp = {"CreateTime": created, "LastUpdatedTime": created}
    realm = data.realm
    data.docs["CompanyInfo"]["1"] = {
        "CompanyName": f"Sandbox Company_US_{realm[-1]}",
        "LegalName": "Sandbox Company",
        "CompanyAddr": {
            "Id": "1",
            "Line1": "123 Sierra Way",
            "City": "San Pablo",
            "CountrySubDivisionCode": "CA",
            "PostalCode": "87999",
        },
        "CustomerCommunicationAddr": {"Id": "1", "Line1": "123 Sierra Way", "City": "San Pablo"},
        "PrimaryPhone": {"FreeFormNumber": "(555) 555-0100"},
        "CompanyStartDate": created[:10],
        "Country": "US",
        "Email": {"Address": "noreply@quickbooks.example"},
        "WebAddr": {},
        "FiscalYearStartMonth": "January",
        "SupportedLanguages": "en",
        "NameValue": [{"Name": "OfferingSku", "Value": "QuickBooks Online Plus"}],
        "domain": "QBO",
        "sparse": False,
        "Id": "1",
        "SyncToken": "4",
        "MetaData": dict(stamp),
    }
    data.docs["Preferences"]["1"] = {
        "AccountingInfoPrefs": {
            "TrackDepartments": True,
            "DepartmentTerminology": "Location",
            "ClassTrackingPerTxn": True,
            "CustomerTerminology": "Customers",
            "FirstMonthOfFiscalYear": "January",
        },
        "ProductAndServicesPrefs": {"ForSales": True, "ForPurchase": True, "QuantityOnHand": True},
        "SalesFormsPrefs": {
            "CustomTxnNumbers": False,
            "DefaultTerms": {"value": "3"},
            "AllowDiscount": True,
            "AllowShipping": False,
        },
        "VendorAndPurchasesPrefs": {"TrackingByCustomer": True, "BillableExpenseTracking": True},
        "TimeTrackingPrefs": {"UseServices": True, "BillCustomers": True},
        "TaxPrefs": {"UsingSalesTax": False},
        "CurrencyPrefs": {"HomeCurrency": {"value": "USD"}, "MultiCurrencyEnabled": False},
        "ReportPrefs": {"ReportBasis": "Accrual", "CalcAgingReportFromTxnDate": False},
        "domain": "QBO",
        "sparse": False,
        "Id": "1",
        "SyncToken": "0",
        "MetaData": dict(stamp),
    }
