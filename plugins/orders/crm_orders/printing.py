"""Quotes and orders as PDF (fpdf2), laid out by a TOML layout file a deployment can replace.

The built-in layout is ``crm_orders/layouts/default.toml``; ``[plugins.orders] pdf_layout``
names another file of the same shape: page settings, a heading, header and footer lines per
document kind, the columns of the line table and the labels of the totals. Texts take
``$placeholders`` filled with :class:`string.Template` (never evaluated): the layout is data.
Amounts come from the totals engine, so the printed lines add up to the printed totals.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.errors import ConfigError
from fpdf import FPDF

from crm_orders import documents
from crm_orders.settings import orders_settings
from crm_orders.totals import DocumentTotals

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["COLUMN_KEYS", "DEFAULT_LAYOUT", "Layout", "load_layout", "render_document"]

DEFAULT_LAYOUT = Path(__file__).resolve().parent / "layouts" / "default.toml"
COLUMN_KEYS = ("position", "description", "product", "quantity", "unit_price", "discount", "tax", "net", "total")
_KINDS = ("quote", "sales_order")
_SIZES = ("A3", "A4", "A5", "Letter", "Legal")
_LINE_FIELDS = (*documents.LINE_FIELDS, "id", "product_id.code")


@attrs.frozen
class Layout:
    """A checked layout file."""

    page: Mapping[str, Any]
    kinds: Mapping[str, Mapping[str, Any]]
    columns: tuple[tuple[str, str, float], ...]
    totals: Mapping[str, str]
    source: str


def _fail(source: str, key: str, message: str) -> ConfigError:
    return ConfigError(f"{source}: {key}: {message}", key=key)


def load_layout(path: str | Path | None = None) -> Layout:
    """Read and check a layout file (the built-in one for ``None``).

    :raises ConfigError: naming the file, the key and what is wrong.
    """
    file = Path(path) if path else DEFAULT_LAYOUT
    source = str(file)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the PDF layout {source}: {exc.strerror}; fix [plugins.orders] pdf_layout",
                          key="plugins.orders.pdf_layout") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the PDF layout {source} is not valid TOML: {exc}", key="plugins.orders.pdf_layout") from None
    page = {"size": "A4", "margin": 15, "font": "Helvetica", "font_file": "", "font_size": 10, **data.get("page", {})}
    if page["size"] not in _SIZES:
        raise _fail(source, "page.size", f"unknown size {page['size']!r}; choose among {', '.join(_SIZES)}")
    for key in ("margin", "font_size"):
        if not isinstance(page[key], int | float) or isinstance(page[key], bool) or not 0 < page[key] <= 100:
            raise _fail(source, f"page.{key}", f"give a number from 1 to 100, got {page[key]!r}")
    kinds = {}
    for kind in _KINDS:
        table = data.get(kind, {})
        for key in ("header", "footer"):
            if not isinstance(table.get(key, []), list) or not all(isinstance(t, str) for t in table.get(key, [])):
                raise _fail(source, f"{kind}.{key}", "give a list of texts")
        kinds[kind] = {"heading": str(table.get("heading", "")), "header": table.get("header", []), "footer": table.get("footer", [])}
    columns = []
    for number, column in enumerate(data.get("columns", []), start=1):
        key = column.get("key")
        if key not in COLUMN_KEYS:
            raise _fail(source, f"columns[{number}].key", f"unknown column {key!r}; choose among {', '.join(COLUMN_KEYS)}")
        width = column.get("width", 20)
        if not isinstance(width, int | float) or isinstance(width, bool) or width <= 0:
            raise _fail(source, f"columns[{number}].width", f"give a positive width in millimetres, got {width!r}")
        columns.append((str(column.get("label", key)), key, float(width)))
    if not columns:
        raise _fail(source, "columns", "the line table needs at least one column")
    totals = {"subtotal": "Subtotal", "document_discount": "Discount", "net": "Net total", "tax": "Tax $code $rate%",
              "total": "Total", **data.get("totals", {})}
    return Layout(page, kinds, tuple(columns), totals, source)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f").rstrip("0")
    return str(value)


def _fill(template: str, values: Mapping[str, Any]) -> str:
    return string.Template(template).safe_substitute({k: _text(v) for k, v in values.items()})


def _amount(value: Any) -> str:
    return f"{value.amount:,.{max(0, -value.amount.as_tuple().exponent)}f}" if value is not None else ""


def render_document(uow: UnitOfWork, entity: str, document_id: int, *, layout: Layout | None = None) -> bytes:
    """The PDF of quote or sales order *document_id*, as the actor may read it.

    :raises NotFoundError: for a document the actor may not read.
    """
    if entity not in _KINDS:
        raise ValueError(f"only quotes and sales orders print, not {entity!r}")
    layout = layout or load_layout(orders_settings(uow.crm).pdf_layout or None)
    header = uow.select(entity, fields=("id", "account_id.name", "opportunity_id.name")).where(id=document_id).first()
    record = uow.get(entity, document_id)
    lines = documents.lines_of(uow, documents.DOCUMENTS[entity], [record.id], fields=_LINE_FIELDS)[record.id]
    totals = documents.totals_of(record.values, lines)
    values = record.values
    number = f"Q-{values.get('root_id') or record.id}" if entity == "quote" else f"SO-{record.id}"
    if entity == "quote" and (values.get("version_number") or 1) > 1:
        number += f"-{values.get('version_number')}"
    fields = {
        "number": number, "title": values.get("title"), "account": (header or {}).get("account_id.name"),
        "opportunity": (header or {}).get("opportunity_id.name"), "state": values.get("state"),
        "date": values.get("pricing_date") or (values.get("created_at").date() if values.get("created_at") else ""),
        "valid_until": values.get("valid_until"), "version": values.get("version_number"),
        "currency": values.get("currency"), "quote": values.get("quote_id"),
    }
    return _pdf(layout, layout.kinds[entity], fields, lines, totals)


def _pdf(layout: Layout, kind: Mapping[str, Any], fields: Mapping[str, Any], lines: list[dict[str, Any]],
         totals: DocumentTotals) -> bytes:
    page = layout.page
    pdf = FPDF(format=page["size"])
    pdf.set_margins(page["margin"], page["margin"])
    pdf.set_auto_page_break(True, margin=page["margin"])
    font, size = page["font"], page["font_size"]
    unicode = bool(page["font_file"])
    if unicode:
        pdf.add_font("layout", fname=page["font_file"])
        font = "layout"

    def clean(text: str) -> str:
        return text if unicode else text.encode("latin-1", "replace").decode("latin-1")

    pdf.add_page()
    pdf.set_font(font, size=size + 6)
    pdf.cell(0, 10, clean(_fill(kind["heading"], fields)), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(font, size=size)
    for line in kind["header"]:
        pdf.cell(0, 6, clean(_fill(line, fields)), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    with pdf.table(col_widths=[w for _, _, w in layout.columns], text_align="LEFT", width=sum(w for _, _, w in layout.columns),
                   align="LEFT") as table:
        heading = table.row()
        for label, _, _ in layout.columns:
            heading.cell(clean(label))
        for line, amounts in zip(lines, totals.lines, strict=True):
            row = table.row()
            cells = {
                "position": line.get("position"), "description": line.get("description"),
                "product": line.get("product_id.code"), "quantity": line.get("quantity"),
                "unit_price": _amount(line.get("unit_price")),
                "discount": " + ".join(f"{_text(d)}%" for d in documents.parse_discounts(line.get("discounts"))),
                "tax": f"{_text(line.get('tax_rate') or Decimal(0))}%", "net": _amount(amounts.net),
                "total": _amount(amounts.total),
            }
            for _, key, _ in layout.columns:
                row.cell(clean(_text(cells[key])))
    pdf.ln(4)
    labels = layout.totals
    entries = [(labels["subtotal"], totals.subtotal, {})]
    if totals.document_discount.amount:
        entries.append((labels["document_discount"], totals.document_discount, {}))
    entries.append((labels["net"], totals.net, {}))
    entries.extend((labels["tax"], tax.tax, {"code": tax.code or "", "rate": tax.rate}) for tax in totals.taxes if tax.rate)
    entries.append((labels["total"], totals.total, {}))
    for label, money, extra in entries:
        pdf.cell(120, 6, clean(_fill(label, {**fields, **extra})))
        pdf.cell(0, 6, clean(f"{_amount(money)} {money.currency}"), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for line in kind["footer"]:
        pdf.multi_cell(0, 5, clean(_fill(line, fields)), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
