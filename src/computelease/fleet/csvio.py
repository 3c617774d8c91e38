"""Nodes as CSV, pure: parse a file into rows (every bad cell reported with its line) and write rows.

Operators keep their fleet in spreadsheets, so the reader is lenient where spreadsheets are
sloppy and strict where a wrong guess would corrupt the fleet:

- UTF-8 with or without BOM, and GB18030 (what Excel on a Chinese Windows saves "CSV" as);
- column order free, names case-insensitive; an unknown column is an error (a typo would drop data);
- amounts may carry thousands separators (``2,300,000.00``); dates ``2025-03-01`` or ``2025/3/1``;
- blank rows are skipped; line numbers are those a spreadsheet shows (the header is line 1).

Text cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``…) are written with a
leading apostrophe, which the reader removes again, so exports are safe to open and still round-trip.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from computelease.fleet.core import NodeState
from computelease.money import CURRENCIES

COLUMNS = (
    "serial",
    "sku",
    "model",
    "site",
    "rack",
    "fabric",
    "state",
    "state_since",
    "purchase_cost",
    "currency",
    "purchase_date",
    "supplier",
    "gpu_uuids",
    "gpu_serials",
    "note",
)
REQUIRED = ("serial", "sku", "site", "state", "purchase_cost", "purchase_date")
LIST_SEPARATOR = ";"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_TEXT = ("serial", "rack", "fabric", "supplier", "note", "gpu_uuids", "gpu_serials")


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class NodeRow:
    """One node as a spreadsheet holds it. ``state_since`` without a zone is the site's local time."""

    line: int
    serial: str
    sku: str
    site: str
    state: NodeState
    purchase_cost: Decimal
    purchase_date: date
    model: str | None = None
    rack: str | None = None
    fabric: str | None = None
    state_since: datetime | None = None
    currency: str = "CNY"
    supplier: str = ""
    gpu_uuids: tuple[str | None, ...] = ()
    gpu_serials: tuple[str | None, ...] = ()
    note: str = ""


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="replace")


def _unescape(value: str) -> str:
    if value.startswith("'") and value[1:2] and value[1] in _FORMULA_START:
        return value[1:]
    return value


def _escape(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text.replace(",", "").replace("_", ""))
    except InvalidOperation:
        raise ValueError(f"purchase_cost {text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"purchase_cost must be zero or more, got {text!r}")
    if value != value.quantize(Decimal("0.01")):
        raise ValueError(f"purchase_cost {text!r} has more than 2 decimal places")
    return value.quantize(Decimal("0.01"))


def _date(text: str) -> date:
    for fmt in ("%Y-%m-%d", "%Y/%m/%d"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"purchase_date {text!r} is not a date; write YYYY-MM-DD")


def _datetime(text: str) -> datetime:
    candidate = text.replace("/", "-")
    try:
        return datetime.fromisoformat(candidate)
    except ValueError:
        raise ValueError(
            f"state_since {text!r} is not a date-time; write 2025-03-01T09:30:00+08:00 "
            "(without an offset it is the site's local time)"
        ) from None


def _list(text: str) -> tuple[str | None, ...]:
    if not text:
        return ()
    return tuple(part.strip() or None for part in text.split(LIST_SEPARATOR))


def parse_nodes(data: bytes | str) -> tuple[list[NodeRow], list[RowError]]:
    """Every row that parses, and every problem of the rows that do not (all of them, not the first)."""
    text = decode(data) if isinstance(data, bytes) else data
    reader = csv.reader(io.StringIO(text, newline=""))
    errors: list[RowError] = []
    try:
        header = next(reader)
    except StopIteration:
        return [], [
            RowError(1, f"the file is empty; the first line must name the columns: {', '.join(COLUMNS)}")
        ]
    except csv.Error as exc:
        return [], [RowError(1, f"not readable as CSV: {exc}")]
    names = [h.strip().lower() for h in header]
    unknown = [h for h in names if h and h not in COLUMNS]
    missing = [c for c in REQUIRED if c not in names]
    repeated = sorted({h for h in names if h and names.count(h) > 1})
    if unknown or missing or repeated:
        parts = []
        if missing:
            parts.append(f"missing columns: {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown columns: {', '.join(unknown)} (known: {', '.join(COLUMNS)})")
        if repeated:
            parts.append(f"repeated columns: {', '.join(repeated)}")
        return [], [RowError(1, "; ".join(parts))]

    rows: list[NodeRow] = []
    line = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(RowError(line, f"not readable as CSV: {exc}"))
            break
        start, line = line, reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(names) and any(c.strip() for c in cells[len(names) :]):
            errors.append(
                RowError(start, f"has {len(cells)} cells but the header names {len(names)} columns")
            )
            continue
        raw = {
            name: _unescape(cells[i].strip()) if i < len(cells) else ""
            for i, name in enumerate(names)
            if name
        }
        row, problems = _row(start, raw)
        errors += [RowError(start, p) for p in problems]
        if row is not None:
            rows.append(row)
    return rows, errors


def _row(line: int, raw: dict[str, str]) -> tuple[NodeRow | None, list[str]]:
    problems = [f"{name} is empty" for name in REQUIRED if not raw.get(name)]
    values: dict[str, object] = {}
    state = raw.get("state", "")
    if state:
        try:
            values["state"] = NodeState(state.lower())
        except ValueError:
            problems.append(f"state {state!r} is not one of {', '.join(NodeState)}")
    for name, parse in (("purchase_cost", _amount), ("purchase_date", _date), ("state_since", _datetime)):
        if raw.get(name):
            try:
                values[name] = parse(raw[name])
            except ValueError as exc:
                problems.append(str(exc))
    currency = (raw.get("currency") or "CNY").upper()
    if currency not in CURRENCIES:
        problems.append(f"currency {currency!r} is not one of {', '.join(CURRENCIES)}")
    for name, limit in (("serial", 100), ("fabric", 100), ("rack", 50), ("supplier", 200), ("note", 500)):
        if len(raw.get(name, "")) > limit:
            problems.append(f"{name} is longer than {limit} characters")
    if problems:
        return None, problems
    return (
        NodeRow(
            line=line,
            serial=raw["serial"],
            sku=raw["sku"],
            site=raw["site"],
            model=raw.get("model") or None,
            rack=raw.get("rack") or None,
            fabric=raw.get("fabric") or None,
            currency=currency,
            supplier=raw.get("supplier", ""),
            note=raw.get("note", ""),
            gpu_uuids=_list(raw.get("gpu_uuids", "")),
            gpu_serials=_list(raw.get("gpu_serials", "")),
            **values,  # type: ignore[arg-type]
        ),
        [],
    )


def _cell(name: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):
        if not any(value):
            return ""
        text = LIST_SEPARATOR.join(v or "" for v in value)
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    elif isinstance(value, Decimal):
        text = f"{value:f}"
    else:
        text = str(value)
    return _escape(text) if name in _TEXT else text


def write_nodes(rows: Iterable[NodeRow]) -> bytes:
    """UTF-8 with a BOM, so Excel shows Chinese site names and suppliers correctly."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_cell(name, getattr(row, name)) for name in COLUMNS])
    return buf.getvalue().encode("utf-8-sig")
