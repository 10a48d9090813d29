"""What every export (xlsx, csv, html) does: text a spreadsheet would run as a formula is written as
text (CSV/formula injection, OWASP), so a name like "=HYPERLINK(...)" stays a name; and a file that
carries names is watermarked with who exported it and when (导出水印)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.clock import CHINA

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """A text cell starting like a formula, prefixed with ' (shown as typed, never evaluated)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


@dataclass(frozen=True)
class Watermark:
    """Who exported a file (the token's subject and role) and when: on every export carrying names."""

    subject: str
    role: str
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def of(cls, principal: Any, at: datetime | None = None) -> "Watermark":
        """From a ``shared.auth.Principal``."""
        return cls(principal.subject, principal.role.value, at or datetime.now(UTC))

    @property
    def line(self) -> str:
        when = self.at.astimezone(CHINA).isoformat(timespec="seconds")
        return f"导出人 exported by: {self.subject[:100]} ({self.role}), {when}"


SHEET = "导出信息"  # the visible sheet of the watermark, last, so that the first sheet stays as it was


def watermark_workbook(wb: Any, mark: Watermark) -> None:
    """An openpyxl workbook (also write-only), before it is saved: the line in every sheet's printed
    header and footer, in the document properties, and on a last visible sheet of its own."""
    printed = mark.line.replace("&", "&&")  # & starts a code in a header or footer
    for ws in wb.worksheets:
        ws.oddHeader.center.text = ws.oddFooter.center.text = printed
    props = wb.properties
    props.creator = props.lastModifiedBy = mark.subject[:100]
    props.description = props.subject = mark.line
    props.created = props.modified = mark.at.astimezone(UTC).replace(tzinfo=None)
    sheet = wb.create_sheet(SHEET)
    sheet.append([mark.line])
    sheet.append(["本文件含个人信息，仅限依法履职使用，不得转发 (personal data: for official duties only, do not forward)"])


_BODY = re.compile(r"<body\b[^>]*>", re.IGNORECASE)


def watermark_html(page: str, mark: Watermark) -> str:
    """A visible first line of the page's body (printed with it)."""
    line = f'<p class="shouhu-watermark" style="font-size:small;color:#666">{html.escape(mark.line)}</p>'
    body = _BODY.search(page)
    return page[:body.end()] + line + page[body.end():] if body else line + page
