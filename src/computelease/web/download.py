"""CSV and Excel downloads that finance staff open in a spreadsheet.

Every text cell goes through :func:`safe_cell`: a cell starting with ``= + - @`` (or a tab or carriage
return) would run as a formula in Excel or WPS (CSV injection), so it is prefixed with a quote. Amounts
are Decimals, not text, and keep their minus sign.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from fastapi import Response

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    if isinstance(value, str) and value[:1] in _FORMULA_START:
        return "'" + value
    return "" if value is None else value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    # A BOM so that Excel, which most operators open these with, reads the Chinese names as UTF-8.
    return "\ufeff" + buf.getvalue()


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Response:
    return Response(
        csv_text(header, rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
