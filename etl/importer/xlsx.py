"""Spreadsheets (.xlsx, 电子表格): one sheet read as a table with a WKT or x/y column.

The workbook is a zip: its members are checked like a submitted zip (count, sizes, ratio)
before openpyxl opens it, read-only and streaming, through defusedxml. The sheet is the one
named by `--sheet`, else the only sheet whose header row (any of the first 20 rows, so title
rows above it are skipped) names a geometry column. Rows keep their spreadsheet numbers, so the
report says "sheet 图斑 row 7". Cells become text: numbers without a spurious ".0", dates as
ISO dates; formulas give the value the spreadsheet saved (a formula never calculated is an
error of its row); cells of a merged range take the range's top-left value; Excel error
values (#REF! …) and codes stored as numbers beyond Excel's 15 digits are errors of their row.
"""
from __future__ import annotations

import re
import zipfile
from datetime import date, datetime, time
from pathlib import Path

import openpyxl
from defusedxml.ElementTree import iterparse
from openpyxl.utils.cell import coordinate_to_tuple, get_column_letter, range_boundaries
from openpyxl.utils.datetime import from_excel

from etl.importer import safety
from etl.importer.errors import ReadFailed
from etl.importer.readers import NO_GEOMETRY_COLUMN, Source, geometry_columns, table_source
from etl.importer.safety import Limits

HEADER_ROWS = 20                  # the header row is looked for in the first rows of a sheet
EXCEL_ERRORS = {"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "#GETTING_DATA"}
EXCEL_DIGITS = 15                 # Excel keeps 15 significant digits of a number
_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_SERIAL = re.compile(r"^\d{1,5}(\.\d+)?$")   # day numbers up to 99999 (year 2173)


def read_xlsx(path: Path, display: str, limits: Limits, sheet: str | None) -> Source:
    safety.check_container(path, display, limits)
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:    # openpyxl/zipfile/XML errors all mean "not a readable workbook"
        raise ReadFailed(f"{display}: cannot be read as an XLSX workbook ({_message(exc)})") from None
    try:
        ws, header_row, header, note = _pick_sheet(wb, display, sheet)
        where = f"{display} sheet {ws.title}"
        if len(header) > limits.max_columns:
            raise ReadFailed(f"{where}: the header row has {len(header)} columns, more than the limit of "
                             f"{limits.max_columns:,d}")
        merged, formulas = _structure(wb, ws, where)
        problems: list[tuple[int, str | None, str]] = []
        notes = [note]
        records = _records(ws, header_row, header, merged, formulas.unsaved, problems, where, limits)
        source = table_source(where, header, records, limits.max_features, notes=notes, sheet=ws.title,
                              excel_epoch=wb.epoch, problems=problems)
        if merged:
            source.notes.append(f"{len(merged)} merged cell range(s) filled with their top-left value "
                                f"(e.g. {merged[0].ref})")
        if formulas.saved:
            source.notes.append(f"{formulas.saved} formula cell(s) read as the values the spreadsheet saved")
        return source
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:   # a member failing its CRC, bad XML
        raise ReadFailed(f"{display}: cannot be read as an XLSX workbook ({_message(exc)})") from None
    finally:
        wb.close()


def _message(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


# --- choosing the sheet and its header ------------------------------------------------------------

def _pick_sheet(wb, display: str, wanted: str | None):
    names = wb.sheetnames
    if wanted is not None:
        if wanted not in names:
            raise ReadFailed(f"{display}: no sheet {wanted!r}; its sheets are {', '.join(map(repr, names))}")
        ws = wb[wanted]
        found = _header(ws)
        if found is None:
            raise ReadFailed(f"{display} sheet {wanted}: {NO_GEOMETRY_COLUMN} in its first {HEADER_ROWS} rows")
        return ws, *found, f"sheet {wanted!r} read (chosen with --sheet)"
    candidates = [(ws, found) for ws in wb.worksheets if (found := _header(ws)) is not None]
    if not candidates:
        raise ReadFailed(f"{display}: no sheet has a geometry column (WKT, or x/y, lon/lat, 经度/纬度) in its first "
                         f"{HEADER_ROWS} rows; sheets: {', '.join(map(repr, names))}")
    if len(candidates) > 1:
        listed = ", ".join(repr(ws.title) for ws, _ in candidates)
        raise ReadFailed(f"{display}: several sheets have geometry columns ({listed}); choose one with --sheet")
    ws, found = candidates[0]
    others = [n for n in names if n != ws.title]
    skipped = f"; skipped {', '.join(map(repr, others))} (no geometry column)" if others else ""
    return ws, *found, f"sheet {ws.title!r} read{skipped}"


def _header(ws) -> tuple[int, list[str]] | None:
    """(row number, column names) of the first row naming a geometry column, or None."""
    ws.reset_dimensions()      # a lying <dimension> must not pad every row to 16,384 cells
    for n, row in enumerate(ws.iter_rows(max_row=HEADER_ROWS, values_only=True), start=1):
        names = ["" if v is None else str(v).strip() for v in row]
        while names and not names[-1]:
            names.pop()
        wkt_col, xy = geometry_columns(names)
        if wkt_col is not None or xy is not None:
            return n, [name or f"列{get_column_letter(i + 1)}" for i, name in enumerate(names)]
    return None


# --- merged ranges and formulas: read from the sheet's XML, streaming ------------------------------

class _Formulas:
    def __init__(self):
        self.saved = 0
        self.unsaved: set[tuple[int, int]] = set()    # (row, column) of formulas without a saved value


class _Merged:
    def __init__(self, ref: str):
        self.ref = ref
        self.min_col, self.min_row, self.max_col, self.max_row = range_boundaries(ref)
        self.value = None


def _structure(wb, ws, where: str) -> tuple[list[_Merged], _Formulas]:
    """Merged ranges and formula cells, which the read-only values do not show."""
    merged: list[_Merged] = []
    formulas = _Formulas()
    # openpyxl keeps the open archive and the sheet's member name on private attributes
    with wb._archive.open(ws._worksheet_path) as xml:
        for _event, el in iterparse(xml, events=("end",)):
            if el.tag == _NS + "c":
                if el.find(_NS + "f") is not None:
                    if el.findtext(_NS + "v"):
                        formulas.saved += 1
                    else:
                        formulas.unsaved.add(coordinate_to_tuple(el.get("r")))
            elif el.tag == _NS + "row":
                el.clear()         # bounded memory: a row is done with
            elif el.tag == _NS + "mergeCell":
                merged.append(_Merged(el.get("ref")))
    merged.sort(key=lambda m: m.min_row)
    return merged, formulas


# --- the data rows ---------------------------------------------------------------------------------

def _records(ws, header_row: int, header: list[str], merged: list[_Merged], unsaved: set, problems: list,
             where: str, limits: Limits):
    """(row number, cells as text) for every non-blank row below the header."""
    width = len(header)
    pending = [m for m in merged if m.min_row > header_row]
    active: list[_Merged] = []
    count = 0
    for n, row in enumerate(ws.iter_rows(min_row=header_row + 1, values_only=True), start=header_row + 1):
        cells = [_text(row[i] if i < len(row) else None, n, i, header, problems) for i in range(width)]
        for i in range(width):
            if (n, i + 1) in unsaved:
                problems.append((n, header[i], f"cell {get_column_letter(i + 1)}{n} holds a formula with no saved "
                                               "value (never calculated): recalculate and save it, or paste values"))
        while pending and pending[0].min_row == n:
            m = pending.pop(0)
            m.value = cells[m.min_col - 1] if m.min_col <= width else None
            active.append(m)
        active = [m for m in active if m.max_row >= n]
        if all(c is None for c in cells):        # a blank row stays blank, even across a merged range
            continue
        for m in active:
            for c in range(m.min_col - 1, min(m.max_col, width)):
                if cells[c] is None:
                    cells[c] = m.value
        count += 1
        if count * width > limits.max_cells:
            raise ReadFailed(f"{where}: more than the limit of {limits.max_cells:,d} cells")
        yield n, cells


def _text(v, n: int, i: int, header: list[str], problems: list) -> str | None:
    """A cell's value as the text the staging table takes."""
    if v is None:
        return None
    if isinstance(v, str):
        v = v.strip()
        if v in EXCEL_ERRORS:
            problems.append((n, header[i], f"cell {get_column_letter(i + 1)}{n} holds the Excel error {v}"))
            return None
        return v or None
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v.is_integer():
            if abs(v) >= 10 ** EXCEL_DIGITS:
                problems.append((n, header[i], f"cell {get_column_letter(i + 1)}{n}: the number {v:.{EXCEL_DIGITS}g} "
                                               f"has more digits than Excel keeps ({EXCEL_DIGITS}); store codes as text"))
                return None
            return str(int(v))
        return repr(v)
    if isinstance(v, datetime):
        return v.date().isoformat() if v.time() == time() else v.isoformat(sep=" ")
    if isinstance(v, (date, time)):
        return v.isoformat()
    return str(v)


def serials_to_dates(values: list, epoch: datetime, with_time: bool) -> tuple[list, list[tuple[str, str]]]:
    """Date cells formatted as plain numbers hold Excel day serials (45292 = 2024-01-01): converted,
    with (serial, date) pairs for the report. Other values (text dates, YYYYMMDD) are left as they are."""
    out, converted = [], []
    for v in values:
        if v is not None and _SERIAL.match(v) and float(v) >= 1:
            when = from_excel(float(v), epoch)
            text = when.isoformat(sep=" ") if with_time and when.time() != time() else when.date().isoformat()
            converted.append((v, text))
            v = text
        out.append(v)
    return out, converted
