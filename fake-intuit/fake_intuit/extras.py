"""Endpoints the proxy only forwards: reports (one streamed and as large as asked, for
streaming tests) and invoice PDFs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from multidict import MultiMapping

from fake_intuit import reports
from fake_intuit.envelopes import Reply, dumps

if TYPE_CHECKING:
    from fake_intuit.state import Sandbox

BIG_REPORT_CHUNK_ROWS = 500


def _header(sb: Sandbox, name: str) -> dict[str, Any]:
    now = sb.now()
    return {
        "Time": sb.clock.meta(now),
        "ReportName": name,
        "ReportBasis": "Accrual",
        "StartPeriod": sb.clock.date(now - 365 * 86_400),
        "EndPeriod": sb.clock.date(now),
        "Currency": "USD",
        "Option": [{"Name": "NoReportData", "Value": "false"}],
    }


_COLUMNS = {
    "Column": [
        {"ColTitle": "", "ColType": "Account"},
        {"ColTitle": "Total", "ColType": "Money"},
    ]
}


def report(sb: Sandbox, realm: str, name: str, params: MultiMapping[str]) -> dict[str, Any]:
    """A report computed from the realm's data at this moment (`reports.build`)."""
    now = sb.now()
    today = sb.clock.at(now).date()
    return reports.build(sb.realms[realm], name, params, today, sb.clock.meta(now))


def big_report(sb: Sandbox, params: MultiMapping[str]) -> Reply:
    """`reports/BigReport?rows=N`: as large as asked, streamed (for streaming tests)."""
    try:
        rows = max(0, int(params.get("rows", "50000")))
    except ValueError:
        rows = 50_000
    time = sb.clock.body_time(sb.now())
    return Reply(200, stream=_big_report(_header(sb, "BigReport"), _COLUMNS, rows, time))


async def _big_report(
    header: dict[str, Any], columns: dict[str, Any], rows: int, time: str
) -> AsyncIterator[bytes]:
    """About 100 bytes a row, written BIG_REPORT_CHUNK_ROWS rows at a time."""
    yield dumps({"Header": header, "Columns": columns})[:-1] + b',"Rows":{"Row":['
    for start in range(0, rows, BIG_REPORT_CHUNK_ROWS):
        chunk = [
            dumps(
                {
                    "ColData": [{"value": f"Account {n:07d}"}, {"value": f"{n * 1.25:.2f}"}],
                    "type": "Data",
                }
            )
            for n in range(start, min(rows, start + BIG_REPORT_CHUNK_ROWS))
        ]
        yield (b"," if start else b"") + b",".join(chunk)
    yield b']},"time":' + dumps(time) + b"}"


def pdf_bytes(title: str) -> bytes:
    """A minimal valid one-page PDF naming the invoice."""
    text = title.encode("latin-1", "replace")
    stream = b"BT /F1 18 Tf 72 720 Td (" + text + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
