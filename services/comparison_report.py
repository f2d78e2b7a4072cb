"""The comparison report (比对核查统计): counts and areas per category by county and city.

Rows for the whole batch, each prefecture-level city and each county (one GROUPING SETS query
over `comparison_result`): patches, violations, per category the patches carrying it and their
area, the farmland taken by new construction, the farmland taken without approval and the
illegal farmland share. Exported as JSON, CSV (UTF-8 with BOM, so spreadsheet programs read
the Chinese headers) and XLSX. Rules: docs/comparison.md.
"""
from __future__ import annotations

import csv
import io

from sqlalchemy import Connection, text

from layers.codes import COMPARISON_CATEGORY
from services.areas import Area
from services.comparison import SEVERITY, ComparisonError

CATEGORIES = SEVERITY

_PER_CATEGORY = ",\n".join(
    f"count(*) FILTER (WHERE '{c}' = ANY(r.categories)) AS n_{c}, "
    f"coalesce(sum(r.area_m2) FILTER (WHERE '{c}' = ANY(r.categories)), 0) AS m2_{c}" for c in CATEGORIES)

_REPORT_SQL = f"""
SELECT CASE WHEN GROUPING(r.city_code) = 1 THEN 'batch' WHEN GROUPING(r.county_code) = 1 THEN 'city'
            ELSE 'county' END AS level,
       CASE WHEN GROUPING(r.city_code) = 1 THEN NULL WHEN GROUPING(r.county_code) = 1 THEN r.city_code
            ELSE r.county_code END AS code,
       count(*) AS patches, count(*) FILTER (WHERE r.violation) AS violations,
       coalesce(sum(r.area_m2), 0) AS area_m2,
       coalesce(sum(r.area_m2) FILTER (WHERE r.violation), 0) AS violation_m2,
       coalesce(sum(r.basic_farmland_m2) FILTER (WHERE r.violation), 0) AS basic_farmland_m2,
       coalesce(sum(r.farmland_m2) FILTER (WHERE r.kind = 'construction' AND NOT 'other' = ANY(r.categories)), 0)
         AS construction_farmland_m2,
       coalesce(sum(r.illegal_farmland_m2), 0) AS illegal_farmland_m2,
       {_PER_CATEGORY}
FROM comparison_result r WHERE r.batch = :batch
GROUP BY GROUPING SETS ((), (r.city_code), (r.city_code, r.county_code))
ORDER BY GROUPING(r.city_code) DESC, r.city_code, GROUPING(r.county_code) DESC, r.county_code
"""


def report(conn: Connection, batch: str) -> dict:
    """The report of `batch` as a dict (rows: the batch, then each city followed by its counties)."""
    rows = conn.execute(text(_REPORT_SQL), {"batch": batch}).mappings().all()
    if not rows:
        raise ComparisonError(f"batch {batch!r} has no comparison results: run the comparison first")
    names = dict(conn.execute(text("SELECT code, name FROM admin_division")).all())
    run = conn.execute(text("""SELECT max(run_id) AS run_id, max(compared_at) AS compared_at
                               FROM comparison_result WHERE batch = :b"""), {"b": batch}).mappings().one()
    out = []
    for r in rows:
        construction = r["construction_farmland_m2"]
        out.append({
            "level": r["level"], "code": r["code"], "name": names.get(r["code"]) if r["code"] else batch,
            "patches": r["patches"], "violations": r["violations"],
            "area": Area(r["area_m2"]).as_dict(), "violation_area": Area(r["violation_m2"]).as_dict(),
            "basic_farmland_taken": Area(r["basic_farmland_m2"]).as_dict(),
            "construction_farmland": Area(construction).as_dict(),
            "illegal_farmland": Area(r["illegal_farmland_m2"]).as_dict(),
            "illegal_farmland_share": round(r["illegal_farmland_m2"] / construction, 6) if construction > 0 else None,
            "categories": {c: {"patches": r[f"n_{c}"], **Area(r[f"m2_{c}"]).as_dict()} for c in CATEGORIES},
        })
    return {"batch": batch, "run_id": run["run_id"], "compared_at": run["compared_at"].isoformat(), "rows": out}


def _columns() -> list[tuple[str, str, callable]]:
    """(Chinese header, English header, value of a report row) for the flat table exports."""
    cols = [("级别", "level", lambda r: r["level"]), ("代码", "code", lambda r: r["code"] or ""),
            ("名称", "name", lambda r: r["name"]), ("图斑数", "patches", lambda r: r["patches"]),
            ("违法图斑数", "violations", lambda r: r["violations"])]
    for key, zh, en in (("area", "图斑面积", "area"), ("violation_area", "违法面积", "violation area"),
                        ("basic_farmland_taken", "违法占用基本农田", "basic farmland taken"),
                        ("construction_farmland", "新增建设占用耕地", "farmland taken by construction"),
                        ("illegal_farmland", "违法占用耕地", "farmland taken without approval")):
        cols += [(f"{zh}(公顷)", f"{en} (ha)", lambda r, k=key: r[k]["ha"]),
                 (f"{zh}(亩)", f"{en} (mu)", lambda r, k=key: r[k]["mu"])]
    cols.append(("违法占用耕地比例", "illegal farmland share", lambda r: r["illegal_farmland_share"]))
    for c in CATEGORIES:
        zh, en = COMPARISON_CATEGORY.zh_label(c), COMPARISON_CATEGORY.en_label(c)
        cols += [(f"{zh}(个)", f"{en} (patches)", lambda r, c=c: r["categories"][c]["patches"]),
                 (f"{zh}(公顷)", f"{en} (ha)", lambda r, c=c: r["categories"][c]["ha"]),
                 (f"{zh}(亩)", f"{en} (mu)", lambda r, c=c: r["categories"][c]["mu"])]
    return cols


def table(rep: dict) -> list[list]:
    """The report as a table: two header rows (Chinese, English), then one row per region."""
    cols = _columns()
    return [[c[0] for c in cols], [c[1] for c in cols]] + [[c[2](r) for c in cols] for r in rep["rows"]]


def to_csv(rep: dict) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(["" if v is None else v for v in row] for row in table(rep))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(rep: dict) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    wb = Workbook()
    ws = wb.active
    ws.title = "比对核查统计"
    ws.append([f"比对核查统计 Comparison report: {rep['batch']} (run {rep['run_id']}, {rep['compared_at']})"])
    for row in table(rep):
        ws.append(row)
    for cell in ws[1] + ws[2] + ws[3]:
        cell.font = Font(bold=True)
    ws.freeze_panes = "D4"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
