"""The assistant trace's writes across entity types, each followed by reads of what it
changed: the document (by the Id the write returns), its list, the balances it moves and the
reports it can change. Bodies are ones the fake Intuit accepts (its shapes.py)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from typing import Any

from bench.assistant_calls import (
    AP,
    CHECKING,
    EXPENSE_ACCOUNTS,
    INVENTORY_ITEM,
    SAVINGS,
    SERVICE_ITEMS,
    SERVICES_INCOME,
    UNDEPOSITED,
    ConnectorClient,
    NodeClient,
    Realm,
)
from bench.trace import CREATED, Call

WRITES = (
    ("create_bill", 14),
    ("pay_bill", 10),
    ("create_invoice", 12),
    ("receive_payment", 10),
    ("create_vendor", 5),
    ("update_vendor", 5),
    ("create_item", 5),
    ("create_journal_entry", 7),
    ("create_purchase", 7),
    ("create_sales_receipt", 6),
    ("create_estimate", 4),
    ("create_credit_memo", 4),
    ("update_customer", 4),
    ("create_transfer", 3),
    ("create_vendor_credit", 2),
    ("create_purchase_order", 1),
    ("create_time_activity", 1),
)


class WriteSteps:
    """Mixed into the generator, which provides these."""

    rng: random.Random
    today: dt.date

    def some(self, values: Sequence[str]) -> str:
        return self.rng.choice(values)

    def report(self, b: NodeClient | ConnectorClient, name: str) -> Call:
        raise NotImplementedError

    def write_steps(
        self, intent: str, b: NodeClient, c: ConnectorClient, data: Realm, tag: str
    ) -> list[list[Call]]:
        """The write, then what it changed: the document, its list, the balances it moves
        and the reports it can change."""
        rng = self.rng
        body: dict[str, Any]
        day = self.today.isoformat()
        amount = float(rng.randrange(50, 2000))
        customer, vendor = self.some(data.customers), self.some(data.vendors)
        expense = self.some(EXPENSE_ACCOUNTS)
        expense_line = {
            "Amount": amount,
            "DetailType": "AccountBasedExpenseLineDetail",
            "AccountBasedExpenseLineDetail": {"AccountRef": {"value": expense}},
        }
        item, price = rng.choice(SERVICE_ITEMS)
        qty = rng.randint(1, 6)
        sales_line = {
            "Amount": round(price * qty, 2),
            "DetailType": "SalesItemLineDetail",
            "Description": f"assistant {tag}",
            "SalesItemLineDetail": {"ItemRef": {"value": item}, "Qty": qty, "UnitPrice": price},
        }
        if intent == "create_bill":
            lines: list[dict[str, Any]] = [expense_line]
            if rng.random() < 0.4:  # restock: the inventory item's quantity moves too
                lines.append(
                    {
                        "Amount": 125.0 * qty,
                        "ItemBasedExpenseLineDetail": {
                            "ItemRef": {"value": INVENTORY_ITEM},
                            "Qty": qty,
                        },
                    }
                )
            body = {"VendorRef": {"value": vendor}, "TxnDate": day, "Line": lines}
            return [
                [b.write("Bill", "create", body)],
                [
                    b.get("Bill", CREATED),
                    b.get("Vendor", vendor),
                    b.find("Bill", f"VendorRef = '{vendor}'", order="TxnDate"),
                    b.get("Account", AP),
                    b.get("Item", INVENTORY_ITEM),
                ],
                [self.report(b, "AgedPayables"), self.report(b, "VendorExpenses")],
            ]
        if intent == "pay_bill":
            bill, owner = rng.choice(data.open_bills)
            body = {
                "VendorRef": {"value": owner},
                "PayType": "Check",
                "CheckPayment": {"BankAccountRef": {"value": CHECKING}},
                "TxnDate": day,
            }
            share = rng.choice((1.0, 0.5))
            return [
                [b.write("BillPayment", "pay_bill", body, id_=bill, read="Bill", share=share)],
                [
                    b.get("BillPayment", CREATED),
                    b.get("Bill", bill),
                    b.get("Vendor", owner),
                    b.get("Account", CHECKING),
                    b.find("BillPayment", f"VendorRef = '{owner}'", order="TxnDate"),
                ],
                [self.report(b, "AgedPayables"), self.report(b, "BalanceSheet")],
            ]
        if intent == "create_invoice":
            body = {"CustomerRef": {"value": customer}, "TxnDate": day, "Line": [sales_line]}
            return [
                [b.write("Invoice", "create", body)],
                [
                    b.get("Invoice", CREATED),
                    b.get("Customer", customer),
                    b.find("Invoice", f"CustomerRef = '{customer}'", order="TxnDate"),
                ],
                [self.report(b, "AgedReceivables"), self.report(b, "CustomerBalance")],
            ]
        if intent == "receive_payment":
            invoice, owner = rng.choice(data.open_invoices)
            data_ = {"CustomerRef": owner, "InvoiceId": invoice, "share": rng.choice((1.0, 0.5))}
            write = Call(
                "receive_payment",
                "POST",
                f"{b.base}/payment?{b.tail()}",
                entity="Payment",
                read_path=f"{b.base}/invoice/{invoice}?{b.tail()}",
                data=data_,
            )
            return [
                [write],
                [
                    b.get("Payment", CREATED),
                    b.get("Invoice", invoice),
                    b.get("Customer", owner),
                    b.find("Payment", f"CustomerRef = '{owner}'", order="TxnDate"),
                ],
                [self.report(b, "CustomerBalance"), self.report(b, "AgedReceivableDetail")],
            ]
        if intent == "create_vendor":
            name = f"Assistant Supplier {tag}"
            body = {
                "DisplayName": name,
                "CompanyName": name,
                "PrimaryEmailAddr": {"Address": f"{tag}@supplier.example"},
            }
            return [
                [b.write("Vendor", "create", body)],
                [b.get("Vendor", CREATED), b.find("Vendor"), b.find("Vendor", count=True)],
                [c.query("SELECT Id, DisplayName FROM Vendor STARTPOSITION 1 MAXRESULTS 100")],
            ]
        if intent == "update_vendor":
            phone = {"PrimaryPhone": {"FreeFormNumber": f"(555) 020-{rng.randrange(10000):04d}"}}
            return [
                [b.write("Vendor", "sparse_update", phone, id_=vendor)],
                [b.get("Vendor", vendor), b.find("Vendor")],
            ]
        if intent == "create_item":
            body = {
                "Name": f"Assistant Service {tag}",
                "Type": "Service",
                "Sku": f"AS-{tag}",
                "UnitPrice": float(rng.randrange(20, 200)),
                "IncomeAccountRef": {"value": SERVICES_INCOME},
            }
            return [
                [b.write("Item", "create", body)],
                [b.get("Item", CREATED), b.find("Item"), c.items_with_sku(1)],
            ]
        if intent == "create_journal_entry":
            body = {
                "TxnDate": day,
                "PrivateNote": f"assistant {tag}",
                "Line": [
                    _journal_line(amount, "Debit", expense),
                    _journal_line(amount, "Credit", CHECKING),
                ],
            }
            return [
                [b.write("JournalEntry", "create", body)],
                [
                    b.get("JournalEntry", CREATED),
                    b.find("JournalEntry", f"TxnDate >= '{day}'"),
                    b.get("Account", CHECKING),
                    b.get("Account", expense),
                ],
                [self.report(b, "TrialBalance"), self.report(b, "ProfitAndLoss")],
                [self.report(b, "GeneralLedger")],
            ]
        if intent == "create_purchase":
            body = {
                "PaymentType": "Cash",
                "AccountRef": {"value": CHECKING},
                "EntityRef": {"value": vendor, "type": "Vendor"},
                "TxnDate": day,
                "Line": [expense_line],
            }
            return [
                [b.write("Purchase", "create", body)],
                [
                    b.get("Purchase", CREATED),
                    b.get("Account", CHECKING),
                    b.find("Purchase", f"TxnDate >= '{day}'"),
                ],
                [self.report(b, "ProfitAndLoss"), self.report(b, "CashFlow")],
                [self.report(b, "VendorExpenses")],
            ]
        if intent == "create_sales_receipt":
            line = {
                "Amount": 300.0 * qty,
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": INVENTORY_ITEM},
                    "Qty": qty,
                    "UnitPrice": 300.0,
                },
            }
            body = {"CustomerRef": {"value": customer}, "TxnDate": day, "Line": [line]}
            return [
                [b.write("SalesReceipt", "create", body)],
                [
                    b.get("SalesReceipt", CREATED),
                    b.get("Item", INVENTORY_ITEM),
                    b.get("Account", UNDEPOSITED),
                    b.find("SalesReceipt", f"CustomerRef = '{customer}'", order="TxnDate"),
                ],
                [self.report(b, "CustomerSales"), self.report(b, "TransactionList")],
            ]
        if intent == "create_estimate":
            body = {"CustomerRef": {"value": customer}, "TxnDate": day, "Line": [sales_line]}
            return [
                [b.write("Estimate", "create", body)],
                [
                    b.get("Estimate", CREATED),
                    b.find("Estimate", f"CustomerRef = '{customer}'", order="TxnDate"),
                    b.find("Estimate", count=True),
                ],
            ]
        if intent == "create_credit_memo":
            body = {"CustomerRef": {"value": customer}, "TxnDate": day, "Line": [sales_line]}
            return [
                [b.write("CreditMemo", "create", body)],
                [
                    b.get("CreditMemo", CREATED),
                    b.get("Customer", customer),
                    b.find("CreditMemo", f"CustomerRef = '{customer}'", order="TxnDate"),
                ],
                [self.report(b, "CustomerBalance"), self.report(b, "AgedReceivables")],
            ]
        if intent == "update_customer":
            notes = {"Notes": f"Updated by the assistant ({tag})"}
            return [
                [b.write("Customer", "sparse_update", notes, id_=customer)],
                [b.get("Customer", customer), b.find("Customer")],
            ]
        if intent == "create_transfer":
            body = {
                "FromAccountRef": {"value": CHECKING},
                "ToAccountRef": {"value": SAVINGS},
                "Amount": amount,
                "TxnDate": day,
            }
            return [
                [b.write("Transfer", "create", body)],
                [
                    b.get("Transfer", CREATED),
                    b.get("Account", CHECKING),
                    b.get("Account", SAVINGS),
                    b.find("Transfer"),
                ],
                [self.report(b, "BalanceSheet")],
            ]
        if intent == "create_vendor_credit":
            body = {"VendorRef": {"value": vendor}, "TxnDate": day, "Line": [expense_line]}
            return [
                [b.write("VendorCredit", "create", body)],
                [b.get("VendorCredit", CREATED), b.get("Vendor", vendor), b.find("VendorCredit")],
                [self.report(b, "AgedPayables")],
            ]
        if intent == "create_purchase_order":
            body = {"VendorRef": {"value": vendor}, "TxnDate": day, "Line": [expense_line]}
            return [
                [b.write("PurchaseOrder", "create", body)],
                [b.get("PurchaseOrder", CREATED), b.find("PurchaseOrder")],
            ]
        if intent == "create_time_activity":
            body = {
                "NameOf": "Employee",
                "EmployeeRef": {"value": self.some(data.employees)},
                "CustomerRef": {"value": customer},
                "TxnDate": day,
                "Hours": rng.randint(1, 8),
                "Minutes": 0,
            }
            return [
                [b.write("TimeActivity", "create", body)],
                [b.get("TimeActivity", CREATED), b.find("TimeActivity")],
            ]
        raise AssertionError(intent)


def _journal_line(value: float, posting: str, account: str) -> dict[str, Any]:
    return {
        "Amount": value,
        "DetailType": "JournalEntryLineDetail",
        "JournalEntryLineDetail": {"PostingType": posting, "AccountRef": {"value": account}},
    }
