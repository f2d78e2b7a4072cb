"""Downloads of whole (filtered) collections: GeoJSON and CSV, GeoPackage and zipped Shapefile, read
back with pyogrio (GDAL) and compared with the database; public downloads obey the `pub` views."""
from __future__ import annotations

import csv
import io
import json
import zipfile

import numpy as np
import pyogrio.raw
import pytest
import requests
import shapely
from sqlalchemy import text

from etl.exporter import dbf_names, export_layer
from layers import REGISTRY
from tests.test_ogc_internal import bearer, issue
from tests.test_ogc_public import view_count

EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}".format


@pytest.fixture(scope="module")
def ogc(live_server):
    return live_server.url + "/ogc"


@pytest.fixture(scope="module")
def internal(live_server):
    return live_server.url + "/internal/ogc"


@pytest.fixture(scope="module")
def token(test_settings, demo):
    from app import create_app
    return issue(create_app(test_settings).test_cli_runner(), "规划处", "land_use,hazard_point,disaster_report")


def rows(engine, sql: str, **params) -> list:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


# --- public GeoJSON and CSV ----------------------------------------------------------------------
@pytest.mark.parametrize("name", [layer.name for layer in REGISTRY.published()])
def test_public_geojson_download_is_the_whole_view(ogc, engine, name):
    response = requests.get(f"{ogc}/collections/{name}/download", params={"f": "geojson"}, timeout=120)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["Content-Type"].startswith("application/geo+json")
    assert f'filename="{name}.geojson"' in response.headers["Content-Disposition"]
    features = response.json()["features"]
    assert len(features) == view_count(engine, name)
    assert [f["id"] for f in features] == sorted(f["id"] for f in features)
    public = {f.name for f in REGISTRY[name].public_fields}
    assert all(set(f["properties"]) <= public for f in features)


def test_public_downloads_obey_the_views(ogc, engine):
    cases = requests.get(f"{ogc}/collections/enforcement_case/download", timeout=60).json()["features"]
    assert cases and {f["properties"]["status"] for f in cases} == {"closed"}
    assert all("party" not in f["properties"] for f in cases)
    table = list(csv.reader(io.StringIO(requests.get(f"{ogc}/collections/hazard_point/download",
                                                     params={"f": "csv"}, timeout=60).text)))
    assert "monitor_phone" not in table[0] and "monitor_name" not in table[0]
    for params in ({"filter": "party = 'x'"}, {"party": "x"}, {"properties": "party"}):
        refused = requests.get(f"{ogc}/collections/enforcement_case/download", params={"f": "csv", **params},
                               timeout=30)
        assert refused.status_code == 400 and refused.json()["description"], params
    for f in ("csv", "gpkg", "shp"):
        assert requests.get(f"{ogc}/collections/land_use/download", params={"f": f}, timeout=30).status_code == 404


def test_public_csv_download_has_id_properties_and_wkt_with_chinese_text(ogc, engine):
    response = requests.get(f"{ogc}/collections/hazard_point/download", params={"f": "csv"}, timeout=60)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    assert not response.content.startswith(b"\xef\xbb\xbf")
    table = list(csv.DictReader(io.StringIO(response.content.decode("utf-8"))))
    public = [f.name for f in REGISTRY["hazard_point"].public_fields]
    assert list(table[0]) == ["id", *public, "wkt"]
    expected = {r.id: r for r in rows(engine, "SELECT id, name, threatened_people, ST_X(geom) x, ST_Y(geom) y "
                                              "FROM pub.hazard_point")}
    assert len(table) == len(expected)
    for row in table:
        db = expected[int(row["id"])]
        assert row["name"] == (db.name or "")
        assert row["threatened_people"] == ("" if db.threatened_people is None else str(db.threatened_people))
        point = shapely.from_wkt(row["wkt"])
        assert (point.x, point.y) == pytest.approx((db.x, db.y), abs=1e-8)
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in row["name"]) for row in table)


def test_pygeoapi_items_csv_pages_obey_the_views(ogc, engine):
    response = requests.get(f"{ogc}/collections/enforcement_case/items", params={"f": "csv", "limit": 50},
                            timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert 0 < len(table) <= 50
    assert "party" not in table[0] and {r["status"] for r in table} == {"closed"}
    points = list(csv.DictReader(io.StringIO(requests.get(
        f"{ogc}/collections/hazard_point/items", params={"f": "csv", "limit": 10, "hazard_type": "landslide"},
        timeout=30).text)))
    assert points and {"x", "y", "name"} <= set(points[0]) and "monitor_phone" not in points[0]
    assert {r["hazard_type"] for r in points} == {"landslide"}


# --- internal GeoPackage and Shapefile ------------------------------------------------------------
SELECTION = {  # bbox + CQL2 + datetime, as /items takes them
    "bbox": "124.0,43.0,126.5,45.0",
    "filter": "class_code LIKE '01%' OR class_name IN ('水田', '旱地')",
    "datetime": "2000-01-01/..",
}
SELECTION_SQL = ("ST_Intersects(geom, ST_MakeEnvelope(124.0, 43.0, 126.5, 45.0, 4490)) "
                 "AND (class_code LIKE '01%' OR class_name IN ('水田', '旱地')) AND survey_date >= DATE '2000-01-01'")
LAND_USE_FIELDS = [f.name for f in REGISTRY["land_use"].fields]


def expected_land_use(engine) -> dict:
    return {r.id: r for r in rows(engine, f"SELECT id, {', '.join(LAND_USE_FIELDS)}, ST_AsBinary(geom) AS wkb "
                                          f"FROM land_use WHERE {SELECTION_SQL}")}


def same_geometry(wkb_a, wkb_b) -> bool:
    a, b = shapely.from_wkb(bytes(wkb_a)), shapely.from_wkb(bytes(wkb_b))
    if a.geom_type == "Polygon":
        a = shapely.MultiPolygon([a])
    return shapely.equals_exact(shapely.normalize(a), shapely.normalize(b), tolerance=1e-9)


def check_land_use(read, expected: dict, names: list[str]) -> None:
    meta, fids, geometry, field_data = read
    assert list(meta["fields"]) == names
    assert meta["crs"] == "EPSG:4490"
    columns = dict(zip(LAND_USE_FIELDS, field_data[1:]))
    ids = [int(v) for v in field_data[0]]
    assert sorted(ids) == sorted(expected) and len(ids) == len(expected)
    for i, key in enumerate(ids):
        db = expected[key]
        for name in LAND_USE_FIELDS:
            value, want = columns[name][i], getattr(db, name)
            if name == "survey_date":
                assert value == np.datetime64(want, "D"), (key, name)
            elif name == "area_m2":
                assert value == pytest.approx(want, rel=1e-12), (key, name)
            else:
                assert value == want, (key, name, value, want)
        assert same_geometry(geometry[i], db.wkb), key


def test_geopackage_export_of_a_filtered_collection_reads_back_equal(internal, engine, token, tmp_path):
    expected = expected_land_use(engine)
    assert 50 < len(expected) < view_count_all(engine)
    response = requests.get(f"{internal}/collections/land_use/download", params={"f": "gpkg", **SELECTION},
                            headers=bearer(token), timeout=120)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["Content-Type"] == "application/geopackage+sqlite3"
    assert int(response.headers["Content-Length"]) == len(response.content)
    path = tmp_path / "land_use.gpkg"
    path.write_bytes(response.content)
    check_land_use(pyogrio.raw.read(path, layer="land_use"), expected, ["id", *LAND_USE_FIELDS])
    assert any("\u4e00" <= ch <= "\u9fff" for r in expected.values() for ch in r.class_name)


def test_shapefile_export_is_a_utf8_zip_with_cpg_and_full_field_names(internal, engine, token, tmp_path):
    expected = expected_land_use(engine)
    response = requests.get(f"{internal}/collections/land_use/download", params={"f": "shp", **SELECTION},
                            headers=bearer(token), timeout=120)
    assert response.status_code == 200, response.text[:300]
    path = tmp_path / "land_use.shp.zip"
    path.write_bytes(response.content)
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == sorted(f"land_use.{ext}" for ext in ("shp", "shx", "dbf", "prj", "cpg")) + [
            "fields.csv"] or {"land_use.cpg", "fields.csv", "land_use.dbf"} <= set(zf.namelist())
        assert zf.read("land_use.cpg").decode().strip().upper() in ("UTF-8", "UTF8")
        mapping = list(csv.DictReader(io.StringIO(zf.read("fields.csv").decode("utf-8"))))
    short = dbf_names(REGISTRY["land_use"], REGISTRY["land_use"].fields)
    assert short[:4] == ["id", "BSM", "TBBH", "DLBM"]  # the customary database names
    assert [m["dbf_name"] for m in mapping] == short and [m["name"] for m in mapping] == ["id", *LAND_USE_FIELDS]
    assert mapping[4]["zh"] == REGISTRY["land_use"].fields[3].zh
    check_land_use(pyogrio.raw.read(f"/vsizip/{path}/land_use.shp"), expected, short)


def view_count_all(engine) -> int:
    return rows(engine, "SELECT count(*) FROM land_use")[0][0]


def test_exports_of_points_with_datetimes_nulls_and_another_crs(internal, engine, token, tmp_path):
    response = requests.get(f"{internal}/collections/disaster_report/download", params={"f": "gpkg"},
                            headers=bearer(token), timeout=60)
    assert response.status_code == 200
    (tmp_path / "r.gpkg").write_bytes(response.content)
    meta, _, geometry, data = pyogrio.raw.read(tmp_path / "r.gpkg")
    assert len(geometry) == rows(engine, "SELECT count(*) FROM disaster_report")[0][0] > 0
    columns = dict(zip(meta["fields"], data))
    first = rows(engine, "SELECT id, reported_at, deaths FROM disaster_report ORDER BY id LIMIT 1")[0]
    assert int(columns["id"][0]) == first.id
    reported = first.reported_at.astimezone(__import__("datetime").timezone.utc).replace(tzinfo=None)
    assert columns["reported_at"][0] == np.datetime64(reported, "ms")
    gk = requests.get(f"{internal}/collections/hazard_point/download", params={"f": "shp", "crs": EPSG(4530)},
                      headers=bearer(token), timeout=60)
    assert gk.status_code == 200 and gk.headers["Content-Crs"] == f"<{EPSG(4530)}>"
    (tmp_path / "h.zip").write_bytes(gk.content)
    meta, _, geometry, data = pyogrio.raw.read(f"/vsizip/{tmp_path / 'h.zip'}/hazard_point.shp")
    assert meta["crs"] == "EPSG:4530"
    key = int(data[0][0])
    x, y = rows(engine, "SELECT ST_X(g), ST_Y(g) FROM (SELECT ST_Transform(geom, 4530) g FROM hazard_point "
                        "WHERE id = :i) s", i=key)[0]
    point = shapely.from_wkb(geometry[0])
    assert (point.x, point.y) == pytest.approx((x, y), abs=1e-3)  # files keep x = easting
    names = dict(zip(meta["fields"], data))
    assert "JCRDH" in names  # internal field monitor_phone, by its customary DBF name


def test_empty_selection_gives_an_empty_layer(internal, token, tmp_path):
    response = requests.get(f"{internal}/collections/land_use/download",
                            params={"f": "gpkg", "filter": "class_code = 'none'"}, headers=bearer(token), timeout=60)
    assert response.status_code == 200
    (tmp_path / "e.gpkg").write_bytes(response.content)
    meta, _, geometry, _ = pyogrio.raw.read(tmp_path / "e.gpkg")
    assert len(geometry) == 0 and list(meta["fields"]) == ["id", *LAND_USE_FIELDS]
    assert requests.get(f"{internal}/collections/land_use/download", params={"filter": "class_code = 'none'"},
                        headers=bearer(token), timeout=60).json() == {"type": "FeatureCollection", "features": []}


@pytest.mark.parametrize("params, status", [
    ({"f": "xml"}, 400), ({"f": "gpkg", "filter": "class_code = "}, 400), ({"f": "shp", "limit": "5"}, 400),
    ({"f": "csv", "bbox": "1,2,3"}, 400), ({"f": "gpkg", "crs": EPSG(32651)}, 400),
    ({"f": "gpkg", "filter": "area_m2 = 'big'"}, 400), ({"f": "csv", "properties": "nope"}, 400),
])
def test_bad_download_requests_get_a_400(internal, token, params, status):
    response = requests.get(f"{internal}/collections/land_use/download", params=params, headers=bearer(token),
                            timeout=30)
    assert response.status_code == status, response.text[:300]
    assert response.json()["description"]


def test_internal_downloads_need_a_token_that_grants_the_collection(internal, token):
    assert requests.get(f"{internal}/collections/land_use/download", timeout=30).status_code == 401
    refused = requests.get(f"{internal}/collections/enforcement_case/download", params={"f": "gpkg"},
                           headers=bearer(token), timeout=30)
    assert refused.status_code == 403


def test_shapefile_names_are_customary_else_cut_to_ten_and_unique():
    hazard = REGISTRY["hazard_point"]
    by_name = {f.name: f for f in hazard.fields}
    picked = [by_name[n] for n in ("threatened_people", "threatened_property_10k_yuan", "monitor_name")]
    assert dbf_names(hazard, picked) == ["id", "WXRS", "WXCC", "JCR"]
    report = REGISTRY["disaster_report"]
    names = dbf_names(report, report.fields)
    assert all(len(n) <= 10 and n.isascii() for n in names) and len({n.upper() for n in names}) == len(names)
    assert [n for f, n in zip(report.fields, names[1:]) if len(f.name) <= 10] == [
        f.name for f in report.fields if len(f.name) <= 10]
    json.dumps(names)


def test_download_and_cli_export_give_the_same_shapefile_columns(internal, engine, token, tmp_path):
    response = requests.get(f"{internal}/collections/hazard_point/download", params={"f": "shp"},
                            headers=bearer(token), timeout=60)
    assert response.status_code == 200, response.text[:300]
    (tmp_path / "h.zip").write_bytes(response.content)
    downloaded, _, _, down_data = pyogrio.raw.read(f"/vsizip/{tmp_path / 'h.zip'}/hazard_point.shp")[:4]
    with zipfile.ZipFile(tmp_path / "h.zip") as zf:
        down_table = zf.read("fields.csv").decode("utf-8")
    out = tmp_path / "cli" / "hazard_point.shp"
    out.parent.mkdir()
    with engine.connect() as conn:
        n = export_layer(conn, "hazard_point", out, encoding="GBK")
    exported, _, _, cli_data = pyogrio.raw.read(out)[:4]
    assert n == len(cli_data[0]) == len(down_data[0]) == rows(engine, "SELECT count(*) FROM hazard_point")[0][0]
    assert list(downloaded["fields"]) == list(exported["fields"]) == dbf_names(
        REGISTRY["hazard_point"], REGISTRY["hazard_point"].fields)
    assert {"WXRS", "WXCC", "JCRDH"} <= set(exported["fields"])
    assert out.with_suffix(".fields.csv").read_bytes().decode("utf-8") == down_table
    assert [[str(v) for v in col] for col in cli_data] == [[str(v) for v in col] for col in down_data]
