"""Spreadsheet (.xlsx) submissions on the one import engine, from workbooks written here by openpyxl:
Chinese headers under a merged title row, several sheets, merged cells, formulas with and without
saved values, dates as date cells, text and Excel serials; bad rows named by sheet and row; hostile
workbooks (zip bomb inside the container, huge or wide sheets, lying dimensions, not a workbook)."""
from __future__ import annotations

import re
import zipfile
from datetime import datetime

import pytest
from sqlalchemy import text

from etl.importer import BatchRejected, Limits, ReadFailed, UnsafeInput, format_entry, import_file
from tests.import_fixtures import COUNTY, add_counties, parcels, save_formula_values, write_xlsx
from tests.test_import import snapshot

HEADER = ["标识码", "图斑编号", "地类编码", "地类名称", "权属单位代码", "坐落单位代码", "TBMJ", "调查日期", "WKT"]
LOCATED = ["2299011010010000000", "2299011010020000000", "2299011010030000000"]


@pytest.fixture()
def db(conn):
    add_counties(conn)
    return conn


def _land_use_workbook(path, rows, merged=(), formats=None):
    title = ["测试县土地利用现状图斑汇总表"]
    sheets = {"说明": [["填表说明"], ["每行一个图斑；WKT 为 CGCS2000 经纬度"]], "图斑": [title, HEADER, *rows]}
    return write_xlsx(path, sheets, merged={"图斑": ["A1:I1", *merged]}, number_formats={"图斑": formats or {}})


def _stored(conn, prefix):
    return conn.execute(text("SELECT bsm, parcel_no, class_code, located_code, county_code, area_m2, "
                             "survey_date::text FROM land_use WHERE bsm LIKE :p ORDER BY bsm"), dict(p=prefix + "%")).all()


def test_sheet_with_title_row_merged_cells_formulas_and_serial_dates(db, tmp_path):
    g = parcels(3)
    rows = [["X0001", 1, "0101", "水田", LOCATED[0], LOCATED[0], "=100*1.5", datetime(2024, 5, 1), g[0].wkt],
            ["X0002", 2, "0103", "旱地", LOCATED[1], LOCATED[1], 222.25, 45292, g[1].wkt],
            [None, None, None, None, None, None, None, None, None],                      # a blank row
            ["X0003", 3, "0103", "旱地", LOCATED[1], None, 333, "2024-03-02", g[2].wkt]]
    path = _land_use_workbook(tmp_path / "三调图斑.xlsx", rows, merged=["F4:F6"])
    save_formula_values(path, 2, {"G3": 150})
    result = import_file(db, "land_use", path)
    assert result.status == "imported" and result.rows_inserted == 3 and result.rows_read == 3
    assert _stored(db, "X") == [("X0001", "1", "0101", LOCATED[0], COUNTY, 150.0, "2024-05-01"),
                                ("X0002", "2", "0103", LOCATED[1], COUNTY, 222.25, "2024-01-01"),
                                ("X0003", "3", "0103", LOCATED[1], COUNTY, 333.0, "2024-03-02")]
    problems = [r["problem"] for r in result.report]
    assert "sheet '图斑' read; skipped '说明' (no geometry column)" in problems
    assert "2 merged cell range(s) filled with their top-left value (e.g. A1:I1)" in problems
    assert "1 formula cell(s) read as the values the spreadsheet saved" in problems
    assert "1 number(s) in 调查日期 (survey_date) read as Excel date serials (e.g. 45292 → 2024-01-01)" in problems


def test_bad_rows_are_named_by_sheet_and_row_and_nothing_is_written(db, tmp_path):
    g = parcels(5)
    rows = [["Y0001", 1, "0101", "水田", LOCATED[0], LOCATED[0], 100, "2024-01-01", g[0].wkt],     # row 3: fine
            ["Y0002", 2, "9999", "旱地", LOCATED[0], LOCATED[0], 100, "2024-01-01", g[1].wkt],     # row 4: code
            ["Y0003", 3, "0103", "旱地", LOCATED[0], LOCATED[0], "=A5*2", "2024-01-01", g[2].wkt],  # row 5: no value
            ["Y0004", 4, "0103", "旱地", "#REF!", LOCATED[0], 100, "2024-01-01", g[3].wkt],          # row 6: error
            ["Y0005", 5, "0103", "旱地", 2.299011010010000e18, LOCATED[0], 100, "2024-01-01", g[4].wkt]]  # row 7
    path = _land_use_workbook(tmp_path / "bad.xlsx", rows)
    before = snapshot(db)
    with pytest.raises(BatchRejected) as info:
        import_file(db, "land_use", path)
    assert snapshot(db) == before
    errors = {(r["sheet"], r["row"], r["field"]): r["problem"] for r in info.value.report if r["severity"] == "error"}
    assert errors == {
        ("图斑", 4, "class_code"): "'9999' is not in the code list 土地利用现状分类 (land_use_class)",
        ("图斑", 5, "TBMJ"): "cell G5 holds a formula with no saved value (never calculated): recalculate and save "
                             "it, or paste values",
        ("图斑", 6, "权属单位代码"): "cell E6 holds the Excel error #REF!",
        ("图斑", 7, "权属单位代码"): "cell E7: the number 2.29901101001e+18 has more digits than Excel keeps (15); "
                                 "store codes as text",
    }
    assert "bad.xlsx: 4 error(s), nothing imported: sheet 图斑 row 5, TBMJ: cell G5 holds a formula" in str(info.value)
    assert format_entry(info.value.report[-1]).startswith("[error] sheet 图斑 row ")


def test_several_sheets_with_geometry_need_a_choice(db, tmp_path):
    header = ["隐患点编号", "名称", "灾害类型", "险情等级", "威胁人数", "经度", "纬度", "县级行政区代码"]
    path = write_xlsx(tmp_path / "隐患点.xlsx", {
        "东山": [header, ["H101", "东山滑坡", "滑坡", "中型", 12, 125.21, 43.71, COUNTY]],
        "西沟": [header, ["H102", "西沟泥石流", "泥石流", "小型", 3, 125.22, 43.72, COUNTY],
                 ["H103", "西沟崩塌", "崩塌", "小型", None, 125.23, 43.73, COUNTY]]})
    with pytest.raises(ReadFailed, match=r"隐患点.xlsx: several sheets have geometry columns \('东山', '西沟'\); "
                                         r"choose one with --sheet"):
        import_file(db, "hazard_point", path)
    with pytest.raises(ReadFailed, match=r"no sheet '北坡'; its sheets are '东山', '西沟'"):
        import_file(db, "hazard_point", path, sheet="北坡")
    result = import_file(db, "hazard_point", path, sheet="西沟")
    assert "sheet '西沟' read (chosen with --sheet)" in [r["problem"] for r in result.report]
    rows = db.execute(text("SELECT hazard_no, hazard_type, threatened_people, ST_X(geom), ST_Y(geom) FROM hazard_point "
                           "WHERE hazard_no LIKE 'H10%' ORDER BY 1")).all()
    assert [tuple(r) for r in rows] == [("H102", "debris_flow", 3, 125.22, 43.72), ("H103", "rockfall", None, 125.23, 43.73)]


def test_sheet_option_on_the_command_line(tiles_app, engine, tmp_path):
    with engine.connect() as conn:     # the demo county around the points (the CLI reads the demo database)
        county = conn.execute(text("SELECT code FROM admin_division WHERE level = 'county' AND "
                                   "ST_Intersects(geom, ST_Point(125.3, 43.8, 4490))")).scalar_one()
    header = ["隐患点编号", "名称", "灾害类型", "险情等级", "经度", "纬度", "县级行政区代码"]
    path = write_xlsx(tmp_path / "h.xlsx", {"a": [header, ["H201", "甲", "滑坡", "小型", 125.3, 43.8, county]],
                                            "b": [header, ["H202", "乙", "滑坡", "小型", 125.3, 43.8, county]]})
    runner = tiles_app.test_cli_runner()
    out = runner.invoke(args=["etl", "import", "hazard_point", str(path), "--sheet", "b", "--dry-run"])
    assert out.exit_code == 0, out.output
    assert "sheet 'b' read (chosen with --sheet)" in out.output and "1 rows valid for hazard_point" in out.output
    refused = runner.invoke(args=["etl", "import", "hazard_point", str(path), "--dry-run"])
    assert refused.exit_code == 1 and "choose one with --sheet" in refused.output


# --- hostile workbooks: a clear error and nothing written ----------------------------------------------

def _small_workbook(path, n=3):
    g = parcels(n)
    rows = [[f"Z{i:04d}", i, "0103", "旱地", LOCATED[0], LOCATED[0], 100, "2024-01-01", g[i].wkt] for i in range(n)]
    return _land_use_workbook(path, rows)


def test_zip_bomb_inside_the_workbook(guarded, tmp_path):
    path = _small_workbook(tmp_path / "bomb.xlsx")
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/media/image1.bin", b"\0" * (50 << 20))
    assert path.stat().st_size < 200_000
    with pytest.raises(UnsafeInput, match=r"bomb.xlsx: member 'xl/media/image1.bin' expands \d+-fold .*zip bomb"):
        import_file(guarded, "land_use", path)


def test_huge_and_wide_sheets_are_refused(guarded, tmp_path):
    path = _small_workbook(tmp_path / "big.xlsx", n=12)
    with pytest.raises(ReadFailed, match=r"big.xlsx sheet 图斑: more than the limit of 10 rows"):
        import_file(guarded, "land_use", path, limits=Limits(max_features=10))
    with pytest.raises(ReadFailed, match=r"big.xlsx sheet 图斑: more than the limit of 90 cells"):
        import_file(guarded, "land_use", path, limits=Limits(max_cells=90))
    with pytest.raises(ReadFailed, match=r"big.xlsx sheet 图斑: the header row has 9 columns, more than the limit of 5"):
        import_file(guarded, "land_use", path, limits=Limits(max_columns=5))


def test_lying_dimension_does_not_pad_rows(guarded, tmp_path):
    path = _small_workbook(tmp_path / "dim.xlsx")
    with zipfile.ZipFile(path) as zf:
        contents = {m.filename: zf.read(m) for m in zf.infolist()}
    sheet = "xl/worksheets/sheet2.xml"
    contents[sheet], n = re.subn(rb'<dimension ref="[^"]*"/>', b'<dimension ref="A1:XFD1048576"/>', contents[sheet])
    assert n == 1
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in contents.items():
            zf.writestr(name, data)
    result = import_file(guarded, "land_use", path, dry_run=True)
    assert result.status == "dry-run" and result.rows_read == 3


def test_not_a_workbook(guarded, tmp_path):
    garbage = tmp_path / "garbage.xlsx"
    garbage.write_bytes(b"PK\x03\x04 this is not a zip" * 10)
    with pytest.raises(UnsafeInput, match="garbage.xlsx: not a readable zip container"):
        import_file(guarded, "land_use", garbage)
    other = tmp_path / "other.xlsx"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ReadFailed, match="other.xlsx: cannot be read as an XLSX workbook"):
        import_file(guarded, "land_use", other)
    no_geometry = write_xlsx(tmp_path / "nogeom.xlsx", {"表1": [["标识码", "地类编码"], ["A", "0101"]]})
    with pytest.raises(ReadFailed, match=r"nogeom.xlsx: no sheet has a geometry column .* sheets: '表1'"):
        import_file(guarded, "land_use", no_geometry)
