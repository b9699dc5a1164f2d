"""Invoices and credit notes as HTML and PDF, from the editable template ``invoice_pdf.html``.

The template is looked up first in the override folder (``EDGEBILL_TEMPLATE_DIR``, or the one given), then
among the shipped templates in ``daemon/billing/templates``. The PDF is rendered with WeasyPrint. The issuer
block shows the sender's display name from ``[smtp] sender`` and the dashboard address; an installation puts its
full legal details (address, tax number) in its own copy of the template.
"""

from __future__ import annotations

import logging
import os
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy.orm import Session

from daemon.billing.documents import settle
from daemon.billing.mail import SHIPPED_TEMPLATES, TEMPLATE_DIR_ENV
from daemon.config import Settings
from daemon.services import customers, invoices

__all__ = ["TEMPLATE", "invoice_context", "render_invoice_html", "render_invoice_pdf"]

log = logging.getLogger(__name__)

#: The template's file name.
TEMPLATE = "invoice_pdf.html"


def _environment(folder: Path | str | None) -> jinja2.Environment:
    chosen = folder if folder is not None else os.environ.get(TEMPLATE_DIR_ENV) or None
    shipped = str(SHIPPED_TEMPLATES)
    paths = [str(chosen), shipped] if chosen is not None else [shipped]
    return jinja2.Environment(loader=jinja2.FileSystemLoader(paths), autoescape=True, undefined=jinja2.StrictUndefined)


def invoice_context(session: Session, settings: Settings, invoice_id: int) -> dict[str, Any]:
    """Everything the template shows about one invoice or credit note."""
    record = invoices.get_invoice(session, invoice_id)
    customer = customers.get_customer(session, record.customer_id)
    cur = record.total.currency
    corrects = None
    if record.corrects_invoice_id is not None:
        corrects = invoices.get_invoice(session, record.corrects_invoice_id).display_number
    item = next((i for i in settle(session, record.customer_id, cur).items if i.invoice_id == record.id), None)
    name, address = parseaddr(settings.smtp.sender)
    lines = []
    for line in record.lines:
        period = None
        if line.period_start is not None and line.period_end is not None:
            period = (
                line.period_start.isoformat()
                if line.period_start == line.period_end
                else f"{line.period_start.isoformat()} to {line.period_end.isoformat()}"
            )
        lines.append(
            {
                "description": line.description,
                "period": period,
                "net": line.amount.to_json(),
                "tax": line.tax.to_json(),
                "gross": (line.amount + line.tax).to_json(),
            }
        )
    return {
        "title": "Invoice" if record.kind == "invoice" else "Credit note",
        "doc": {
            "number": record.display_number,
            "kind": record.kind,
            "status": record.status,
            "issued_on": record.issued_on.isoformat(),
            "due_on": record.due_on.isoformat(),
            "currency": cur.code,
            "subtotal": record.subtotal.to_json(),
            "tax": record.tax.to_json(),
            "total": record.total.to_json(),
        },
        "issuer": {
            "name": name or address,
            "lines": [address, settings.web.base_url] if name else [settings.web.base_url],
        },
        "customer": {
            "name": customer.name,
            "address": customer.address,
            "email": customer.email,
            "ref": f"C{customer.id}",
        },
        "corrects": corrects,
        "lines": lines,
        "paid": None if item is None or item.paid.is_zero() else item.paid.to_json(),
        "credited": None if item is None or item.credited.is_zero() else item.credited.to_json(),
        "due": (item.unpaid if item is not None else record.total).to_json(),
        "payment_url": settings.enforcement.payment_page_url,
    }


def render_invoice_html(
    session: Session, settings: Settings, invoice_id: int, *, template_dir: Path | str | None = None
) -> str:
    """The invoice as a complete HTML page."""
    context = invoice_context(session, settings, invoice_id)
    return _environment(template_dir).get_template(TEMPLATE).render(**context)


def render_invoice_pdf(
    session: Session, settings: Settings, invoice_id: int, *, template_dir: Path | str | None = None
) -> bytes:
    """The invoice as a PDF document (A4), rendered from its HTML."""
    import weasyprint  # noqa: PLC0415 -- heavy, and only PDF rendering needs it (with Pango)

    html = render_invoice_html(session, settings, invoice_id, template_dir=template_dir)
    pdf = weasyprint.HTML(string=html).write_pdf()
    if not isinstance(pdf, bytes):
        raise RuntimeError("the PDF renderer returned no document")
    log.info("invoice %s rendered as PDF (%s bytes)", invoice_id, len(pdf))
    return pdf
