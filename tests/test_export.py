"""Export of a layer or a region of it (GeoPackage, Shapefile UTF-8/GBK, GeoJSON), read back with
pyogrio, a round trip through the importer, and the `flask etl` commands end to end."""
from __future__ import annotations

import json

import pyogrio
import pyogrio.raw
import pytest
from sqlalchemy import text

from etl.exporter import ExportFailed, export_layer
from etl.importer import import_file, rollback_batch
from tests.import_fixtures import COUNTY, add_counties, parcels, write_land_use_shp
from tests.test_import import stored


@pytest.fixture()
def imported(conn, tmp_path):
    add_counties(conn)
    result = import_file(conn, "land_use", write_land_use_shp(tmp_path / "in.shp"))
    return conn, result


def test_gbk_shapefile_export_reads_back_and_round_trips(imported, tmp_path):
    conn, result = imported
    before = [tuple(r[:-1]) for r in stored(conn)]
    out = tmp_path / "out" / "地类图斑.shp"
    out.parent.mkdir()
    assert export_layer(conn, "land_use", out, county=COUNTY, encoding="GBK") >= 3
    assert out.with_suffix(".cpg").read_text().strip().upper() in ("GBK", "CP936", "936")
    meta, _, _, data = pyogrio.raw.read(out, where="BSM LIKE 'T%'")[:4]
    assert {"BSM", "TBBH", "DLBM", "DLMC", "QSDWDM", "ZLDWDM", "XZQDM", "TBMJ"} <= set(meta["fields"])
    assert meta["fields"][0] == "id"
    table = out.with_suffix(".fields.csv").read_text(encoding="utf-8").splitlines()
    assert table[0] == "dbf_name,name,zh,en,unit" and "DLBM,class_code,地类编码,Land-use class code," in table
    names = dict(zip(meta["fields"], data))
    assert sorted(names["DLMC"]) == sorted(["水田", "旱地", "农村宅基地"])
    assert "水田".encode("gbk") in out.with_suffix(".dbf").read_bytes()
    rollback_batch(conn, result.batch_id)
    again = import_file(conn, "land_use", out)                   # the export is a valid submission
    assert again.rows_inserted >= 3 and [tuple(r[:-1]) for r in stored(conn)] == [
        b[:7] + (pytest.approx(b[7], rel=1e-9),) for b in before]


def test_geopackage_and_geojson_of_a_region(imported, tmp_path):
    conn, _ = imported
    gpkg = tmp_path / "lu.gpkg"
    n = export_layer(conn, "land_use", gpkg, county=COUNTY, bbox=(125.1, 43.6, 125.1025, 43.61))  # the first parcel
    assert n == 1
    meta, _, geom, data = pyogrio.raw.read(gpkg)[:4]
    assert meta["crs"] == "EPSG:4490" and meta["geometry_type"] == "MultiPolygon"
    assert dict(zip(meta["fields"], data))["class_name"].tolist() == ["水田"]
    geojson = tmp_path / "lu.geojson"
    assert export_layer(conn, "land_use", geojson, county=COUNTY) >= 3
    doc = json.loads(geojson.read_text(encoding="utf-8"))
    props = {f["properties"]["bsm"]: f["properties"] for f in doc["features"]}
    assert props["T0003"]["class_name"] == "农村宅基地" and props["T0003"]["county_code"] == COUNTY
    empty = tmp_path / "none.gpkg"
    assert export_layer(conn, "land_use", empty, bbox=(135.0, 53.0, 135.1, 53.1)) == 0 and empty.exists()
    with pytest.raises(ExportFailed, match="unsupported export format"):
        export_layer(conn, "land_use", tmp_path / "x.kml")


@pytest.fixture()
def cli(test_settings, engine):
    from app import create_app
    with engine.begin() as conn:
        add_counties(conn)
    yield create_app(test_settings).test_cli_runner()
    with engine.begin() as conn:       # the CLI commits: clean up everything this test made
        conn.execute(text("DELETE FROM land_use t USING import_batch b WHERE t.id <@ b.row_ids"))
        conn.execute(text("DELETE FROM import_batch"))
        conn.execute(text("DELETE FROM admin_division WHERE code LIKE '2299%'"))


def test_cli_import_dry_run_rejection_rollback_and_export(cli, engine, tmp_path):
    shp = write_land_use_shp(tmp_path / "cli.shp")
    res = cli.invoke(args=["etl", "import", "land_use", str(shp), "--county", COUNTY, "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "3 rows valid for land_use (dry run: nothing written)" in res.output
    res = cli.invoke(args=["etl", "import", "land_use", str(shp), "--county", COUNTY, "--user", "clerk"])
    assert res.exit_code == 0, res.output
    batch = int(res.output.split("batch ")[-1].split(":")[0])
    res = cli.invoke(args=["etl", "import", "land_use", str(shp)])
    assert "already imported as batch" in res.output
    bad = write_land_use_shp(tmp_path / "bad.shp", geoms=parcels(1), rows=[("X1", "1", "9999", "?", "", "")])
    res = cli.invoke(args=["etl", "import", "land_use", str(bad), "--county", COUNTY])
    assert res.exit_code == 1 and "bad.shp: 1 error(s), nothing imported: row 1, class_code: '9999'" in res.output
    res = cli.invoke(args=["etl", "batches"])
    assert "committed" in res.output and "clerk" in res.output
    out = tmp_path / "export.geojson"
    res = cli.invoke(args=["etl", "export", "land_use", str(out), "--county", COUNTY])
    assert res.exit_code == 0 and "3 features of land_use" in res.output
    res = cli.invoke(args=["etl", "rollback", str(batch)])
    assert res.exit_code == 0 and f"batch {batch}: rolled back, 3 rows deleted" in res.output
    res = cli.invoke(args=["etl", "rollback", str(batch)])
    assert res.exit_code == 1 and "already rolled back" in res.output
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM land_use WHERE bsm LIKE 'T000%'")).scalar() == 0
