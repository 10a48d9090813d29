"""Rosters for the import tests: rows built from API bodies, written as xlsx or csv."""

from __future__ import annotations

import csv
import io
from datetime import date

from openpyxl import Workbook

from services.registry.domain.census import COLUMNS, to_cells
from services.registry.domain.rules import id_check_char
from tests.support import child_payload

HEADERS = [c.header for c in COLUMNS]


def id_number(village: str, birth: str, n: int, gender: str = "female") -> str:
    """A valid number, the same for the same village and n. Its first six digits are the village's
    last six, not its county: tests share a database, and one ID number is on one open archive only."""
    seq = n % 50 * 2 + (1 if gender == "male" else 0)
    first17 = f"{village[6:]}{birth.replace('-', '')}{seq:03d}"
    return first17 + id_check_char(first17)


def good(n: int, village: str = "410523100201", **over) -> list:
    """A valid row; ``n`` makes the child another one (name, birth date)."""
    birth = date(2012 + n % 5, 1 + n % 12, 1 + n % 28).isoformat()
    body = child_payload(name=f"儿童{n}", village_code=village, birth_date=birth, **over)
    body.setdefault("id_number", id_number(village, birth, n))
    return to_cells(body)


def row(cells: list, **by_header) -> list:
    """``cells`` with some columns replaced, by header."""
    out = list(cells)
    for header, value in by_header.items():
        out[HEADERS.index(header)] = value
    return out


def xlsx(rows: list[list], headers: list[str] = HEADERS) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(headers)
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def csv_bytes(rows: list[list], encoding: str = "utf-8", headers: list[str] = HEADERS) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(headers)
    writer.writerows(["" if v is None else v for v in r] for r in rows)
    return buf.getvalue().encode(encoding)
