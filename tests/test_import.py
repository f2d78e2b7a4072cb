"""The import engine on real-format files it writes itself: encodings, field mapping, CRSs
(lon/lat, Gauss-Krüger with and without zone prefix, contradicted), corner lists, CSV,
GeoPackage, validation reports, atomicity, idempotency and rollback."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pyogrio.raw
import pytest
import shapely
from sqlalchemy import text

from etl import corners
from etl.importer import BatchRejected, CrsProblem, import_file, rollback_batch
from services.areas import geodesic_area_m2
from tests.import_fixtures import (COUNTY, LAND_USE_ROWS, OTHER_COUNTY, add_counties, parcels, to_gk,
                                   write_land_use_shp, write_vector)


@pytest.fixture()
def db(conn):
    add_counties(conn)
    return conn


def snapshot(conn, table="land_use"):
    """What a failed batch must leave untouched."""
    return conn.execute(text(f"""SELECT (SELECT count(*) FROM {table}), (SELECT count(*) FROM import_batch),
        (SELECT count(*) FROM supervision_number)""")).one()


def stored(conn, bsm_prefix="T"):
    return conn.execute(text("SELECT bsm, parcel_no, class_code, class_name, owner_code, located_code, county_code, "
                             "area_m2, ST_AsBinary(geom) AS wkb FROM land_use WHERE bsm LIKE :p ORDER BY bsm"),
                        dict(p=bsm_prefix + "%")).all()


def test_gbk_shapefile_without_cpg_is_detected_and_mapped_from_customary_names(db, tmp_path):
    shp = write_land_use_shp(tmp_path / "三调图斑.shp")
    assert not shp.with_suffix(".cpg").exists()
    result = import_file(db, "land_use", shp, user="clerk-a")
    assert result.status == "imported" and result.rows_inserted == 3 and result.source_crs == 4490
    assert any("encoding GBK (detected)" in r["problem"] for r in result.report)
    rows = stored(db)
    assert [(r.bsm, r.parcel_no, r.class_code, r.class_name) for r in rows] == [
        ("T0001", "1", "0101", "水田"), ("T0002", "2", "0103", "旱地"), ("T0003", "3", "0702", "农村宅基地")]
    assert rows[0].owner_code == LAND_USE_ROWS[0][4] and rows[0].located_code == LAND_USE_ROWS[0][5]
    assert {r.county_code for r in rows} == {COUNTY}          # derived from 坐落单位代码
    for r, geom in zip(rows, parcels(3)):
        assert r.area_m2 == pytest.approx(geodesic_area_m2(geom), rel=1e-6)   # no TBMJ: computed on the ellipsoid
    batch = db.execute(text("SELECT * FROM import_batch WHERE id = :id"), dict(id=result.batch_id)).one()
    assert (batch.layer, batch.imported_by, batch.status, batch.rows_read, batch.rows_inserted) == (
        "land_use", "clerk-a", "committed", 3, 3)
    assert len(batch.file_sha256) == 64 and batch.imported_at is not None
    assert any("encoding GBK" in r["problem"] for r in batch.report)


def test_same_file_again_changes_nothing_and_rollback_undoes_the_batch(db, tmp_path):
    shp = write_land_use_shp(tmp_path / "a.shp")
    first = import_file(db, "land_use", shp)
    before = snapshot(db)
    again = import_file(db, "land_use", shp)
    assert again.status == "unchanged" and again.batch_id == first.batch_id and again.rows_inserted == 0
    assert snapshot(db) == before
    assert rollback_batch(db, first.batch_id, user="admin") == 3
    assert stored(db) == []
    assert db.execute(text("SELECT status, rolled_back_by FROM import_batch WHERE id = :id"),
                      dict(id=first.batch_id)).one() == ("rolled_back", "admin")
    third = import_file(db, "land_use", shp)          # after a rollback the file may come again
    assert third.status == "imported" and len(stored(db)) == 3


def test_batch_keeps_its_ids_as_ranges_and_rollback_deletes_exactly_them(db, tmp_path):
    ids_of = "SELECT array_agg(id ORDER BY id) FROM land_use WHERE bsm LIKE 'T%'"
    first = import_file(db, "land_use", write_land_use_shp(tmp_path / "a.shp"))
    ids = db.execute(text(ids_of)).scalar()
    assert len(ids) == 3 and ids == list(range(ids[0], ids[0] + 3))
    row_ids = "SELECT row_ids::text FROM import_batch WHERE id = :id"
    assert db.execute(text(row_ids), dict(id=first.batch_id)).scalar() == f"{{[{ids[0]},{ids[0] + 3})}}"
    assert rollback_batch(db, first.batch_id) == 3 and stored(db) == []
    # ids with gaps (as when another session inserts meanwhile): one range per run of ids
    sequence = db.execute(text("SELECT pg_get_serial_sequence('land_use', 'id')")).scalar()
    db.execute(text(f"ALTER SEQUENCE {sequence} INCREMENT BY 2 RESTART WITH 1000002"))   # rolled back with the test
    second = import_file(db, "land_use", write_land_use_shp(tmp_path / "b.shp"))
    assert db.execute(text(ids_of)).scalar() == [1000002, 1000004, 1000006]
    assert db.execute(text(row_ids), dict(id=second.batch_id)).scalar() == \
        "{[1000002,1000003),[1000004,1000005),[1000006,1000007)}"
    db.execute(text("INSERT INTO land_use (bsm, parcel_no, class_code, class_name, county_code, geom) "
                    "SELECT 'X3', parcel_no, class_code, class_name, county_code, geom FROM land_use WHERE bsm = 'T0001'"))
    assert db.execute(text("SELECT id FROM land_use WHERE bsm = 'X3'")).scalar() == 1000008
    assert rollback_batch(db, second.batch_id) == 3
    assert stored(db) == [] and db.execute(text("SELECT count(*) FROM land_use WHERE bsm = 'X3'")).scalar() == 1


def test_zipped_utf8_shapefile_with_cpg_and_tbmj_kept(db, tmp_path):
    shp = write_land_use_shp(tmp_path / "parcels.shp", encoding="UTF-8", keep_cpg=True,
                             extra={"TBMJ": [111.5, 222.25, 333.0], "XZQDM": [COUNTY] * 3})
    archive = tmp_path / "submission.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in tmp_path.glob("parcels.*"):
            zf.write(p, f"目录/{p.name}")
    result = import_file(db, "land_use", archive, county=COUNTY)
    assert any("encoding UTF-8 (.cpg)" in r["problem"] for r in result.report)
    assert [(r.class_name, r.area_m2) for r in stored(db)] == [("水田", 111.5), ("旱地", 222.25), ("农村宅基地", 333.0)]


@pytest.mark.parametrize("epsg, county_needed", [(4530, False), (4551, True)])
def test_gauss_kruger_file_with_and_without_zone_prefix(db, tmp_path, epsg, county_needed):
    shp = write_land_use_shp(tmp_path / "gk.shp", geoms=to_gk(parcels(3), epsg), crs=None)
    if county_needed:
        with pytest.raises(CrsProblem, match="no zone prefix: give --crs"):
            import_file(db, "land_use", shp)
    result = import_file(db, "land_use", shp, county=COUNTY)
    assert result.source_crs == epsg
    assert any(f"EPSG:{epsg} (detected" in r["problem"] for r in result.report)
    for r, original in zip(stored(db), parcels(3)):
        assert shapely.hausdorff_distance(shapely.from_wkb(bytes(r.wkb)), original) < 1e-8   # < 1 mm


def test_declared_crs_contradicted_by_the_coordinates(db, tmp_path):
    shp = write_land_use_shp(tmp_path / "gk.shp", geoms=to_gk(parcels(3), 4530), crs="EPSG:4490")
    before = snapshot(db)
    with pytest.raises(CrsProblem, match=r"gk.shp: the CRS is declared as EPSG:4490 .* not degrees — they look like EPSG:4530"):
        import_file(db, "land_use", shp)
    with pytest.raises(CrsProblem, match=r"declared as EPSG:4529 .*\(zone 41\) but the eastings carry zone prefix 42"):
        import_file(db, "land_use", shp, crs=4529)
    with pytest.raises(CrsProblem, match=r"declared as EPSG:4552 .*no zone prefix\) but the eastings carry prefix 42"):
        import_file(db, "land_use", shp, crs=4552)
    assert snapshot(db) == before
    assert import_file(db, "land_use", shp, crs=4530).rows_inserted == 3   # the right one is accepted


def _corner_file(path, epsg, licence="C2299012026000001"):
    ring = list(parcels(1, origin=(125.2, 43.7), size=0.01)[0].exterior.coords)[:-1]
    table = corners.format_corners([corners.lonlat_to_corners(ring, epsg)])
    path.write_text("\n".join([
        f"# 许可证号: {licence}", "# 矿业权类型: 采矿权", "# 矿业权人: 测试矿业有限公司", "# 主矿种: 煤",
        "# 有效期起: 2024-01-01", "# 有效期止: 2030-12-31", table]), encoding="gbk")
    return path, ring


@pytest.mark.parametrize("epsg", [4530, 4551])
def test_corner_list_becomes_a_mining_right_with_its_number(db, tmp_path, epsg):
    path, ring = _corner_file(tmp_path / "拐点.txt", epsg)
    result = import_file(db, "mining_right", path, county=COUNTY)
    assert result.source_crs == epsg
    row = db.execute(text("SELECT licence_no, right_type, holder, mineral, valid_from::text, valid_to::text, "
                          "corner_crs, corners, county_code, supervision_no, area_m2, ST_AsBinary(geom) AS wkb "
                          "FROM mining_right WHERE licence_no = 'C2299012026000001'")).one()
    assert (row.right_type, row.holder, row.mineral, row.valid_from, row.valid_to, row.corner_crs, row.county_code) == (
        "mining", "测试矿业有限公司", "coal", "2024-01-01", "2030-12-31", epsg, COUNTY)
    assert row.corners.count("\n") == 3
    assert row.supervision_no.startswith(f"{COUNTY}-") and "-K-" in row.supervision_no   # issued on registration
    assert shapely.hausdorff_distance(shapely.from_wkb(bytes(row.wkb)), shapely.Polygon(ring)) < 1e-7
    assert row.area_m2 == pytest.approx(geodesic_area_m2(shapely.Polygon(ring)), rel=1e-4)


def test_validation_report_names_row_field_and_problem_and_writes_nothing(db, tmp_path):
    good = parcels(6)
    bowtie = shapely.Polygon([(125.3, 43.8), (125.31, 43.81), (125.31, 43.8), (125.3, 43.81)])
    outside = shapely.box(125.7, 43.7, 125.701, 43.701)          # in the neighbouring county
    geoms = [good[0], good[1], good[2], shapely.Point(125.2, 43.7), bowtie, outside, good[5]]
    fields = {
        "BSM": ["V1", "V2", "V2", "V4", "V5", "V6", "V7"],
        "TBBH": ["1", "2", "3", "4", "5", "6", "7"],
        "DLBM": ["0101", "9999", "0103", "0103", "0103", "0103", "0103"],
        "DLMC": ["水田", "?", None, "旱地", "旱地", "旱地", "旱地"],
        "XZQDM": [COUNTY, COUNTY, COUNTY, COUNTY, COUNTY, OTHER_COUNTY, COUNTY],
        "备注": ["", "", "", "", "", "", ""],
    }
    path = write_vector(tmp_path / "mixed.geojson", geoms, fields, "GeoJSON")
    before = snapshot(db)
    with pytest.raises(BatchRejected) as info:
        import_file(db, "land_use", path, county=COUNTY)
    assert snapshot(db) == before
    report = info.value.report
    errors = {(r["row"], r["field"], r["problem"]) for r in report if r["severity"] == "error"}
    assert (2, "class_code", "'9999' is not in the code list 土地利用现状分类 (land_use_class)") in errors
    assert (3, "class_name", "required 地类名称 (class_name) is missing") in errors
    assert {(2, "bsm"), (3, "bsm")} <= {(r, f) for r, f, p in errors if p == "duplicate 'V2' within the file"}
    assert (4, None, "wrong geometry type Point: land_use takes (Multi)Polygon") in errors
    assert (6, "county_code", f"county {OTHER_COUNTY} is not the declared county {COUNTY}") in errors
    assert (6, None, f"lies outside county {OTHER_COUNTY}") not in errors        # it lies in its own county
    warnings = {(r["row"], r["problem"].split(";")[0]) for r in report if r["severity"] == "warning"}
    assert (5, "invalid geometry repaired (Self-intersection[125.305 43.805])") in warnings
    assert any(r["problem"] == "column '备注' matches no field of land_use; ignored" for r in report)
    assert "mixed.geojson:" in str(info.value) and "row 2, class_code" in str(info.value)


def test_repaired_geometry_is_stored_valid_and_outside_county_rejected(db, tmp_path):
    bowtie = shapely.Polygon([(125.3, 43.8), (125.31, 43.81), (125.31, 43.8), (125.3, 43.81)])
    rows = [("R1", "1", "0103", "旱地", "x", "2299011")]
    path = write_land_use_shp(tmp_path / "bow.shp", geoms=[bowtie], rows=rows)
    result = import_file(db, "land_use", path)
    assert result.warnings and "repaired" in result.warnings[0]["problem"]
    assert db.execute(text("SELECT ST_IsValid(geom) AND ST_NumGeometries(geom) = 2 FROM land_use WHERE bsm = 'R1'")).scalar()
    far = write_land_use_shp(tmp_path / "far.shp", geoms=[shapely.box(127.0, 43.0, 127.01, 43.01)],
                             rows=[("R2", "2", "0103", "旱地", "x", "2299011")])
    with pytest.raises(BatchRejected, match=f"row 1: lies outside county {COUNTY}"):
        import_file(db, "land_use", far)


def test_duplicate_of_a_stored_parcel_is_rejected(db, tmp_path):
    import_file(db, "land_use", write_land_use_shp(tmp_path / "a.shp"))
    again = write_land_use_shp(tmp_path / "b.shp", rows=[LAND_USE_ROWS[1]], geoms=parcels(1))
    with pytest.raises(BatchRejected, match="duplicate: 'T0002' is already in land_use"):
        import_file(db, "land_use", again)


def test_csv_with_chinese_headers_and_lon_lat_in_gbk(db, tmp_path):
    path = tmp_path / "隐患点.csv"
    path.write_text("隐患点编号,名称,灾害类型,险情等级,威胁人数,经度,纬度,县级行政区代码\n"
                    "H001,东山滑坡,滑坡,中型,12,125.21,43.71,229901\n"
                    "H002,西沟泥石流,debris_flow,small,,125.22,43.72,229901\n"
                    'H003,"北坡\\崩塌\t第二\n段",崩塌,小型,1,125.23,43.73,229901\n', encoding="gbk")
    result = import_file(db, "hazard_point", path)
    assert result.rows_inserted == 3
    rows = db.execute(text("SELECT hazard_no, name, hazard_type, risk_level, threatened_people, ST_X(geom), ST_Y(geom) "
                           "FROM hazard_point WHERE hazard_no LIKE 'H00%' ORDER BY 1")).all()
    assert [tuple(r) for r in rows] == [("H001", "东山滑坡", "landslide", "medium", 12, 125.21, 43.71),
                                        ("H002", "西沟泥石流", "debris_flow", "small", None, 125.22, 43.72),
                                        ("H003", "北坡\\崩塌\t第二\n段", "rockfall", "small", 1, 125.23, 43.73)]


def test_csv_with_wkt_and_surveyor_xy(db, tmp_path):
    wkt = tmp_path / "wkt.csv"
    wkt.write_text("BSM,TBBH,DLBM,DLMC,ZLDWDM,WKT\n" + "".join(
        f'W{i},{i},0103,旱地,2299011,"{g.wkt}"\n' for i, g in enumerate(parcels(2))), encoding="utf-8")
    assert import_file(db, "land_use", wkt).rows_inserted == 2
    _, x, y = corners.lonlat_to_corners([(125.21, 43.71)], 4530)[0]      # X = northing, Y = prefixed easting
    xy = tmp_path / "xy.csv"
    xy.write_text(f"隐患点编号,名称,灾害类型,险情等级,X,Y,县级行政区代码\nH010,点,崩塌,小型,{x:.2f},{y:.2f},229901\n",
                  encoding="utf-8")
    result = import_file(db, "hazard_point", xy)
    assert result.source_crs == 4530 and any("surveyors'" in r["problem"] for r in result.warnings)
    lon, lat = db.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM hazard_point WHERE hazard_no = 'H010'")).one()
    assert (lon, lat) == (pytest.approx(125.21, abs=1e-6), pytest.approx(43.71, abs=1e-6))   # 1 cm rounding


def test_geopackage_and_dry_run(db, tmp_path):
    fields = {"bsm": ["G1", "G2"], "parcel_no": ["1", "2"], "class_code": ["0301", "0404"],
              "class_name": ["乔木林地", "其他草地"], "county_code": [COUNTY, COUNTY]}
    path = write_vector(tmp_path / "lu.gpkg", parcels(2), fields, "GPKG", geometry_type="Polygon")
    pyogrio.raw.write(str(path), np.array([shapely.to_wkb(shapely.Point(125.2, 43.7))], dtype=object), [],
                      fields=[], layer="notes", geometry_type="Point", crs="EPSG:4490", driver="GPKG", append=True)
    before = snapshot(db)
    dry = import_file(db, "land_use", path, dry_run=True)
    assert dry.status == "dry-run" and dry.rows_read == 2 and snapshot(db) == before
    assert any("holds 2 layers; read the first, 'lu'" in r["problem"] for r in dry.report)
    result = import_file(db, "land_use", path)
    assert result.rows_inserted == 2
    assert [r.class_name for r in stored(db, "G")] == ["乔木林地", "其他草地"]
    batch_report = db.execute(text("SELECT report FROM import_batch WHERE id = :id"), dict(id=result.batch_id)).scalar()
    assert json.dumps(batch_report, ensure_ascii=False).count("EPSG:4490") == 1


def test_a_first_big_load_rebuilds_the_indexes_instead_of_maintaining_them(db, tmp_path, monkeypatch):
    from etl.importer import engine as import_engine
    monkeypatch.setattr(import_engine, "BULK_ROWS", 2)      # "big" for this test: a batch of 3 rows
    indexes = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'land_use' ORDER BY 1"
    before = db.execute(text(indexes)).all()
    db.execute(text("DELETE FROM land_use"))                 # a first load (rolled back with the test)
    fields = {"bsm": ["B1", "B2", "B3"], "parcel_no": ["1", "2", "3"], "class_code": ["0101", "0103", "0702"],
              "class_name": ["水田", "旱地", "农村宅基地"], "county_code": [COUNTY] * 3}
    version = "SELECT version FROM tile_state.layer_version WHERE layer = 'land_use'"
    boxes = ("SELECT version, ST_AsText(bbox) FROM tile_state.change WHERE layer = 'land_use' AND version > :v "
             "ORDER BY version, id")
    trigger = "SELECT tgenabled FROM pg_trigger WHERE tgname = 'tile_change_insert_land_use'"
    emptied_at = db.execute(text(version)).scalar()
    first = import_file(db, "land_use", write_vector(tmp_path / "first.gpkg", parcels(3), fields, "GPKG"))
    assert "bulk load: 4 indexes of land_use rebuilt after the insert, then analysed" in [
        r["problem"] for r in first.report]
    assert db.execute(text(indexes)).all() == before and len(before) == 6
    # the TRUNCATE of the empty table recorded the whole world; the insert (its trigger off) added nothing
    assert db.execute(text(boxes), dict(v=emptied_at)).all() == [
        (emptied_at + 1, "POLYGON((-180 -90,-180 90,180 90,180 -90,-180 -90))")]
    assert db.execute(text(trigger)).scalar() == "O"          # on again
    assert [(r.bsm, r.class_code) for r in stored(db, "B")] == [("B1", "0101"), ("B2", "0103"), ("B3", "0702")]
    fields["bsm"] = ["B4", "B5", "B6"]           # the table now holds as many rows as the batch: maintained
    second = import_file(db, "land_use", write_vector(tmp_path / "second.gpkg", parcels(3), fields, "GPKG"))
    assert not any("bulk load" in r["problem"] for r in second.report) and len(stored(db, "B")) == 6
    recorded = db.execute(text(boxes), dict(v=emptied_at + 1)).all()       # the insert's own boxes
    assert recorded and {v for v, _ in recorded} == {emptied_at + 2}


def _load(db, path, bulk_rows, monkeypatch, said=None):
    """An import with BULK_ROWS set, and its progress messages."""
    from etl.importer import engine as import_engine
    monkeypatch.setattr(import_engine, "BULK_ROWS", bulk_rows)
    said = [] if said is None else said
    return import_file(db, "land_use", path, progress=said.append), said


ROW_COLUMNS = ("SELECT bsm, parcel_no, class_code, class_name, county_code, area_m2, survey_date, "
               "ST_AsEWKB(geom) AS geom FROM land_use ORDER BY id")


def test_a_first_big_load_goes_straight_into_the_layer_and_stores_what_the_stage_stores(db, tmp_path, monkeypatch):
    """The direct COPY of a first big load stores the same values as the stage and its insert:
    single polygons made multi, the invalid one repaired, a missing area computed on the
    ellipsoid, dates in each accepted form; the same ids, batch and report."""
    db.execute(text("DELETE FROM land_use"))
    geoms = parcels(5)
    geoms[1] = shapely.MultiPolygon([geoms[1], shapely.box(125.11, 43.61, 125.111, 43.611)])
    x, y = 125.104, 43.604
    geoms[3] = shapely.Polygon([(x, y), (x + 0.001, y + 0.001), (x + 0.001, y), (x, y + 0.001), (x, y)])   # bowtie
    fields = {"bsm": [f"S{i}" for i in range(5)], "parcel_no": ["1", "2", "3", "4", "5"],
              "class_code": ["0101", "水田", "0702", "0103", "0101"], "class_name": ["水田", "水田", "宅基地", "旱地", "水田"],
              "county_code": [COUNTY] * 5, "area_m2": ["1234.5", None, "+7", "1e3", "0.25"],
              "survey_date": ["2020-01-05", "2020/1/5", "20201231", None, "2024.2.29"]}
    path = write_vector(tmp_path / "five.gpkg", geoms, fields, "GPKG")
    staged, said = _load(db, path, 1000, monkeypatch)            # not big: the stage and one INSERT
    assert not any("loading" in m for m in said)
    through_stage = db.execute(text(ROW_COLUMNS)).all()
    rollback_batch(db, staged.batch_id)
    version = db.execute(text("SELECT version FROM tile_state.layer_version WHERE layer = 'land_use'")).scalar()
    direct, said = _load(db, path, 2, monkeypatch)
    # the TRUNCATE recorded the whole world; the COPY, the repair and the areas (triggers off) nothing more
    assert db.execute(text("SELECT version, ST_AsText(bbox) FROM tile_state.change WHERE layer = 'land_use' "
                           "AND version > :v"), dict(v=version)).all() == [
        (version + 1, "POLYGON((-180 -90,-180 90,180 90,180 -90,-180 -90))")]
    assert "five.gpkg: loading 5 rows into land_use" in said and not any("staging" in m for m in said)
    stored_rows = db.execute(text(ROW_COLUMNS)).all()
    assert [r[1:] for r in stored_rows] == [r[1:] for r in through_stage]
    assert [str(r.survey_date) for r in stored_rows] == ["2020-01-05", "2020-01-05", "2020-12-31", "None", "2024-02-29"]
    assert [r.area_m2 for r in stored_rows][2:] == [7.0, 1000.0, 0.25]
    assert stored_rows[1].area_m2 == pytest.approx(geodesic_area_m2(geoms[1]), abs=0.01)
    assert {shapely.from_wkb(bytes(r.geom)).geom_type for r in stored_rows} == {"MultiPolygon"}
    assert db.execute(text("SELECT bool_and(ST_IsValid(geom)) FROM land_use")).scalar()
    assert [r for r in direct.report if r["severity"] != "info"] == [r for r in staged.report if r["severity"] != "info"]
    assert [r["row"] for r in direct.warnings] == [4] and "Self-intersection" in direct.warnings[0]["problem"]
    ids = db.execute(text("SELECT min(id), max(id) FROM land_use")).one()
    assert db.execute(text("SELECT row_ids::text FROM import_batch WHERE id = :b"), dict(b=direct.batch_id)).scalar() \
        == f"{{[{ids[0]},{ids[1] + 1})}}"
    assert rollback_batch(db, direct.batch_id) == 5 and db.execute(text("SELECT count(*) FROM land_use")).scalar() == 0


def test_shapely_and_postgis_agree_on_which_geometries_are_invalid(db):
    """The checks find invalid geometries with Shapely's GEOS, the repair is PostGIS's: both
    must judge alike (random rings that cross, touch or collapse; holes inside, across or
    outside their shell; multipolygons whose parts overlap or touch)."""
    rng = np.random.default_rng(7)
    shapes = []
    for _ in range(1500):
        pts = rng.integers(0, 4, size=(rng.integers(4, 8), 2)) * 0.001 + (125.0, 43.0)
        shapes.append(shapely.Polygon(np.vstack([pts, pts[:1]])))
    for x in rng.uniform(0, 3, 300):
        shapes.append(shapely.Polygon([(0, 0), (2, 0), (2, 2), (0, 2)], [[(x, .5), (x + 1, .5), (x + 1, 1.5), (x, 1.5)]]))
    for d in rng.integers(0, 4, 300) * 0.5:
        shapes.append(shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(d, 0, d + 1, 1)]))
    by_postgis = db.execute(text("SELECT ST_IsValid(ST_GeomFromWKB(w)) FROM unnest(CAST(:w AS bytea[])) "
                                 "WITH ORDINALITY u(w, i) ORDER BY i"), dict(w=[shapely.to_wkb(g) for g in shapes])).scalars().all()
    by_shapely = shapely.is_valid(np.array(shapes)).tolist()
    assert 1000 < by_shapely.count(False) < len(shapes) - 300       # both kinds, many of each
    assert by_shapely == by_postgis


def test_a_layer_that_does_not_repair_rejects_invalid_geometries_with_the_reason():
    from etl.importer import checks
    from layers import REGISTRY
    layer = REGISTRY["mining_right"]
    bowtie = shapely.Polygon([(125.1, 43.6), (125.2, 43.7), (125.2, 43.6), (125.1, 43.7), (125.1, 43.6)])
    line = shapely.LineString([(125.1, 43.6), (125.2, 43.7)])
    rows = checks.Rows(layer, {}, np.array([shapely.box(125.1, 43.6, 125.2, 43.7), bowtie, None, line], dtype=object))
    plan = checks.plan(layer, [], county_rows=False, policy="reject")
    found = [e for entries in checks.run_per_row(plan, rows, [2, 3, 4, 5]).values() for e in entries]
    assert sorted((e["row"], e["problem"]) for e in found) == [
        (3, "invalid geometry (Self-intersection[125.15 43.65]); this layer does not repair geometries"),
        (4, "no geometry"), (5, "wrong geometry type LineString: mining_right takes (Multi)Polygon")]


def test_a_rejected_first_big_load_leaves_the_layer_and_its_indexes_as_they_were(db, tmp_path, monkeypatch):
    """PostgreSQL refuses the direct COPY (a duplicate, a missing required value): rolled back to
    its savepoint, the checks name the rows; a file in another CRS goes through the stage."""
    db.execute(text("DELETE FROM land_use"))
    indexes = "SELECT indexname FROM pg_indexes WHERE tablename = 'land_use' ORDER BY 1"
    before, kept = snapshot(db), db.execute(text(indexes)).all()
    fields = {"bsm": ["R1", "R1", "R3"], "parcel_no": ["1", "2", "3"], "class_code": ["0101", "0103", "0702"],
              "class_name": ["水田", None, "宅基地"], "county_code": [COUNTY] * 3}
    said = []
    with pytest.raises(BatchRejected) as info:
        _load(db, write_vector(tmp_path / "bad.gpkg", parcels(3), fields, "GPKG"), 2, monkeypatch, said)
    assert "bad.gpkg: loading 3 rows into land_use" in said and "bad.gpkg: staging 3 rows" in said   # refused: staged
    errors = [(r["row"], r["field"], r["problem"]) for r in info.value.report if r["severity"] == "error"]
    assert errors == [(1, "bsm", "duplicate 'R1' within the file"), (2, "bsm", "duplicate 'R1' within the file"),
                      (2, "class_name", "required 地类名称 (class_name) is missing")]
    assert snapshot(db) == before and db.execute(text(indexes)).all() == kept
    fields.update(bsm=["G1", "G2", "G3"], class_name=["水田", "旱地", "宅基地"])
    gk, said = _load(db, write_vector(tmp_path / "gk.gpkg", to_gk(parcels(3), 4588), fields, "GPKG", crs="EPSG:4588"),
                     2, monkeypatch)
    assert gk.source_crs == 4588 and "gk.gpkg: staging 3 rows" in said and gk.rows_inserted == 3
    assert [shapely.from_wkb(bytes(r.geom)).equals_exact(shapely.MultiPolygon([p]), 1e-8)
            for r, p in zip(db.execute(text(ROW_COLUMNS)).all(), parcels(3))] == [True] * 3


def test_report_lists_the_first_100_rows_of_each_problem_and_counts_the_rest(db, tmp_path):
    n = 105
    fields = {"bsm": ["D1"] * (n - 1) + ["D2"], "parcel_no": [str(i) for i in range(n)],
              "class_code": ["9999"] * (n - 2) + ["0101", "0101"], "class_name": [None, None] + ["水田"] * (n - 2),
              "county_code": [COUNTY] * n, "survey_date": ["2024-02-30x"] * 3 + ["2024-02-03"] * (n - 3)}
    path = write_vector(tmp_path / "many.gpkg", parcels(n), fields, "GPKG")
    with pytest.raises(BatchRejected) as info:
        import_file(db, "land_use", path)
    errors = [(r["row"], r["field"], r["problem"]) for r in info.value.report if r["severity"] == "error"]
    by_field = {f: [e for e in errors if e[1] == f] for f in ("bsm", "class_code", "class_name", "survey_date")}
    assert by_field["bsm"] == [(i, "bsm", "duplicate 'D1' within the file") for i in range(1, 101)] + [
        (None, "bsm", "... and 4 more rows with this problem")]
    assert by_field["class_code"] == [
        (i, "class_code", "'9999' is not in the code list 土地利用现状分类 (land_use_class)") for i in range(1, 101)] + [
        (None, "class_code", "... and 3 more rows with this problem")]
    assert by_field["class_name"] == [(1, "class_name", "required 地类名称 (class_name) is missing"),
                                      (2, "class_name", "required 地类名称 (class_name) is missing")]
    assert by_field["survey_date"] == [(i, "survey_date", "'2024-02-30x' is not a date (YYYY-MM-DD)") for i in (1, 2, 3)]
    assert len(errors) == 101 + 101 + 2 + 3


def _stages(conn) -> list[str]:
    return conn.execute(text("SELECT relname FROM pg_class WHERE relname LIKE 'import\\_stage\\_%'")).scalars().all()


def test_the_stage_is_a_table_of_the_batch_that_no_import_leaves_behind(db, tmp_path):
    db.execute(text("CREATE UNLOGGED TABLE import_stage_land_use_0123456789abcdef (row_no integer)"))  # a leftover
    fields = {"bsm": ["S1", "S2", "S2"], "parcel_no": ["1", "2", "3"], "class_code": ["0101"] * 3,
              "class_name": ["水田"] * 3, "county_code": [COUNTY] * 3}
    bad = write_vector(tmp_path / "bad.gpkg", parcels(3), fields, "GPKG")
    with pytest.raises(BatchRejected):
        import_file(db, "land_use", bad)
    assert _stages(db) == []        # the leftover dropped first, the batch's own stage rolled back with it
    fields["bsm"][2] = "S3"
    good = write_vector(tmp_path / "good.gpkg", parcels(3), fields, "GPKG")
    assert import_file(db, "land_use", good, dry_run=True).status == "dry-run" and _stages(db) == []
    result = import_file(db, "land_use", good)
    assert result.rows_inserted == 3 and _stages(db) == []
    assert db.execute(text("SELECT relpersistence FROM pg_class WHERE relname = 'land_use'")).scalar() == "p"


def test_rows_of_counties_mixed_in_the_file_are_checked_against_their_county_and_keep_the_file_order(db, tmp_path):
    here, there = parcels(3), parcels(3, origin=(125.6, 43.6))          # in COUNTY's box, in OTHER_COUNTY's
    geoms = [here[0], there[0], here[1], there[1], here[2], there[2]]
    fields = {"bsm": [f"M{i}" for i in range(1, 7)], "parcel_no": [str(i) for i in range(1, 7)],
              "class_code": ["0101"] * 6, "class_name": ["水田"] * 6,
              "county_code": [COUNTY, OTHER_COUNTY, COUNTY, OTHER_COUNTY, OTHER_COUNTY, COUNTY]}
    with pytest.raises(BatchRejected) as info:      # rows 5 and 6 carry each other's county
        import_file(db, "land_use", write_vector(tmp_path / "mixed.gpkg", geoms, fields, "GPKG"))
    assert [(r["row"], r["problem"]) for r in info.value.report if r["severity"] == "error"] == [
        (5, f"lies outside county {OTHER_COUNTY}"), (6, f"lies outside county {COUNTY}")]
    fields["county_code"][4:] = [COUNTY, OTHER_COUNTY]
    result = import_file(db, "land_use", write_vector(tmp_path / "mixed2.gpkg", geoms, fields, "GPKG"))
    assert result.rows_inserted == 6
    stored_rows = db.execute(text("SELECT bsm, county_code, ST_Equals(geom, ST_Multi(ST_GeomFromWKB(:g, 4490))) "
                                  "FROM land_use WHERE bsm LIKE 'M%' ORDER BY id"), dict(g=shapely.to_wkb(here[2]))).all()
    assert [(b, c) for b, c, _ in stored_rows] == [(f"M{i}", c) for i, c in enumerate(fields["county_code"], start=1)]
    assert [same for _, _, same in stored_rows] == [False, False, False, False, True, False]
