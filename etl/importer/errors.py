"""Named failures of an import; every message names the file (and the row where there is one)."""
from __future__ import annotations


class ImportFailed(Exception):
    """Base of every import error: nothing was written."""


class UnsafeInput(ImportFailed):
    """The file is hostile or too big (zip bomb, path traversal, size limit)."""


class ReadFailed(ImportFailed):
    """The file cannot be read as the format it claims to be (corrupt, empty, unknown)."""


class CrsProblem(ImportFailed):
    """The CRS is missing, unknown, or contradicted by the coordinates."""


class BatchRejected(ImportFailed):
    """Validation found errors; `report` lists them (row, field, problem)."""

    def __init__(self, file_name: str, report: list[dict]):
        self.file_name = file_name
        self.report = report
        errors = [r for r in report if r["severity"] == "error"]
        head = "; ".join(_line(r) for r in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"{file_name}: {len(errors)} error(s), nothing imported: {head}{more}")


class UnknownBatch(ImportFailed):
    pass


def _line(entry: dict) -> str:
    where = f"row {entry['row']}" if entry.get("row") is not None else "file"
    if entry.get("sheet") is not None and entry.get("row") is not None:
        where = f"sheet {entry['sheet']} row {entry['row']}"
    field = f", {entry['field']}" if entry.get("field") else ""
    return f"{where}{field}: {entry['problem']}"


def format_entry(entry: dict) -> str:
    return f"[{entry['severity']}] {_line(entry)}"
